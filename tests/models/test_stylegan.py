"""StyleGAN2 generator and discriminator: the contract suite plus the style-specific behaviour (mixing, truncation,
noise modes, modulated convolution maths)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.losses import Batch, build_loss
from ganforge.models import network_class
from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator, mix_styles, style_layer_groups
from ganforge.models.stylegan_layers import Downsample2x, modulated_conv2d, upsample2x
from ganforge.train.recipes import get_recipe

TINY_G = {"w_dim": 16, "mapping_layers": 2, "channel_base": 128, "channel_max": 16}
TINY_D = {"channel_base": 128, "channel_max": 16}

pytestmark = pytest.mark.usefixtures("one_thread")



def tiny(c_dim: int = 0, resolution: int = 16, channels: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    G = StyleGenerator(z_dim=8, c_dim=c_dim, resolution=resolution, channels=channels, **TINY_G)
    D = StyleDiscriminator(c_dim=c_dim, resolution=resolution, channels=channels, **TINY_D)
    with torch.no_grad():  # noise strengths start at 0; make the noise inputs matter for the noise tests
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return G, D


def latents(n: int = 4, c_dim: int = 0, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 8, generator=g)
    c = F.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    return z, c


def test_recipe_is_registered_with_its_loss():
    recipe = get_recipe("stylegan")
    assert recipe.generator is StyleGenerator and recipe.discriminator is StyleDiscriminator
    assert recipe.loss == "stylegan2"
    assert network_class("stylegan-g") is StyleGenerator and network_class("stylegan-d") is StyleDiscriminator
    assert StyleGenerator.supports_truncation


@pytest.mark.parametrize("resolution,channels,c_dim", [(8, 1, 0), (16, 3, 0), (32, 1, 4)])
def test_shapes(resolution, channels, c_dim):
    G, D = tiny(c_dim, resolution, channels)
    z, c = latents(3, c_dim)
    ws = G.mapping(z, c)
    assert G.num_ws == 2 * int(math.log2(resolution)) - 2
    assert ws.shape == (3, G.num_ws, 16)
    img = G(z, c)
    assert img.shape == (3, channels, resolution, resolution)
    assert float(img.detach().abs().max()) <= 1.0  # forward clamps (the contract); synthesis is linear
    assert D(img, c).shape == (3,)


@pytest.mark.parametrize("resolution", [4, 12, 48, 0])
def test_rejects_bad_resolution(resolution):
    with pytest.raises(ValueError, match="power of two >= 8"):
        StyleGenerator(z_dim=8, resolution=resolution, **TINY_G)
    with pytest.raises(ValueError, match="power of two >= 8"):
        StyleDiscriminator(resolution=resolution, **TINY_D)


def test_input_validation():
    G, D = tiny(c_dim=3)
    z, c = latents(2, 3)
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match=r"z must have shape \[N, 8\]"):
        G(torch.randn(2, 7), c)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, c, noise_mode="off")
    with pytest.raises(ValueError, match="truncation_cutoff"):
        G(z, c, truncation_psi=0.5, truncation_cutoff=99)
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="images must be"):
        D(torch.randn(2, 3, 8, 8), c)


def test_determinism_under_seed():
    G1, D1 = tiny(seed=5)
    G2, D2 = tiny(seed=5)
    z, _ = latents()
    torch.manual_seed(3)
    a = G1(z)
    torch.manual_seed(3)
    b = G2(z)
    assert torch.equal(a, b)
    assert torch.equal(D1(a), D2(b))
    G3, _ = tiny(seed=6)
    torch.manual_seed(3)
    assert not torch.equal(a, G3(z))


def test_noise_modes():
    G, _ = tiny()
    z, _ = latents()
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert torch.equal(G(z, noise_mode="none"), G(z, noise_mode="none"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="const"), G(z, noise_mode="none"))


def test_psi_zero_gives_one_image_for_every_z():
    G, _ = tiny()
    with torch.no_grad():
        G.mapping(torch.randn(64, 8), update_w_avg=True)  # a non-trivial w_avg
    z, _ = latents(5)
    img = G(z, truncation_psi=0.0, noise_mode="const")
    assert torch.allclose(img, img[:1].expand_as(img), atol=1e-6)
    assert float((img[0] - G(z, noise_mode="const")[0]).detach().abs().max()) > 1e-3
    # With a cutoff only the first layers are truncated, so images differ again.
    cut = G(z, truncation_psi=0.0, truncation_cutoff=2, noise_mode="const")
    assert not torch.allclose(cut, cut[:1].expand_as(cut), atol=1e-4)


def test_truncation_interpolates_towards_w_avg():
    G, _ = tiny()
    z, _ = latents()
    ws = G.mapping(z)
    half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, 0.5 * (ws + G.w_avg), atol=1e-6)


def test_w_avg_is_updated_only_when_asked():
    G, _ = tiny()
    z, _ = latents(16)
    G.mapping(z)
    assert torch.equal(G.w_avg, torch.zeros(16))
    w = G.mapping(z, update_w_avg=True)[:, 0]
    assert torch.allclose(G.w_avg, (1 - 0.995) * w.mean(0), atol=1e-7)


def test_identical_styles_in_both_branches_equal_plain_generation():
    G, _ = tiny()
    z, _ = latents()
    ws = G.mapping(z)
    plain = G.synthesis(ws, noise_mode="const")
    for cutoff in range(1, G.num_ws):
        mixed = mix_styles(ws, G.mapping(z.clone()), range(cutoff, G.num_ws))
        assert torch.equal(G.synthesis(mixed, noise_mode="const"), plain)
    # ... while a different second latent changes the image, and only the mixed layers come from it.
    z2, _ = latents(seed=9)
    ws2 = G.mapping(z2)
    mixed = mix_styles(ws, ws2, [3, 4])
    assert torch.equal(mixed[:, :3], ws[:, :3]) and torch.equal(mixed[:, 3:5], ws2[:, 3:5])
    assert torch.equal(mixed[:, 5:], ws[:, 5:])
    assert not torch.equal(G.synthesis(mixed, noise_mode="const"), plain)
    with pytest.raises(ValueError, match="style layers"):
        mix_styles(ws, ws2, [G.num_ws])


def test_style_layer_groups_partition_the_layers():
    for num_ws in (4, 6, 8, 10, 14, 18):
        groups = style_layer_groups(num_ws)
        assert sorted(sum(groups.values(), [])) == list(range(num_ws))
    assert style_layer_groups(18) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}
    assert style_layer_groups(8) == {"coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}


def test_conditioning_changes_outputs():
    G, D = tiny(c_dim=3)
    z, _ = latents(3)
    c0 = F.one_hot(torch.zeros(3, dtype=torch.long), 3).float()
    c1 = F.one_hot(torch.ones(3, dtype=torch.long), 3).float()
    img = G(z, c0, noise_mode="const")
    assert not torch.allclose(img, G(z, c1, noise_mode="const"))
    assert not torch.allclose(D(img, c0), D(img, c1))


def test_modulated_conv_equals_per_sample_weights():
    """The 'scale input, shared conv, scale output' form equals StyleGAN2 eq. 1-3 with explicit per-sample weights."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.rand(3, 4) + 0.5
    out = modulated_conv2d(x, weight, styles)
    for i in range(3):
        w = weight * styles[i][None, :, None, None]  # eq. 1
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()  # eq. 3
        assert torch.allclose(out[i], F.conv2d(x[i : i + 1], w, padding=1)[0], atol=1e-5)
    plain = modulated_conv2d(x, weight, styles, demodulate=False)
    assert torch.allclose(plain, F.conv2d(x * styles[:, :, None, None], weight, padding=1), atol=1e-5)


