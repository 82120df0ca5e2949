"""Perceptual path length (and the perceptual distances it and projection use): interpolation maths, the 1/eps^2
scaling against a closed-form reference, batch-size independence, outlier rule, and the distances' properties."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.metrics.perceptual import PyramidDistance, build_distance, digits_distance
from ganforge.metrics.ppl import path_lengths, perceptual_path_length, ppl_from_lengths, slerp
from ganforge.models.classifier import DigitsClassifier
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.stylegan import StyleGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


class LinearStyleG(nn.Module):
    """A 'style' generator whose image is a fixed linear map of w = z: PPL has a closed form."""

    def __init__(self, z_dim: int = 6, num_ws: int = 2) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws = z_dim, 0, num_ws
        self.A = torch.randn(z_dim, 16, generator=torch.Generator().manual_seed(0))

    def mapping(self, z, c=None):
        return z[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws, noise_mode="random"):
        return (ws[:, 0] @ self.A).view(-1, 1, 4, 4)


def test_slerp_endpoints_and_angles():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.allclose(slerp(a, b, torch.zeros(5)), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.ones(5)), b, atol=1e-5)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    mid = slerp(ua, ub, torch.full((5,), 0.5))
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-5)
    angle = torch.acos((ua * ub).sum(1))
    assert torch.allclose(torch.acos((mid * ua).sum(1).clamp(-1, 1)), angle / 2, atol=1e-4)
    assert torch.allclose(slerp(a, a, torch.full((5,), 0.3)), a, atol=1e-5)  # parallel: no NaN


def test_w_space_ppl_matches_closed_form():
    """For img = A w and the single-scale pixel distance, d / eps^2 = mean(((w1 - w0) A)^2) for every t."""
    G = LinearStyleG()
    n = 40
    lengths = path_lengths(G, PyramidDistance(), n, space="w", sampling="full", epsilon=1e-2, seed=3)
    gen = torch.Generator().manual_seed(3)
    expected = []
    for _ in range(n):  # the same draws path_lengths makes, in order
        z = torch.randn(2, 6, generator=gen)
        torch.rand(1, generator=gen)
        expected.append(float(((z[1] - z[0]) @ G.A).square().mean()))
    assert torch.allclose(lengths, torch.tensor(expected, dtype=torch.float64), rtol=1e-3)


def test_batch_size_independence_and_provenance():
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=8, channels=1, w_dim=8, mapping_layers=1, channel_base=32, channel_max=8)
    d = PyramidDistance()
    a = path_lengths(G, d, 10, space="w", batch_size=3)
    b = path_lengths(G, d, 10, space="w", batch_size=10)
    assert torch.allclose(a, b, rtol=1e-2)  # same draws; only fp32 rounding differs (eps = 1e-4 amplifies it)
    res = perceptual_path_length(G, d, 10, space="z", sampling="full")
    assert res["distance"] == "pixel" and res["space"] == "z" and res["epsilon"] == 1e-4 and res["ppl"] > 0


def test_z_space_works_for_any_generator_and_w_needs_a_mapping():
    G = DCGANGenerator(z_dim=8, resolution=16, channels=1, width=8).eval()
    assert perceptual_path_length(G, PyramidDistance(), 4, space="z")["ppl"] > 0
    with pytest.raises(ValueError, match="style-based"):
        path_lengths(G, PyramidDistance(), 4, space="w")
    with pytest.raises(ValueError, match="sampling"):
        path_lengths(G, PyramidDistance(), 4, space="z", sampling="middle")


def test_outlier_rule_drops_the_extreme_percentiles():
    lengths = torch.cat([torch.ones(198), torch.tensor([1000.0, -1000.0])]).double()
    assert ppl_from_lengths(lengths) == pytest.approx(1.0)
    assert ppl_from_lengths(torch.arange(1, 101).double()) == pytest.approx(50.5)


def test_pyramid_distance():
    d = PyramidDistance()
    a = torch.rand(3, 1, 16, 16)
    assert torch.equal(d(a, a), torch.zeros(3))
    # a constant offset delta contributes delta^2 at each of the 16, 8 and 4 pixel scales
    assert torch.allclose(d(a, a + 0.1), torch.full((3,), 3 * 0.01), atol=1e-6)


def test_digits_feature_distance():
    torch.manual_seed(0)
    dist = digits_distance(DigitsClassifier(resolution=28).double())
    a, b = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.allclose(dist(a, a), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(dist(a, b), dist(b, a)) and bool((dist(a, b) > 0).all())
    # 3-channel images are read channel by channel (Stacked MNIST): three equal channels give three times the distance
    assert torch.allclose(dist(a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)), 3 * dist(a, b))
    x = a.clone().requires_grad_(True)
    dist(x, b).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert dist.name == "digits"


def test_build_distance_validates():
    assert isinstance(build_distance("pixel"), PyramidDistance)
    with pytest.raises(ValueError, match="unknown perceptual distance"):
        build_distance("vgg")


def test_registered_metrics_use_the_extractor_network():
    from ganforge.metrics import metric_names
    from ganforge.metrics.context import EvalContext, SampleSet
    from ganforge.metrics.evaluate import run_metrics
    from ganforge.metrics.features import FeatureExtractor

    class FakeDigits(FeatureExtractor):
        name, weights_sha256, resize, feature_dim = "digits", "test", "none", 64

        def __init__(self) -> None:
            torch.manual_seed(0)
            self.net = DigitsClassifier(resolution=28).eval()

    assert {"ppl", "ppl-w-end", "ppl-w-full", "ppl-z-end", "ppl-z-full"} <= set(metric_names())
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=8, channels=1, w_dim=8, mapping_layers=1, channel_base=32, channel_max=8)
    ctx = EvalContext(SampleSet.from_generator(G, 6), extractor=FakeDigits(), generator=G, batch_size=4)
    (res,) = run_metrics(["ppl-z-full"], ctx)
    assert res.values["ppl_z_full"] > 0 and res.extractor["extractor"] == "digits"
    dcgan = DCGANGenerator(z_dim=8, resolution=16, channels=1, width=8).eval()
    ctx = EvalContext(SampleSet.from_generator(dcgan, 4), extractor=FakeDigits(), generator=dcgan)
    with pytest.raises(ValueError, match="ppl-z-end"):
        run_metrics(["ppl"], ctx)


def test_conditional_pairs_draw_classes_uniformly_or_from_the_generator_prior():
    from ganforge.metrics.ppl import _random_classes

    gen = torch.Generator().manual_seed(0)
    assert _random_classes(4, 0, gen) is None
    uniform = _random_classes(300, 3, gen).argmax(1)
    assert set(uniform.tolist()) == {0, 1, 2}
    skewed = _random_classes(50, 3, gen, torch.tensor([0.0, 1.0, 0.0])).argmax(1)
    assert skewed.tolist() == [1] * 50
