"""The contract suite every model family passes (STYLE.md rule 12): output shapes, determinism under a seed,
safetensors round trip gives identical outputs, one optimisation step changes the loss.

Every registered training recipe is covered: a tiny configuration in ``TINY``, or, for a family whose networks do
not follow the noise-to-image contract, the named tests in ``OWN_CONTRACT`` that check the same properties."""

from __future__ import annotations

import importlib

import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.losses import Batch, build_loss
from ganforge.train.recipes import get_recipe, recipe_names

# Tiny configurations per family: (z_dim, resolution, channels, G kwargs, D kwargs).
TINY = {
    "gan": (8, 8, 1, {"hidden": 32, "layers": 2}, {"hidden": 32, "layers": 2}),
    "dcgan": (8, 16, 3, {"width": 8}, {"width": 8}),
    "fastgan": (8, 32, 3, {"width": 2, "max_width": 16}, {"width": 2, "max_width": 16, "decoder_width": 4}),
    "progan": (8, 16, 1, {"fmap_base": 32, "fmap_max": 8}, {"fmap_base": 32, "fmap_max": 8}),
    "stylegan": (8, 16, 3, {"w_dim": 8, "mapping_layers": 2, "channel_base": 64, "channel_max": 8},
                 {"channel_base": 64, "channel_max": 8}),
}
# ProGAN's generator output is linear (paper sec. 4.1; images are clamped only for display), so it is not bounded.
UNBOUNDED = {"progan"}
# UNIT translates images between two domains (G(x_a) -> x_b, D(img, domain) -> per-scale maps): no z, no c_dim.
# Its own tests check the same four properties, by name.
OWN_CONTRACT = {
    "unit": {
        "shapes": "tests.models.test_unit:test_shapes_for_domains_with_different_channels_and_non_square_sizes",
        "determinism": "tests.models.test_unit:test_construction_is_deterministic_under_a_seed",
        "round trip": "tests.models.test_unit:test_safetensors_checkpoint_round_trip_gives_identical_outputs",
        "one step": "tests.models.test_unit:test_one_step_changes_the_loss",
    },
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _build(name: str, c_dim: int, seed: int = 0):
    z_dim, res, ch, gk, dk = TINY[name]
    recipe = get_recipe(name)
    torch.manual_seed(seed)
    G = recipe.generator(z_dim=z_dim, c_dim=c_dim, resolution=res, channels=ch, **gk)
    D = recipe.discriminator(c_dim=c_dim, resolution=res, channels=ch, **dk)
    return G, D


def _inputs(name: str, c_dim: int, n: int = 4):
    z_dim = TINY[name][0]
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, z_dim, generator=g)
    c = torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    return z, c


def _seeded(fn, *args):
    """``fn(*args)`` with the global RNG seeded: per-pixel noise inputs (StyleGAN) draw from it even in eval mode."""
    torch.manual_seed(123)
    return fn(*args)


def test_every_registered_recipe_is_covered():
    names = recipe_names()
    assert {"gan", "dcgan", "progan", "stylegan", "unit"} <= set(names)
    missing = [n for n in names if n not in TINY and n not in OWN_CONTRACT]
    assert not missing, f"recipes without a tiny contract config or their own contract tests: {missing}"
    assert not set(TINY) & set(OWN_CONTRACT)


@pytest.mark.parametrize("name", sorted(OWN_CONTRACT))
def test_own_contract_tests_exist(name):
    for prop, ref in OWN_CONTRACT[name].items():
        module, func = ref.split(":")
        assert callable(getattr(importlib.import_module(module), func, None)), f"{name}: {prop} test {ref} is gone"


@pytest.mark.parametrize("c_dim", [0, 3])
@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes(name, c_dim):
    G, D = _build(name, c_dim)
    z, c = _inputs(name, c_dim)
    with torch.no_grad():
        x = G(z, c)
        _, res, ch, _, _ = TINY[name]
        assert x.shape == (4, ch, res, res)
        assert bool(torch.isfinite(x).all())
        if name not in UNBOUNDED:
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
    assert torch.equal(_seeded(G1, z, c), _seeded(G2, z, c))
    assert torch.equal(D1(_seeded(G1, z, c), c), D2(_seeded(G2, z, c), c))
    G3, _ = _build(name, 0, seed=6)
    assert not torch.equal(_seeded(G1, z, c), _seeded(G3.eval(), z, c))


@pytest.mark.parametrize("name", sorted(TINY))
def test_safetensors_round_trip(name, tmp_path):
    G, D = _build(name, 3)
    z, c = _inputs(name, 3)
    # one training-mode pass so batch-norm buffers differ from their initial values
    G(z, c), D(G(z, c), c)
    save_checkpoint(tmp_path / "ck", {"G": G, "D": D}, {"family": name})
    nets = load_networks(tmp_path / "ck")
    G.eval(), D.eval()
    assert torch.equal(_seeded(G, z, c), _seeded(nets["G"], z, c))
    x = _seeded(G, z, c)
    assert torch.equal(D(x, c), nets["D"](x, c))
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
