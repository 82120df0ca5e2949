"""Each classic loss equals its formula on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganforge.losses import Batch, build_loss
from ganforge.losses.classic import (
    d_loss_hinge,
    d_loss_logistic,
    d_loss_relativistic,
    d_loss_wasserstein,
    g_loss_minimax,
    g_loss_nonsaturating,
    g_loss_relativistic,
    gradient_penalty,
    r1_penalty,
)

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


def test_logistic_d_is_goodfellow_value():
    want = -(mean([math.log(sig(r)) for r in REAL.tolist()]) + mean([math.log(1 - sig(f)) for f in FAKE.tolist()]))
    assert d_loss_logistic(REAL, FAKE).item() == pytest.approx(want, rel=1e-6)


def test_minimax_g_is_log_one_minus_d():
    want = mean([math.log(1 - sig(f)) for f in FAKE.tolist()])
    assert g_loss_minimax(FAKE).item() == pytest.approx(want, rel=1e-6)


def test_nonsaturating_g_is_minus_log_d():
    want = -mean([math.log(sig(f)) for f in FAKE.tolist()])
    assert g_loss_nonsaturating(FAKE).item() == pytest.approx(want, rel=1e-6)


def test_hinge():
    want = mean([max(0, 1 - r) for r in REAL.tolist()]) + mean([max(0, 1 + f) for f in FAKE.tolist()])
    assert d_loss_hinge(REAL, FAKE).item() == pytest.approx(want, rel=1e-6)


def test_relativistic_pairs_each_real_with_its_fake():
    want_d = mean([-math.log(sig(r - f)) for r, f in zip(REAL.tolist(), FAKE.tolist(), strict=True)])
    want_g = mean([-math.log(sig(f - r)) for r, f in zip(REAL.tolist(), FAKE.tolist(), strict=True)])
    assert d_loss_relativistic(REAL, FAKE).item() == pytest.approx(want_d, rel=1e-6)
    assert g_loss_relativistic(FAKE, REAL).item() == pytest.approx(want_g, rel=1e-6)
    with pytest.raises(ValueError, match="pairs each real"):
        d_loss_relativistic(REAL, FAKE[:2])


def test_wasserstein():
    assert d_loss_wasserstein(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item())


class Linear(nn.Module):
    """D(x) = <a, x>: its input gradient has norm ||a|| everywhere."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, x, c=None):
        return (x.flatten(1) * self.a).sum(1)


def test_gradient_penalty_closed_form():
    a = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||a|| = 5
    D = Linear(a)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert gradient_penalty(D, real, fake, None).item() == pytest.approx((5 - 1) ** 2, rel=1e-5)


def test_minimax_vs_nonsaturating_gradients_on_confident_d():
    """The saturation Goodfellow describes: when D(G(z)) ~ 0, minimax gives G a tiny gradient, NS a large one."""
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_loss_minimax(fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss_nonsaturating(fake), fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_d_steps_repeats_the_d_phase():
    G = nn.Linear(2, 4)
    loss = build_loss("minimax", {"G": G, "D": Linear(torch.ones(4))}, d_steps=3)
    assert [(p.name, p.repeat) for p in loss.phases] == [("Dmain", 3), ("Gmain", 1)]
    with pytest.raises(ValueError, match="d_steps"):
        build_loss("minimax", {"G": G, "D": Linear(torch.ones(4))}, d_steps=0)


def test_wgan_gp_phase_adds_penalty_and_drift():
    class G(nn.Module):
        def forward(self, z, c=None):
            return z.view(-1, 1, 2, 2)

    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    loss = build_loss("wgan-gp", {"G": G(), "D": D}, gp_weight=10.0, drift=0.001)
    real, z = torch.randn(5, 1, 2, 2), torch.randn(5, 4)
    stats = loss.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    r, f = D(real), D(G()(z))
    want = (f.mean() - r.mean()).item() + 10 * 16 + 0.001 * r.square().mean().item()
    assert stats["loss/D"] == pytest.approx(want, rel=1e-5)


class _Identity(nn.Module):
    def forward(self, z, c=None):
        return z.view(-1, 1, 2, 2)


@pytest.mark.parametrize("kind", ["non-saturating", "minimax", "hinge"])
def test_r1_adds_half_gamma_times_the_squared_input_gradient_on_reals(kind):
    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))  # ||grad_x D|| = 5 everywhere: the penalty is 25
    real, z = torch.randn(5, 1, 2, 2), torch.randn(5, 4)
    plain = build_loss(kind, {"G": _Identity(), "D": D}).accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    r1 = build_loss(kind, {"G": _Identity(), "D": D}, r1_gamma=0.2)
    stats = r1.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    assert stats["loss/r1"] == pytest.approx(25.0, rel=1e-5)
    assert stats["loss/D"] == pytest.approx(plain["loss/D"] + 0.5 * 0.2 * 25.0, rel=1e-5)
    assert "loss/r1" not in plain


def test_r1_penalty_of_a_packed_d_is_per_pack():
    """D(x1, x2) = <a, x1> + <b, x2>: the gradient of one pack's logit has squared norm ||a||^2 + ||b||^2."""

    class PackedLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]))

        def forward(self, x, c=None):
            return (x.flatten(1).reshape(-1, 8) * self.w).sum(1)

    penalty, logits = r1_penalty(PackedLinear(), torch.randn(6, 1, 2, 2), None)
    assert logits.shape == (3,) and penalty.item() == pytest.approx(25.0 + 5.0, rel=1e-5)


