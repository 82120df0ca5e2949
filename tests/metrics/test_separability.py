"""Linear separability: conditional entropy maths, separable vs random labels, and generation with labels."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.metrics.separability import conditional_entropy, generate_labelled, linear_separability
from ganforge.models.stylegan import StyleGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_conditional_entropy():
    y = torch.tensor([True, False, True, False])
    assert conditional_entropy(y, y) == 0.0
    assert conditional_entropy(y, torch.tensor([True, True, False, False])) == pytest.approx(math.log(2))


def test_separable_labels_give_one_and_random_labels_more():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g)
    score = (x @ torch.tensor([1.0, -2.0, 0.5])).double()
    logits = torch.stack([-score, score], 1)  # two classes, decided by a hyperplane; confident far from it
    res = linear_separability(x, logits)
    assert res["separability"] == pytest.approx(1.0, abs=0.05) and res["attributes"] == 2
    random_logits = torch.randn(400, 2, generator=g) * 5
    res = linear_separability(x, random_logits)
    assert res["separability"] > 3.0  # close to exp(2 ln 2) = 4 for two coin-flip attributes


def test_validation_and_generation():
    with pytest.raises(ValueError, match="same N"):
        linear_separability(torch.randn(4, 2), torch.randn(5, 2))
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=8, channels=1, w_dim=6, mapping_layers=1, channel_base=32, channel_max=8)
    lat, logits = generate_labelled(G, lambda img: img.flatten(1)[:, :3], 10, space="w", batch_size=4)
    assert lat.shape == (10, 6) and logits.shape == (10, 3)
    lat, _ = generate_labelled(G, lambda img: img.flatten(1)[:, :3], 10, space="z")
    assert lat.shape == (10, 8)


def test_registered_metric_labels_with_the_extractor():
    from ganforge.metrics.context import EvalContext, SampleSet
    from ganforge.metrics.evaluate import run_metrics
    from ganforge.metrics.features import FeatureExtractor, Features

    class LeftRight(FeatureExtractor):
        """Two classes: images brighter on the left, and on the right."""

        name, weights_sha256, resize, feature_dim, num_classes = "left-right", "test", "none", 1, 2

        def extract(self, images):
            x = images.double()
            m = x[..., :4].mean(dim=[1, 2, 3]) - x[..., 4:].mean(dim=[1, 2, 3])
            return Features(m[:, None], torch.stack([-m, m], 1) / 10)

    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=8, channels=1, w_dim=6, mapping_layers=1, channel_base=32, channel_max=8)
    ctx = EvalContext(SampleSet.from_generator(G, 200), extractor=LeftRight(), generator=G, batch_size=50)
    (res,) = run_metrics(["separability-w"], ctx)
    assert res.values["separability_w"] >= 1.0 and res.values["attributes"] == 2
