"""Generator EMA: decay from the half-life in images, ramp-up, buffers copied; checked against hand-computed values.
Batch-norm recalibration: statistics equal the data's, modes and momenta restored, untouched on error."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from ganforge.train.ema import quasi_normal, recalibrate_batch_norm, update_ema

N_PARAMS = 3 * 2 + 2 + 2 + 2  # Linear(3, 2) weight and bias, BatchNorm1d(2) weight and bias


def _net(value: float) -> nn.Module:
    """Linear + BatchNorm (parameters and buffers), every parameter filled with ``value``, float64."""
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    return net


def _values(net: nn.Module) -> list[float]:
    return [float(x) for p in net.parameters() for x in p.detach().flatten()]


def test_one_step_against_hand_computation():
    """batch 500, ema_kimg 1: beta = 0.5 ** (500 / 1000) = 0.70710678...; 10 + beta * (2 - 10) = 4.343145750507619."""
    ema, net = _net(2.0), _net(10.0)
    beta = update_ema(ema, net, batch=500, nimg=123_456, ema_kimg=1.0, rampup=None)
    assert beta == pytest.approx(0.7071067811865476, abs=1e-15)
    assert _values(ema) == pytest.approx([4.343145750507619] * N_PARAMS, abs=1e-12)
    assert _values(net) == [10.0] * N_PARAMS  # the trained network is only read


def test_mixed_values_per_element():
    ema, net = _net(0.0), _net(0.0)
    with torch.no_grad():
        ema[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]]))
        net[0].weight.copy_(torch.tensor([[3.0, 2.0, -1.0], [0.5, 4.0, 1.0]]))
    beta = update_ema(ema, net, batch=250, nimg=0, ema_kimg=0.5, rampup=None)  # 0.5 ** 0.5 again
    b = 0.5**0.5
    expected = [[b * 1 + (1 - b) * 3, b * -2 + (1 - b) * 2, b * 3 + (1 - b) * -1], [0.5, (1 - b) * 4, b * -1 + (1 - b)]]
    assert beta == pytest.approx(b, abs=1e-15)
    assert ema[0].weight.tolist() == [pytest.approx(row, abs=1e-12) for row in expected]


@pytest.mark.parametrize("batch", [1, 10, 25, 100])
def test_half_life_is_ema_kimg_thousand_images_whatever_the_batch(batch):
    """After ema_kimg * 1000 images the starting EMA weighs exactly one half, for any batch size."""
    ema, net = _net(0.0), _net(1.0)
    for _ in range(100 // batch):
        update_ema(ema, net, batch=batch, nimg=10**6, ema_kimg=0.1, rampup=None)
    assert _values(ema) == pytest.approx([0.5] * N_PARAMS, abs=1e-12)


@pytest.mark.parametrize("batch,ema_kimg", [(32, 10.0), (64, 10.0), (4, 0.5), (1000, 2.0)])
def test_beta_formula(batch, ema_kimg):
    beta = update_ema(_net(0.0), _net(1.0), batch=batch, nimg=0, ema_kimg=ema_kimg, rampup=None)
    assert beta == pytest.approx(0.5 ** (batch / (ema_kimg * 1000)), rel=1e-12)
    assert math.log(beta) / math.log(0.5) * (ema_kimg * 1000) == pytest.approx(batch, rel=1e-9)


def test_rampup_shortens_the_half_life_early():
    """rampup 0.05 at 1000 images seen: half-life min(10 kimg, 1000 * 0.05 = 50 images) = 50 images."""
    beta = update_ema(_net(0.0), _net(1.0), batch=50, nimg=1000, ema_kimg=10.0, rampup=0.05)
    assert beta == pytest.approx(0.5, abs=1e-15)


def test_rampup_is_capped_by_ema_kimg():
    """At 10M images seen, nimg * rampup = 500k > 10 kimg: the half-life is ema_kimg again."""
    with_rampup = update_ema(_net(0.0), _net(1.0), batch=32, nimg=10_000_000, ema_kimg=10.0, rampup=0.05)
    without = update_ema(_net(0.0), _net(1.0), batch=32, nimg=10_000_000, ema_kimg=10.0, rampup=None)
    assert with_rampup == without == pytest.approx(0.5 ** (32 / 10_000), rel=1e-12)


@pytest.mark.parametrize("nimg,ema_kimg,rampup", [(0, 10.0, 0.05), (5000, 0.0, None)])
def test_zero_half_life_copies_the_network(nimg, ema_kimg, rampup):
    """No images seen yet under ramp-up, or ema_kimg 0: beta is 0 and the EMA equals the network."""
    ema, net = _net(7.0), _net(-3.0)
    beta = update_ema(ema, net, batch=32, nimg=nimg, ema_kimg=ema_kimg, rampup=rampup)
    assert beta == 0.0
    assert _values(ema) == [-3.0] * N_PARAMS


def test_buffers_are_copied_not_averaged():
    ema, net = _net(0.0), _net(1.0)
    net.train()(torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert int(net[1].num_batches_tracked) == 1
    assert not torch.equal(net[1].running_mean, ema[1].running_mean)
    update_ema(ema, net, batch=32, nimg=0, ema_kimg=10.0, rampup=None)
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        assert torch.equal(b_ema, b)
        assert b_ema.data_ptr() != b.data_ptr()  # copied into the EMA's own storage, not shared
    assert _values(ema) != _values(net)  # while the parameters were averaged


def test_update_is_in_place_and_records_no_graph():
    ema, net = _net(0.0), _net(1.0)
    ptrs = [p.data_ptr() for p in ema.parameters()]
    update_ema(ema, net, batch=32, nimg=0, ema_kimg=1.0, rampup=None)
    assert [p.data_ptr() for p in ema.parameters()] == ptrs
    assert all(p.grad is None and p.grad_fn is None for p in ema.parameters())
    assert all(p.grad is None for p in net.parameters())


def test_ema_of_a_copy_is_unchanged():
    """The EMA of a network averaged with itself stays that network, bit for bit (float32 too)."""
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = copy.deepcopy(net)
    update_ema(ema, net, batch=7, nimg=100, ema_kimg=0.3, rampup=None)
    assert all(torch.equal(a, b) for a, b in zip(ema.state_dict().values(), net.state_dict().values(), strict=True))


def test_mismatched_networks_raise():
    with pytest.raises(ValueError):
        update_ema(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), 32, 0, 10.0, None)


def _batches(n: int, size: int, seed: int = 0) -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, dtype=torch.float64, generator=g) * 2 + 1,) for _ in range(n)]


def test_recalibrated_statistics_are_the_means_over_the_batches():
    """Running mean = mean of the per-batch means, running var = mean of the unbiased per-batch variances of the
    layer's input, whatever the old statistics and momentum were."""
    net = _net(0.5)
    net[1].running_mean.fill_(7.0)
    net[1].momentum = 0.3
    batches = _batches(4, 16)
    assert recalibrate_batch_norm(net.eval(), batches) == 1
    h = [net[0](x) for (x,) in batches]
    with torch.no_grad():
        mean = torch.stack([x.mean(0) for x in h]).mean(0)
        var = torch.stack([x.var(0, unbiased=True) for x in h]).mean(0)
    assert torch.allclose(net[1].running_mean, mean) and torch.allclose(net[1].running_var, var)
    assert int(net[1].num_batches_tracked) == 4
    assert net[1].momentum == 0.3 and not net.training and not net[1].training


