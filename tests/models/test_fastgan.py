"""The FastGAN-style family: shapes at 32/64/128, skip-layer excitation, determinism, safetensors round trip, the
self-supervised reconstruction (targets, quadrants) and its place in D's loss, one step changes both losses."""

from __future__ import annotations

import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.losses import Batch, build_loss
from ganforge.models.fastgan import FastGANDiscriminator, FastGANGenerator
from ganforge.train.recipes import get_recipe

TINY_G = {"width": 2, "max_width": 16}
TINY_D = {"width": 2, "max_width": 16, "decoder_width": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(res: int = 32, c_dim: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    G = FastGANGenerator(z_dim=8, c_dim=c_dim, resolution=res, channels=3, **TINY_G)
    D = FastGANDiscriminator(c_dim=c_dim, resolution=res, channels=3, **TINY_D)
    return G, D


def latents(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes_at_every_resolution(res):
    G, D = build(res)
    x = G(latents())
    assert x.shape == (4, 3, res, res) and float(x.detach().abs().max()) <= 1.0
    assert D(x).shape == (4,)
    logits, pairs = D.reconstruct(x, part=3)
    assert logits.shape == (4,) and len(pairs) == 2
    for rec, target in pairs:
        assert rec.shape == target.shape == (4, 3, 32, 32)
    assert len(G.sle) == {32: 1, 64: 2, 128: 3}[res]  # excitation 4->32, 8->64, 16->128


def test_bad_resolution_and_widths_raise():
    with pytest.raises(ValueError, match="resolution must be one of"):
        FastGANGenerator(resolution=48)
    with pytest.raises(ValueError, match="resolution must be one of"):
        FastGANDiscriminator(resolution=256)
    with pytest.raises(ValueError, match="width"):
        FastGANGenerator(width=0)
    G, D = build()
    with pytest.raises(ValueError, match="part must be"):
        D.reconstruct(G(latents()), part=4)
    with pytest.raises(ValueError, match="part must be"):
        D(G(latents()), part=-1)
    with pytest.raises(ValueError, match=r"expected images \[N, 3, 32, 32\]"):
        D(torch.zeros(2, 3, 64, 64))


def test_skip_excitation_gates_the_high_resolution_features():
    G, _ = build(64)  # training mode: batch statistics, so the features are not ~0 at initialisation
    z = latents()
    before = G(z)
    with torch.no_grad():
        G.sle["64"].squeeze[3].weight.zero_()  # gate = sigmoid(0) = 1/2 everywhere
    assert not torch.allclose(before, G(z))


def test_determinism_under_seed():
    G1, D1 = build(seed=5)
    G2, D2 = build(seed=5)
    G3, _ = build(seed=6)
    for net in (G1, G2, G3, D1, D2):
        net.eval()
    z = latents()
    assert torch.equal(G1(z), G2(z))
    assert torch.equal(D1(G1(z)), D2(G2(z)))
    assert not torch.equal(G1(z), G3(z))


def test_safetensors_round_trip(tmp_path):
    G, D = build(c_dim=3)
    z = latents()
    c = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()
    D(G(z, c), c)  # batch-norm statistics and spectral-norm vectors move away from their initial values
    save_checkpoint(tmp_path / "ck", {"G": G, "D": D}, {"family": "fastgan"})
    nets = load_networks(tmp_path / "ck")
    G.eval(), D.eval()
    assert torch.equal(G(z, c), nets["G"](z, c))
    assert torch.equal(D(G(z, c), c), nets["D"](G(z, c), c))
    assert nets["D"].config == D.config


def test_reconstruction_targets_are_the_image_and_its_quadrant():
    _, D = build(64)
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    for part, (rows, cols) in enumerate([(slice(0, 32), slice(0, 32)), (slice(0, 32), slice(32, 64)),
                                         (slice(32, 64), slice(0, 32)), (slice(32, 64), slice(32, 64))]):
        _, ((_, whole), (_, quarter)) = D.reconstruct(img, part=part)
        assert torch.allclose(whole, torch.nn.functional.avg_pool2d(img, 2))
        assert torch.equal(quarter, img[:, :, rows, cols])


def _batch(n: int = 8, res: int = 32) -> Batch:
    g = torch.Generator().manual_seed(2)
    return Batch(real=torch.rand(n, 3, res, res, generator=g) * 2 - 1, real_c=None, z=latents(n), gen_c=None)


def test_reconstruction_is_part_of_the_discriminator_loss():
    G, D = build()
    D.eval()  # no spectral-norm power iteration between the calls compared
    batch = _batch()
    stats = {}
    for weight in (0.0, 1.0, 2.0):
        loss = build_loss("fastgan", {"G": G, "D": D}, recon_weight=weight)
        torch.manual_seed(0)
        stats[weight] = loss.accumulate_gradients("Dmain", batch, 1.0)
        D.zero_grad()
    rec = stats[1.0]["loss/recon"]
    assert rec > 0 and "loss/recon" not in stats[0.0]
    assert stats[2.0]["loss/recon"] == pytest.approx(rec, rel=1e-6)  # same seed: same augmentation and quadrant
    assert stats[2.0]["loss/D"] - stats[1.0]["loss/D"] == pytest.approx(rec, rel=1e-4)
    # the decoders are trained by D's loss only through the reconstruction
    loss = build_loss("fastgan", {"G": G, "D": D})
    loss.accumulate_gradients("Dmain", batch, 1.0)
    assert D.decode_whole.body[2].weight.grad.abs().sum() > 0


def test_lazy_reconstruction_runs_every_kth_step_k_times_heavier():
    G, D = build()
    D.eval()
    batch = _batch()
    every = build_loss("fastgan", {"G": G, "D": D})
    lazy = build_loss("fastgan", {"G": G, "D": D}, recon_interval=3)
    plain = build_loss("fastgan", {"G": G, "D": D}, recon_weight=0.0)
    seen = []
    for step in range(4):
        want = {}
        for name, loss in (("every", every), ("plain", plain), ("lazy", lazy)):
            torch.manual_seed(step)  # the same augmentation (and quadrant) for each
            want[name] = loss.accumulate_gradients("Dmain", batch, 1.0)
            D.zero_grad()
        got, full = want["lazy"], want["every"]
        seen.append("loss/recon" in got)
        expected = full["loss/D"] + 2 * full["loss/recon"] if seen[-1] else want["plain"]["loss/D"]
        assert got["loss/D"] == pytest.approx(expected, rel=1e-5)
        lazy.after_step(step, 0)
    assert seen == [True, False, False, True]
    resumed = build_loss("fastgan", {"G": G, "D": D}, recon_interval=3)
    resumed.load_state_dict(lazy.state_dict())
    assert resumed.step == 4
    resumed.load_state_dict({})  # a checkpoint from before the option: starts counting at 0
    assert resumed.step == 0
    with pytest.raises(ValueError, match="unknown keys"):
        resumed.load_state_dict({"p": 0.1})


def test_discriminator_step_runs_under_torch_compile():
    """``--compile`` compiles ``forward`` only; the reconstruction pass must go through it too, or the compiled
    and eager passes update the batch-norm buffers two ways and backward raises (it did before)."""
    G, D = build()
    keys = D.state_dict().keys()
    D.compile(backend="aot_eager")
    loss = build_loss("fastgan", {"G": G, "D": D})
    for _ in range(2):
        stats = loss.accumulate_gradients("Dmain", _batch(), 1.0)
        assert stats["loss/recon"] > 0
    assert D.decode_part.body[2].weight.grad.abs().sum() > 0
    assert D.state_dict().keys() == keys  # compiled in place: checkpoints keep their keys


def test_loss_validation():
    G, D = build()
    with pytest.raises(ValueError, match="recon must be"):
        build_loss("fastgan", {"G": G, "D": D}, recon="lpips")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="recon_interval must be"):
            build_loss("fastgan", {"G": G, "D": D}, recon_interval=bad)
    with pytest.raises(ValueError, match="needs a discriminator with .reconstruct"):
        from ganforge.models.dcgan import DCGANDiscriminator

        build_loss("fastgan", {"G": G, "D": DCGANDiscriminator(resolution=32, channels=3)})


def test_recipe_defaults_follow_the_paper():
    r = get_recipe("fastgan")
    assert r.loss == "fastgan"
    assert r.defaults["lr_g"] == r.defaults["lr_d"] == 2e-4 and r.defaults["betas"] == (0.5, 0.999)
    assert r.defaults["xflip"] and r.defaults["ema_kimg"] > 0