def test_resampling_uses_the_binomial_filter():
    x = torch.randn(1, 2, 8, 8)
    k = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    down = Downsample2x()(x)
    assert down.shape == (1, 2, 4, 4)
    # interior output (1, 1) covers input rows/cols 1..4 with weights [1, 3, 3, 1] / 8 per axis
    expect = (x[0, :, 1:5, 1:5] * torch.outer(k, k)).sum(dim=[1, 2])
    assert torch.allclose(down[0, :, 1, 1], expect, atol=1e-6)
    up = upsample2x(x)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[0, :, 5, 5], (9 * x[0, :, 2, 2] + 3 * x[0, :, 2, 3] + 3 * x[0, :, 3, 2]
                                           + x[0, :, 3, 3]) / 16, atol=1e-6)


def test_safetensors_round_trip_gives_identical_outputs(tmp_path):
    G, D = tiny(c_dim=3)
    z, c = latents(3, 3)
    with torch.no_grad():
        G.mapping(torch.randn(8, 8), F.one_hot(torch.arange(8) % 3, 3).float(), update_w_avg=True)
    save_checkpoint(tmp_path / "ck", {"G": G, "D": D}, {"family": "stylegan"})
    nets = load_networks(tmp_path / "ck")
    assert nets["G"].config == G.config and nets["D"].config == D.config
    assert torch.equal(nets["G"].w_avg, G.w_avg)
    a = G(z, c, truncation_psi=0.7, noise_mode="const")
    assert torch.equal(a, nets["G"](z, c, truncation_psi=0.7, noise_mode="const"))
    assert torch.equal(D(a, c), nets["D"](a, c))


