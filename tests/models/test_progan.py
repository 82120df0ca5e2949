"""ProGAN networks: the contract suite at every stage, exact fade-in at alpha = 0, growth keeps every weight, and the
stage travels in the safetensors checkpoint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.losses import Batch, build_loss
from ganforge.models import network_class
from ganforge.models.layers import downsample2x
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator, level_channels, num_levels
from ganforge.train.recipes import get_recipe

Z_DIM, RES = 8, 16
TINY = {"fmap_base": 32, "fmap_max": 8}
# every stage of a 16x16 model: level 0 (4x4), fade-in and stable at 8x8 and 16x16
STAGES = [(0, 1.0), (1, 0.0), (1, 0.4), (1, 1.0), (2, 0.0), (2, 0.7), (2, 1.0)]


def _build(c_dim: int = 0, channels: int = 1, seed: int = 0, resolution: int = RES):
    torch.manual_seed(seed)
    G = ProGANGenerator(z_dim=Z_DIM, c_dim=c_dim, resolution=resolution, channels=channels, **TINY)
    D = ProGANDiscriminator(c_dim=c_dim, resolution=resolution, channels=channels, **TINY)
    return G, D


def _inputs(c_dim: int = 0, n: int = 4):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, Z_DIM, generator=g)
    c = F.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    return z, c


def _stage(nets, level: int, alpha: float) -> None:
    for net in nets:
        net.set_stage(level, alpha)


def test_registered_under_the_recipe_and_network_names():
    recipe = get_recipe("progan")
    assert recipe.generator is ProGANGenerator and recipe.discriminator is ProGANDiscriminator
    assert recipe.loss == "wgan-gp"
    assert recipe.make_schedule is not None and recipe.make_source is not None
    assert network_class("progan-g") is ProGANGenerator and network_class("progan-d") is ProGANDiscriminator


def test_fresh_networks_start_at_the_target_resolution():
    G, D = _build()
    z, _ = _inputs()
    assert G.stage == (2, 1.0) and D.stage == (2, 1.0)
    assert G(z).shape == (4, 1, RES, RES)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_shapes_at_every_stage(c_dim, channels):
    G, D = _build(c_dim, channels)
    z, c = _inputs(c_dim)
    for level, alpha in STAGES:
        _stage((G, D), level, alpha)
        r = 4 * 2**level
        x = G(z, c)
        assert x.shape == (4, channels, r, r), (level, alpha)
        assert G.current_resolution == r
        assert D(x, c).shape == (4,), (level, alpha)
        assert G(z, c, full_resolution=True).shape == (4, channels, RES, RES)


def test_full_resolution_is_nearest_upsampling():
    G, _ = _build()
    z, _ = _inputs()
    G.set_stage(1, 0.5)
    low = G(z)  # [4, 1, 8, 8]
    assert torch.equal(G(z, full_resolution=True), low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


@pytest.mark.parametrize("level", [1, 2])
def test_generator_at_alpha_zero_is_the_upsampled_previous_stage(level):
    G, _ = _build(c_dim=3)
    z, c = _inputs(3)
    G.set_stage(level - 1, 1.0)
    prev = G(z, c)
    G.set_stage(level, 0.0)
    assert torch.equal(G(z, c), F.interpolate(prev, scale_factor=2, mode="nearest"))
    G.set_stage(level, 0.5)  # the new block really contributes once alpha > 0
    assert not torch.allclose(G(z, c), F.interpolate(prev, scale_factor=2, mode="nearest"))


@pytest.mark.parametrize("level", [1, 2])
def test_discriminator_at_alpha_zero_is_the_previous_stage_on_downsampled_input(level):
    _, D = _build(c_dim=3)
    r = 4 * 2**level
    x = torch.randn(4, 1, r, r)
    _, c = _inputs(3)
    D.set_stage(level - 1, 1.0)
    prev = D(downsample2x(x), c)
    D.set_stage(level, 0.0)
    assert torch.equal(D(x, c), prev)
    D.set_stage(level, 0.5)
    assert not torch.allclose(D(x, c), prev)


def test_fade_in_is_linear_in_alpha():
    G, _ = _build()
    z, _ = _inputs()
    outs = {}
    for a in (0.0, 0.25, 1.0):
        G.set_stage(2, a)
        outs[a] = G(z)
    torch.testing.assert_close(outs[0.25], 0.75 * outs[0.0] + 0.25 * outs[1.0], rtol=1e-5, atol=1e-6)


def test_growing_keeps_every_weight():
    G, D = _build(c_dim=3)
    for net in (G, D):
        before = {k: v.clone() for k, v in net.state_dict().items()}
        for level, alpha in STAGES:
            net.set_stage(level, alpha)
            after = net.state_dict()
            assert list(after) == list(before)
            changed = [k for k in before if not torch.equal(before[k], after[k])]
            assert set(changed) <= {"stage_level", "stage_alpha"}, changed


def test_stage_buffers_are_persistent_and_all_blocks_built_at_construction():
    G, D = _build()
    for net in (G, D):
        keys = net.state_dict().keys()
        assert "stage_level" in keys and "stage_alpha" in keys
    assert len(G.to_rgb) == 3 and len(D.from_rgb) == 3 and len(G.blocks) == 3
    G.set_stage(0, 1.0)
    n = sum(p.numel() for p in G.parameters())
    G.set_stage(2, 1.0)
    assert sum(p.numel() for p in G.parameters()) == n


@pytest.mark.parametrize(
    ("level", "alpha", "match"),
    [(3, 1.0, "level must be an int in \\[0, 2\\]"), (-1, 1.0, "level"), (1.0, 1.0, "level"), (1, 1.5, "alpha"),
     (1, -0.1, "alpha"), (0, 0.5, "level 0")],
)
def test_set_stage_validates(level, alpha, match):
    G, _ = _build()
    with pytest.raises(ValueError, match=match):
        G.set_stage(level, alpha)
    assert G.stage == (2, 1.0)


def test_discriminator_rejects_images_of_another_stage():
    _, D = _build()
    D.set_stage(1, 1.0)
    with pytest.raises(ValueError, match=r"level 1 expects images \[N, 1, 8, 8\]"):
        D(torch.randn(2, 1, 16, 16))


@pytest.mark.parametrize("resolution", [4, 28, 48, 0])
def test_rejects_resolutions_that_are_not_powers_of_two(resolution):
    with pytest.raises(ValueError, match="power of two >= 8"):
        ProGANGenerator(resolution=resolution, **TINY)


def test_level_widths_follow_the_paper():
    assert num_levels(1024) == 8
    assert [level_channels(lv, 8192, 512) for lv in range(9)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_conditioning_changes_the_output_and_is_required():
    G, D = _build(c_dim=3)
    z, _ = _inputs(0)
    c0 = F.one_hot(torch.zeros(4, dtype=torch.long), 3).float()
    c1 = F.one_hot(torch.ones(4, dtype=torch.long), 3).float()
    assert not torch.allclose(G(z, c0), G(z, c1))
    with torch.no_grad():  # the projection term starts from random weights: different classes, different logits
        x = G(z, c0)
        assert not torch.allclose(D(x, c0), D(x, c1))
    with pytest.raises(ValueError, match="conditional"):
        G(z, None)


def test_determinism_under_seed():
    z, _ = _inputs()
    (G1, D1), (G2, D2), (G3, _) = _build(seed=5), _build(seed=5), _build(seed=6)
    for level, alpha in STAGES:
        _stage((G1, D1, G2, D2, G3), level, alpha)
        assert torch.equal(G1(z), G2(z))
        assert torch.equal(D1(G1(z)), D2(G2(z)))
        assert not torch.equal(G1(z), G3(z))


def test_safetensors_round_trip_keeps_stage_and_outputs(tmp_path):
    G, D = _build(c_dim=3, channels=3)
    z, c = _inputs(3)
    _stage((G, D), 2, 0.3)
    save_checkpoint(tmp_path / "ck", {"G": G, "D": D}, {"family": "progan"})
    nets = load_networks(tmp_path / "ck")
    assert nets["G"].stage == pytest.approx((2, 0.3)) and nets["D"].stage == pytest.approx((2, 0.3))
    assert nets["G"].config == G.config and nets["D"].config == D.config
    assert torch.equal(G(z, c), nets["G"](z, c))
    x = G(z, c).detach()
    assert torch.equal(D(x, c), nets["D"](x, c))


@pytest.mark.parametrize(("level", "alpha"), STAGES)
def test_one_step_changes_the_loss_at_every_stage(level, alpha):
    G, D = _build()
    _stage((G, D), level, alpha)
    loss = build_loss("wgan-gp", {"G": G, "D": D})
    z, _ = _inputs(n=8)
    r = 4 * 2**level
    real = torch.rand(8, 1, r, r, generator=torch.Generator().manual_seed(2)) * 2 - 1
    batch = Batch(real=real, real_c=None, z=z, gen_c=None)
    for phase, net, key in (("Dmain", D, "loss/D"), ("Gmain", G, "loss/G")):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.0, 0.99))
        torch.manual_seed(0)
        before = loss.accumulate_gradients(phase, batch, 1.0)
        opt.step()
        G.zero_grad(), D.zero_grad()
        torch.manual_seed(0)
        after = loss.accumulate_gradients(phase, batch, 1.0)
        G.zero_grad(), D.zero_grad()
        assert after[key] != pytest.approx(before[key], abs=1e-7), (phase, level, alpha)


def test_blocks_above_the_stage_get_no_gradient():
    G, D = _build()
    _stage((G, D), 1, 1.0)
    z, _ = _inputs()
    D(G(z)).sum().backward()
    assert all(p.grad is None for p in G.blocks[2].parameters())
    assert all(p.grad is None for p in G.to_rgb[2].parameters())
    assert all(p.grad is None for p in D.from_rgb[2].parameters())
    assert all(p.grad is not None for p in G.blocks[1].parameters())