def test_recalibration_runs_only_the_batch_norms_in_training_mode():
    net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5), nn.BatchNorm1d(2)).double().eval()
    seen: list[bool] = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    recalibrate_batch_norm(net, _batches(2, 8))
    assert seen == [False, False] and not net[2].training


def test_a_network_without_batch_norm_is_untouched_and_its_inputs_unread():
    net = nn.Linear(3, 2)
    before = copy.deepcopy(net.state_dict())

    def inputs():
        raise AssertionError("read")
        yield

    assert recalibrate_batch_norm(net, inputs()) == 0
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), before.values(), strict=True))


def test_a_failing_batch_leaves_the_old_statistics():
    net = _net(0.5)
    net[1].running_mean.fill_(3.0)
    before = {k: b.clone() for k, b in net[1].named_buffers()}
    bad = [*_batches(2, 8), (torch.randn(8, 5, dtype=torch.float64),)]  # wrong width: Linear(3, 2) raises
    with pytest.raises(RuntimeError):
        recalibrate_batch_norm(net.eval(), bad)
    assert all(torch.equal(b, before[k]) for k, b in net[1].named_buffers())
    assert net[1].momentum == 0.1 and not net[1].training


def test_quasi_normal_is_seeded_finite_and_evenly_spread():
    z = quasi_normal(4096, 16, seed=3)
    assert z.shape == (4096, 16) and z.dtype == torch.float32 and torch.isfinite(z).all()
    assert torch.equal(z, quasi_normal(4096, 16, seed=3)) and not torch.equal(z, quasi_normal(4096, 16, seed=4))
    # each coordinate is stratified into 4,096 equal-probability cells: moments far tighter than random draws
    assert z.mean(0).abs().max() < 0.005 and (z.var(0) - 1).abs().max() < 0.01
    assert z.var(0).mean() > 0.99  # the tails are there, not clipped away


def test_quasi_normal_averages_vary_less_between_seeds_than_random_ones():
    """What the batch-norm re-estimate needs: a layer's mean activation over 1,024 latents, drawn again and again."""
    w = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))

    def feature_mean(z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z @ w.T).mean(0)

    quasi = torch.stack([feature_mean(quasi_normal(1024, 32, seed=s)) for s in range(12)])
    plain = torch.stack([feature_mean(torch.randn(1024, 32, generator=torch.Generator().manual_seed(s)))
                         for s in range(12)])
    assert quasi.std(0).mean() < 0.5 * plain.std(0).mean()


@pytest.mark.parametrize("n,dim", [(0, 4), (4, 0)])
def test_quasi_normal_refuses_empty_shapes(n, dim):
    with pytest.raises(ValueError, match="must be >= 1"):
        quasi_normal(n, dim, seed=0)