def test_r1_gradient_reaches_d_parameters():
    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    loss = build_loss("non-saturating", {"G": _Identity(), "D": D}, r1_gamma=1.0)
    real, z = torch.zeros(4, 1, 2, 2), torch.zeros(4, 4)  # logits 0: the logistic part has gradient 0 w.r.t. a here
    loss.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    assert torch.allclose(D.a.grad, torch.tensor([3.0, 4.0, 0.0, 0.0]))  # d/da (1/2 ||a||^2) = a


@pytest.mark.parametrize("bad", [-0.1, "1", True])
def test_r1_gamma_is_validated(bad):
    with pytest.raises(ValueError, match="r1_gamma"):
        build_loss("non-saturating", {"G": _Identity(), "D": Linear(torch.ones(4))}, r1_gamma=bad)


def test_r2_adds_half_gamma_times_the_squared_input_gradient_on_fakes():
    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))  # ||grad_x D|| = 5 everywhere: each penalty is 25
    real, z = torch.randn(5, 1, 2, 2), torch.randn(5, 4)
    nets = {"G": _Identity(), "D": D}
    plain = build_loss("relativistic", nets).accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    both = build_loss("relativistic", nets, r1_gamma=0.2, r2_gamma=0.4)
    stats = both.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    assert stats["loss/r1"] == pytest.approx(25.0, rel=1e-5) and stats["loss/r2"] == pytest.approx(25.0, rel=1e-5)
    assert stats["loss/D"] == pytest.approx(plain["loss/D"] + 0.5 * (0.2 + 0.4) * 25.0, rel=1e-5)
    assert plain["loss/D"] == pytest.approx(d_loss_relativistic(D(real), D(z.view(-1, 1, 2, 2))).item(), rel=1e-6)
    with pytest.raises(ValueError, match="r2_gamma"):
        build_loss("relativistic", nets, r2_gamma=-1.0)


def test_relativistic_g_phase_moves_g_only_against_fixed_real_logits():
    """G's loss and gradients are the formula's with D(real) held constant (no gradient flows through it)."""

    class Shift(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Parameter(torch.tensor(0.5))

        def forward(self, z, c=None):
            return z.view(-1, 1, 2, 2) + self.b

    G, D = Shift(), Linear(torch.tensor([1.0, -2.0, 0.5, 1.0]))
    real, z = torch.randn(4, 1, 2, 2), torch.randn(4, 4)
    stats = build_loss("relativistic", {"G": G, "D": D}).accumulate_gradients("Gmain", Batch(real, None, z, None), 1.0)
    b = torch.tensor(0.5, requires_grad=True)
    want = torch.nn.functional.softplus(D(real).detach() - D(z.view(-1, 1, 2, 2) + b)).mean()
    grad_b, grad_a = torch.autograd.grad(want, [b, D.a])
    assert stats["loss/G"] == pytest.approx(want.item(), rel=1e-6)
    assert G.b.grad.item() == pytest.approx(grad_b.item(), rel=1e-5)
    assert torch.allclose(D.a.grad, grad_a, atol=1e-6)  # the fake path only: D(real) is a constant here


def test_lazy_r1_r2_run_in_their_own_phase_with_the_interval_as_weight():
    """reg_interval I > 1: Dmain carries no penalty, Dreg (every I steps) carries only the penalties; the loop passes
    gain = I, so the penalties' gradient is I times theirs (StyleGAN2's lazy regularisation)."""
    real, z = torch.zeros(4, 1, 2, 2), torch.zeros(4, 4)  # logits 0, the relativistic part is flat in ``a`` here
    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    lazy = build_loss("relativistic", {"G": _Identity(), "D": D}, r1_gamma=0.2, r2_gamma=0.4, reg_interval=16)
    assert [(p.name, p.network, p.interval) for p in lazy.phases] == [("Dmain", "D", 1), ("Dreg", "D", 16),
                                                                     ("Gmain", "G", 1)]
    assert lazy.reg_interval("D") == 16 and lazy.reg_interval("G") is None  # the loop rescales D's lr and betas
    main = lazy.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    assert "loss/r1" not in main and "loss/r2" not in main
    D.a.grad = None
    reg = lazy.accumulate_gradients("Dreg", Batch(real, None, z, None), 16.0)
    assert reg["loss/r1"] == pytest.approx(25.0) and reg["loss/r2"] == pytest.approx(25.0)
    # d/da of 16 * (0.1 + 0.2) * ||a||^2 = 16 * 0.6 * a
    assert torch.allclose(D.a.grad, 16 * 0.6 * torch.tensor([3.0, 4.0, 0.0, 0.0]))
    eager = build_loss("relativistic", {"G": _Identity(), "D": D}, r1_gamma=0.2, r2_gamma=0.4)
    assert [p.name for p in eager.phases] == ["Dmain", "Gmain"]  # interval 1: the penalties stay in the D phase


@pytest.mark.parametrize("bad", [0, 2.0, True, "4"])
def test_reg_interval_is_validated(bad):
    with pytest.raises(ValueError, match="reg_interval"):
        build_loss("relativistic", {"G": _Identity(), "D": Linear(torch.ones(4))}, r1_gamma=0.1, reg_interval=bad)
    with pytest.raises(ValueError, match="both 0"):  # nothing to space out
        build_loss("relativistic", {"G": _Identity(), "D": Linear(torch.ones(4))}, reg_interval=4)
