"""The mode-coverage options of the MLP and DCGAN discriminators (PacGAN packing, minibatch standard deviation) and of
the MLP generator (a categorical part of the latent): shapes, what the network sees, determinism, save/load round
trip, loud validation."""

from __future__ import annotations

import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.models.dcgan import DCGANDiscriminator
from ganforge.models.gan import CategoricalLatent, MLPDiscriminator, MLPGenerator, pack_rows


def _points(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, 1, 1, generator=torch.Generator().manual_seed(seed))  # [N, 2, 1, 1] toy points


def _mlp_d(**kw) -> MLPDiscriminator:
    torch.manual_seed(0)
    return MLPDiscriminator(resolution=1, channels=2, hidden=16, layers=2, **kw)


def _dcgan_d(**kw) -> DCGANDiscriminator:
    torch.manual_seed(0)
    return DCGANDiscriminator(resolution=16, channels=3, width=8, norm="none", **kw)


def test_pack_rows_concatenates_consecutive_samples():
    x = torch.arange(12.0).view(6, 2)
    packed = pack_rows(x, 3)
    assert packed.shape == (2, 6) and packed[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert pack_rows(x, 1) is x
    with pytest.raises(ValueError, match="multiple of 4"):
        pack_rows(x, 4)


def test_packed_mlp_d_sees_pack_samples_at_once():
    D = _mlp_d(pack=2)
    assert D.net[0].in_features == 2 * 2  # m x (channels * R * R)
    x = _points(8)
    logits = D(x)
    assert logits.shape == (4,)
    assert torch.equal(logits, D.net(x.flatten(1).reshape(4, 4)).squeeze(1))
    x2 = x.clone()
    x2[1] += 1.0  # the second sample of the first pack: only that pack's logit moves
    moved = D(x2) != logits
    assert moved.tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="multiple of 2"):
        D(_points(7))


def test_packed_conditional_mlp_d_packs_the_labels_too():
    torch.manual_seed(0)
    D = MLPDiscriminator(c_dim=3, resolution=1, channels=2, hidden=16, layers=1, pack=2)
    c = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()
    assert D.net[0].in_features == (2 + 3) * 2 and D(_points(4), c).shape == (2,)


def test_mbstd_mlp_d_depends_on_the_rest_of_its_group():
    D = _mlp_d(mbstd_group=4).eval()
    x = _points(8)
    base = D(x)
    assert base.shape == (8,)
    x2 = x.clone()
    x2[0] += 1.0  # groups are strided as in ProGAN: sample 0 shares its statistic with 2, 4 and 6
    assert (D(x2) != base).tolist() == [True, False] * 4
    plain = _mlp_d().eval()
    x3 = x.clone()
    x3[0] += 1.0
    assert (plain(x3) != plain(x)).tolist().count(True) == 1


@pytest.mark.parametrize("make", [_mlp_d, _dcgan_d])
@pytest.mark.parametrize("options", [{"pack": 2}, {"mbstd_group": 2}, {"pack": 2, "mbstd_group": 2}])
def test_options_are_deterministic_and_survive_a_checkpoint(make, options, tmp_path):
    D = make(**options).eval()
    x = _points(8) if make is _mlp_d else torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    want = 8 // options.get("pack", 1)
    out = D(x)
    assert out.shape == (want,) and torch.equal(out, make(**options).eval()(x))
    save_checkpoint(tmp_path / "ck", {"D": D}, {"family": "test"})
    loaded = load_networks(tmp_path / "ck", ["D"])["D"]
    assert loaded.config["pack"] == options.get("pack", 1) and torch.equal(loaded(x), out)


def test_dcgan_d_packs_along_channels_and_adds_one_stddev_map():
    D = _dcgan_d(pack=3, mbstd_group=2)
    assert D.body[0].in_channels == 3 * 3
    s = 4  # 16 = 4 * 2**2: the final feature map is 4 x 4 with 16 channels, plus the stddev map
    assert D.out.in_features == (16 + 1) * s * s
    assert D(torch.randn(6, 3, 16, 16)).shape == (2,)


@pytest.mark.parametrize("bad", [{"pack": 0}, {"pack": 1.5}, {"mbstd_group": 1}, {"mbstd_group": -2}])
def test_bad_options_raise(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        _mlp_d(**bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        _dcgan_d(**bad)
    with pytest.raises(ValueError, match="hidden layer"):
        MLPDiscriminator(resolution=1, channels=2, layers=0, mbstd_group=2)


def test_linear_generator_reaches_beyond_the_unit_square():
    torch.manual_seed(0)
    G = MLPGenerator(z_dim=4, resolution=1, channels=2, hidden=8, layers=1, out_activation="linear")
    with torch.no_grad():
        G.net[-1].weight.zero_()
        G.net[-1].bias.fill_(3.0)
        x = G(torch.randn(2, 4))
    assert x.shape == (2, 2, 1, 1) and torch.equal(x, torch.full_like(x, 3.0))  # no tanh: points of radius 2+


def test_categorical_latent_cuts_the_first_coordinate_into_equal_slices():
    torch.manual_seed(0)
    cat = CategoricalLatent(4, 3)
    z = torch.tensor([[-9.0, 0.5], [-0.1, 0.5], [0.1, 0.5], [9.0, -2.0]])  # slices: < -0.674, < 0, < 0.674, the rest
    out = cat(z)
    assert out.shape == (4, 3 + 1)
    w = cat.embed.weight
    assert torch.equal(out[:, :3], w[[0, 1, 2, 3]]) and torch.equal(out[:, 3], z[:, 1])  # the rest stays continuous
    # equally likely categories: the share of a large Gaussian sample in each slice is 1/4
    idx = (cat(torch.randn(40_000, 2))[:, :3, None] == w.T[None]).all(1).float().argmax(1)
    assert torch.allclose(torch.bincount(idx, minlength=4) / 40_000.0, torch.full((4,), 0.25), atol=0.01)


def test_categorical_generator_is_piecewise_in_the_first_coordinate_and_survives_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    G = MLPGenerator(z_dim=3, resolution=1, channels=2, hidden=16, layers=2, out_activation="linear",
                     latent_categories=8).eval()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    nudged = z.clone()
    nudged[:, 0] += 1e-4  # almost surely inside the same slice: the same point
    other = z.clone()
    other[:, 1] += 0.5  # a continuous coordinate moves the point
    out = G(z)
    assert out.shape == (6, 2, 1, 1) and torch.equal(G(nudged), out) and not torch.allclose(G(other), out)
    G(z).sum().backward()
    assert G.categories.embed.weight.grad.abs().sum() > 0  # the embeddings train with the network
    save_checkpoint(tmp_path / "ck", {"G": G}, {"family": "test"})
    loaded = load_networks(tmp_path / "ck", ["G"])["G"]
    assert loaded.config["latent_categories"] == 8 and torch.equal(loaded(z), out)


@pytest.mark.parametrize("bad", [{"latent_categories": 1}, {"latent_categories": -2},
                                 {"latent_categories": 4, "z_dim": 1}])
def test_bad_latent_categories_raise(bad):
    with pytest.raises(ValueError, match="latent_categories"):
        MLPGenerator(**({"z_dim": 3, "resolution": 1, "channels": 2} | bad))
