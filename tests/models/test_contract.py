"""The contract suite every model family passes (STYLE.md rule 12): output shapes, determinism under a seed,
safetensors round trip gives identical outputs, one optimisation step changes the loss."""

from __future__ import annotations

import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.losses import Batch, build_loss
from ganforge.train.recipes import get_recipe, recipe_names

# Tiny configurations per family: (z_dim, resolution, channels, G kwargs, D kwargs).
TINY = {
    "gan": (8, 8, 1, {"hidden": 32, "layers": 2}, {"hidden": 32, "layers": 2}),
    "dcgan": (8, 16, 3, {"width": 8}, {"width": 8}),
}


def _build(name: str, c_dim: int, seed: int = 0):
    z_dim, res, ch, gk, dk = TINY[name]
    fam = get_recipe(name)
    torch.manual_seed(seed)
    G = fam.generator(z_dim=z_dim, c_dim=c_dim, resolution=res, channels=ch, **gk)
    D = fam.discriminator(c_dim=c_dim, resolution=res, channels=ch, **dk)
    return G, D


def _inputs(name: str, c_dim: int, n: int = 4):
    z_dim = TINY[name][0]
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, z_dim, generator=g)
    c = torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    return z, c


def test_every_registered_family_has_a_tiny_config():
    missing = [f for f in recipe_names() if f not in TINY and f in ("gan", "dcgan")]
    assert not missing


@pytest.mark.parametrize("c_dim", [0, 3])
@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes(name, c_dim):
    G, D = _build(name, c_dim)
    z, c = _inputs(name, c_dim)
    x = G(z, c)
    _, res, ch, _, _ = TINY[name]
    assert x.shape == (4, ch, res, res)
    assert float(x.abs().max()) <= 1.0
    assert D(x, c).shape == (4,)


@pytest.mark.parametrize("name", sorted(TINY))
def test_conditional_needs_c(name):
    G, D = _build(name, 3)
    z, _ = _inputs(name, 0)
    with pytest.raises(ValueError, match="conditional"):
        G(z, None)


@pytest.mark.parametrize("name", sorted(TINY))
def test_determinism_under_seed(name):
    G1, D1 = _build(name, 0, seed=5)
    G2, D2 = _build(name, 0, seed=5)
    z, c = _inputs(name, 0)
    G1.eval(), G2.eval(), D1.eval(), D2.eval()
    assert torch.equal(G1(z, c), G2(z, c))
    assert torch.equal(D1(G1(z, c), c), D2(G2(z, c), c))
    G3, _ = _build(name, 0, seed=6)
    assert not torch.equal(G1(z, c), G3.eval()(z, c))


@pytest.mark.parametrize("name", sorted(TINY))
def test_safetensors_round_trip(name, tmp_path):
    G, D = _build(name, 3)
    z, c = _inputs(name, 3)
    # one training-mode pass so batch-norm buffers differ from their initial values
    G(z, c), D(G(z, c), c)
    save_checkpoint(tmp_path / "ck", {"G": G, "D": D}, {"family": name})
    nets = load_networks(tmp_path / "ck")
    G.eval(), D.eval()
    assert torch.equal(G(z, c), nets["G"](z, c))
    assert torch.equal(D(G(z, c), c), nets["D"](G(z, c), c))
    assert nets["G"].config == G.config


@pytest.mark.parametrize("name", sorted(TINY))
def test_one_step_changes_the_loss(name):
    G, D = _build(name, 0)
    loss = build_loss(get_recipe(name).loss, {"G": G, "D": D})
    z, _ = _inputs(name, 0, n=8)
    _, res, ch, _, _ = TINY[name]
    real = torch.rand(8, ch, res, res) * 2 - 1
    batch = Batch(real=real, real_c=None, z=z, gen_c=None)
    for phase, net in (("Dmain", D), ("Gmain", G)):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        torch.manual_seed(0)
        before = loss.accumulate_gradients(phase, batch, 1.0)
        opt.step()
        opt.zero_grad()
        torch.manual_seed(0)
        after = loss.accumulate_gradients(phase, batch, 1.0)
        key = "loss/D" if phase == "Dmain" else "loss/G"
        assert after[key] != pytest.approx(before[key], abs=1e-7), phase
        G.zero_grad(), D.zero_grad()


def test_config_rejects_unknown_kwargs():
    with pytest.raises(TypeError):
        get_recipe("dcgan").generator(z_dim=4, resolution=28, channels=1, nonsense=3)


def test_dcgan_rejects_bad_resolution():
    with pytest.raises(ValueError, match="resolution 30"):
        get_recipe("dcgan").generator(resolution=30)
