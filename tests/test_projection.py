"""Projection into w / w+: a generated image is recovered (low distance) on a tiny model."""

from __future__ import annotations

import pytest
import torch

from ganforge.metrics.perceptual import PyramidDistance
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.stylegan import StyleGenerator
from ganforge.projection import project

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_g_and_target():
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=16, channels=1, w_dim=16, mapping_layers=2, channel_base=128,
                       channel_max=16)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, 8, generator=torch.Generator().manual_seed(7)))
        target = G.synthesis(ws, noise_mode="const")
    return G, ws, target


@pytest.mark.parametrize("space", ["w", "w+"])
def test_projection_recovers_a_generated_image(space):
    G, ws, target = tiny_g_and_target()
    d = PyramidDistance()
    with torch.no_grad():  # distance of the starting point, the image of the mean w
        start = float(d(G.synthesis(G.mapping(torch.randn(500, 8)).mean(0, keepdim=True), noise_mode="const"), target))
    res = project(G, target[0], d, steps=150, space=space, w_avg_samples=500, frame_every=50)
    assert res.distance < 0.02 * start
    assert res.ws.shape == (1, G.num_ws, 16) and res.image.shape == target.shape
    assert res.distance_name == "pixel" and res.space == space and len(res.history) == 150
    assert len(res.frames) == 4 and res.frames[0].shape == (16, 32, 1)
    if space == "w":
        assert torch.equal(res.ws, res.ws[:, :1].expand_as(res.ws))
        assert float((res.ws[0, 0] - ws[0, 0]).norm() / ws[0, 0].norm()) < 0.5  # close to the true w


def test_projection_validates():
    G, _, target = tiny_g_and_target()
    with pytest.raises(ValueError, match="space"):
        project(G, target, PyramidDistance(), steps=2, space="z")
    with pytest.raises(ValueError, match=r"target must have shape \[1, 1, 16, 16\]"):
        project(G, torch.zeros(1, 3, 16, 16), PyramidDistance(), steps=2)
    with pytest.raises(ValueError, match="style-based"):
        project(DCGANGenerator(resolution=16), target, PyramidDistance(), steps=2)