def test_one_step_changes_the_loss():
    G, D = tiny()
    loss = build_loss("stylegan2", {"G": G, "D": D}, augment="none", style_mixing_prob=0.0)
    z, _ = latents(8)
    batch = Batch(real=torch.rand(8, 3, 16, 16) * 2 - 1, real_c=None, z=z, gen_c=None)
    for phase, net in (("Dmain", D), ("Gmain", G)):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        torch.manual_seed(0)
        before = loss.accumulate_gradients(phase, batch, 1.0)
        opt.step()
        G.zero_grad(), D.zero_grad()
        torch.manual_seed(0)
        after = loss.accumulate_gradients(phase, batch, 1.0)
        key = "loss/D" if phase == "Dmain" else "loss/G"
        assert after[key] != pytest.approx(before[key], abs=1e-6), phase
        G.zero_grad(), D.zero_grad()


def test_channels_last_matches():
    G, D = tiny()
    z, _ = latents()
    ref = G(z, noise_mode="const")
    G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    out = G(z, noise_mode="const")
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(D(out.contiguous(memory_format=torch.channels_last)), D(ref), atol=1e-4)


def test_mapping_lr_multiplier_and_equalized_lr():
    G, _ = tiny()
    first = G.mapping_net.layers[0]
    assert first.weight_gain == pytest.approx(0.01 / math.sqrt(8))
    assert float(first.weight.detach().std()) == pytest.approx(100.0, rel=0.3)  # stored as N(0, 1) / lr_mul


def test_captured_whole_by_torch_compile():
    """No graph breaks in synthesis or D (``fullgraph=True``); the ``aot_eager`` backend keeps this CPU-fast (inductor
    code generation is left to GPU benchmarks)."""
    G, D = tiny(resolution=8, channels=1)
    ws = G.mapping(latents()[0])
    syn = torch.compile(G.synthesis, backend="aot_eager", fullgraph=True)
    img = syn(ws, noise_mode="const")
    assert torch.allclose(img, G.synthesis(ws, noise_mode="const"), atol=1e-5)
    d = torch.compile(D, backend="aot_eager", fullgraph=True)
    assert torch.allclose(d(img), D(img), atol=1e-5)


def test_bf16_autocast_runs_every_loss_phase():
    G, D = tiny(c_dim=3, resolution=8)
    loss = build_loss("stylegan2", {"G": G, "D": D}, augment="fixed", augment_p=0.5)
    c = F.one_hot(torch.arange(4) % 3, 3).float()
    batch = Batch(torch.rand(4, 3, 8, 8) * 2 - 1, c, torch.randn(4, 8), c)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for phase in loss.phases:
            stats = loss.accumulate_gradients(phase.name, batch, float(phase.interval))
            assert all(math.isfinite(v) for v in stats.values()), phase.name
    assert all(bool(torch.isfinite(p.grad).all()) for p in [*G.parameters(), *D.parameters()] if p.grad is not None)
