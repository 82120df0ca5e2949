"""DCGAN's ``blocks`` and ``top_blocks`` options (extra 3x3 layers below and at the image's resolution in G and D):
shapes at 28 / 32 / 64 px, depth added only where stated, the paper's network (and its checkpoint keys) unchanged at
0, loud validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator


def _convs(module: nn.Module, kernel: int) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (kernel, kernel)]


@pytest.mark.parametrize("resolution", [28, 32, 64])
@pytest.mark.parametrize(("blocks", "top_blocks"), [(0, 0), (1, 0), (2, 0), (0, 1), (1, 2)])
def test_blocks_keep_the_shapes(resolution, blocks, top_blocks):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, resolution=resolution, channels=3, width=8, blocks=blocks, top_blocks=top_blocks)
    D = DCGANDiscriminator(resolution=resolution, channels=3, width=8, blocks=blocks, top_blocks=top_blocks)
    img = G(torch.randn(4, 8))
    assert img.shape == (4, 3, resolution, resolution)
    assert D(img).shape == (4,)


def test_blocks_add_3x3_layers_below_the_image_resolution_only():
    # 28 px: G works at 7 and 14 px before the image, D after its first and before its last strided convolution
    G = DCGANGenerator(z_dim=8, resolution=28, channels=3, width=8, blocks=2)
    D = DCGANDiscriminator(resolution=28, channels=3, width=8, blocks=2, norm="none")
    assert len(_convs(G, 3)) == 2 * 2 and len(_convs(D, 3)) == 2 * 1
    sizes = []
    for m in _convs(G, 3):
        m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1]))
    G(torch.randn(2, 8))
    assert sorted(sizes) == [7, 7, 14, 14]


def test_top_blocks_work_at_the_image_resolution():
    # G: the last upsampling makes 8 features (half of width 16, at least 8), then top_blocks 3x3 layers, the last
    # making the colours; D: top_blocks 3x3 layers read the image, the first strided convolution reads their features
    G = DCGANGenerator(z_dim=8, resolution=28, channels=3, width=8, top_blocks=2)
    D = DCGANDiscriminator(resolution=28, channels=3, width=8, top_blocks=2, norm="none", pack=2)
    g3, d3 = _convs(G, 3), _convs(D, 3)
    assert [(m.in_channels, m.out_channels) for m in g3] == [(8, 8), (8, 3)]
    assert [(m.in_channels, m.out_channels) for m in d3] == [(6, 8), (8, 8)]  # 2 packed images x 3 channels in
    assert _convs(D, 4)[0].in_channels == 8
    sizes = []
    for m in g3:
        m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1]))
    assert G(torch.randn(2, 8)).shape == (2, 3, 28, 28) and sizes == [28, 28]


def test_zero_blocks_is_the_papers_network_with_its_checkpoint_keys():
    torch.manual_seed(0)
    plain_g, plain_d = DCGANGenerator(resolution=28, channels=3), DCGANDiscriminator(resolution=28, channels=3)
    torch.manual_seed(0)
    zero_g = DCGANGenerator(resolution=28, channels=3, blocks=0, top_blocks=0)
    zero_d = DCGANDiscriminator(resolution=28, channels=3, blocks=0, top_blocks=0)
    assert not _convs(zero_g, 3) and not _convs(zero_d, 3)
    assert list(plain_d.state_dict()) == list(zero_d.state_dict())
    for a, b in zip(plain_g.state_dict().values(), zero_g.state_dict().values()):
        assert torch.equal(a, b)
    # the keys earlier checkpoints were written with
    assert "body.3.running_mean" in zero_d.state_dict() and "ups.0.weight" in zero_g.state_dict()


def test_blocks_in_d_follow_its_norm():
    D = DCGANDiscriminator(resolution=28, channels=3, width=8, blocks=1, norm="spectral")
    (block,) = _convs(D, 3)
    assert hasattr(block, "parametrizations")  # spectrally normalised like D's other layers
    bn = DCGANDiscriminator(resolution=28, channels=3, width=8, blocks=1, norm="batch")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 2


@pytest.mark.parametrize("name", ["blocks", "top_blocks"])
@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_blocks_are_refused(name, bad):
    with pytest.raises(ValueError, match=f"^{name} must be an integer >= 0"):
        DCGANGenerator(resolution=28, **{name: bad})
    with pytest.raises(ValueError, match=f"^{name} must be an integer >= 0"):
        DCGANDiscriminator(resolution=28, **{name: bad})
