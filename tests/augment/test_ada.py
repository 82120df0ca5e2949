"""ADA's augmentation pipe and p controller: identities, exactness of the pixel-blitting ops, colour maths,
differentiability, and the r_t feedback rule."""

from __future__ import annotations

import pytest
import torch

from ganforge.augment import PRESETS, AdaController, AugmentPipe, parse_ops

pytestmark = pytest.mark.usefixtures("one_thread")



def images(n: int = 16, c: int = 3, r: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_zero_is_the_identity():
    x = images()
    assert AugmentPipe("bgc", p=0.0)(x) is x


def test_parse_ops():
    assert parse_ops("bgc") == PRESETS["bgc"]
    assert parse_ops("hue,xflip") == ("xflip", "hue")  # canonical order
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_ops("xflip,blur")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        AugmentPipe(p=1.5)


def test_xflip_is_exact_and_happens_half_the_time():
    x = images(200)
    y = AugmentPipe("xflip", p=1.0)(x)
    same = (y - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (y - x.flip(3)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all())
    assert 60 < int(flipped.sum()) < 140


def test_rotate90_is_exact():
    x = images(64)
    y = AugmentPipe("rotate90", p=1.0)(x)
    options = torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # [4, N, C, H, W]
    err = (options - y[None]).abs().flatten(2).amax(2)  # [4, N]
    assert bool((err.amin(0) < 1e-5).all())
    assert len(set(err.argmin(0).tolist())) == 4


def test_integer_translation_moves_whole_pixels():
    x = images(32, r=16)
    y = AugmentPipe("xint", p=1.0)(x)
    # every output pixel is an input pixel of the same sample and channel (reflection padding, no interpolation)
    for i in range(4):
        vals = x[i, 0].flatten()
        d = (y[i, 0].flatten()[:, None] - vals[None]).abs().amin(1)
        assert float(d.max()) < 1e-5
    assert not torch.allclose(y, x)


def test_colour_ops_leave_grey_alone_and_preserve_luma():
    grey = images(32, c=1).expand(-1, 3, -1, -1).contiguous()
    for ops in ("hue", "saturation"):
        assert torch.allclose(AugmentPipe(ops, p=1.0)(grey), grey, atol=1e-5), ops
    x = images(32)
    y = AugmentPipe("hue", p=1.0)(x)
    assert torch.allclose(y.sum(1), x.sum(1), atol=1e-4)  # rotation about the luma axis keeps R+G+B
    assert not torch.allclose(y, x, atol=1e-3)


def test_grayscale_images_get_brightness_and_contrast_only():
    x = images(16, c=1)
    assert torch.allclose(AugmentPipe("lumaflip,hue,saturation", p=1.0)(x), x)
    y = AugmentPipe("brightness,contrast", p=1.0)(x)
    # an affine map per sample: y = a x + b
    for i in range(4):
        a, b = torch.linalg.lstsq(torch.stack([x[i].flatten(), torch.ones(64)], 1), y[i].flatten()[:, None]).solution
        assert torch.allclose(a * x[i] + b, y[i], atol=1e-5)


def test_all_ops_keep_shape_and_are_differentiable():
    x = images(4, r=8).double().requires_grad_(True)
    pipe = AugmentPipe("bgc", p=0.7)

    def f(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # same random draws on every call
        return pipe(inp)

    assert f(x).shape == x.shape
    assert torch.autograd.gradcheck(f, (x[:2],), atol=1e-6, fast_mode=True)
    # R1 needs second derivatives through the pipe (grad of D(aug(x)) w.r.t. x, then backward to D's weights).
    w = torch.randn(4, 3, 3, 3, dtype=torch.double, requires_grad=True)
    out = torch.nn.functional.conv2d(f(x), w).square().sum()
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    g.square().sum().backward()
    assert w.grad is not None and bool(torch.isfinite(w.grad).all()) and float(w.grad.abs().sum()) > 0


def test_controller_raises_p_by_the_ada_rule_and_clamps_it():
    pipe = AugmentPipe("xflip", p=0.0)
    ctl = AdaController(pipe, target=0.6, interval=4, speed_kimg=1.0, p_max=0.5)
    nimg = 0
    ctl.step(nimg)  # first call records the starting image count
    for _ in range(3):  # D says "real" for every real image: r_t = 1 > 0.6
        ctl.accumulate(torch.ones(32))
        nimg += 32
        stats = ctl.step(nimg)
    assert stats["augment/rt"] == 1.0
    assert pipe.p == pytest.approx(96 / 1000)  # moved by images seen / (speed_kimg * 1000)
    for _ in range(40):
        ctl.accumulate(torch.ones(32))
        nimg += 32
        ctl.step(nimg)
    assert pipe.p == 0.5  # bounded by p_max
    for _ in range(200):  # now D is unsure: r_t = -1 < 0.6 -> p falls, never below 0
        ctl.accumulate(-torch.ones(32))
        nimg += 32
        ctl.step(nimg)
    assert pipe.p == 0.0


def test_controller_state_round_trip_and_validation():
    pipe = AugmentPipe("xflip", p=0.3)
    ctl = AdaController(pipe, p_max=0.8)
    ctl.step(100)
    state = ctl.state_dict()
    other = AdaController(AugmentPipe("xflip"), p_max=0.8)
    other.load_state_dict(state)
    assert other.pipe.p == 0.3 and other.state_dict() == state
    with pytest.raises(ValueError, match="outside"):
        AdaController(AugmentPipe("xflip"), p_max=0.2).load_state_dict(state)
    with pytest.raises(ValueError, match="above p_max"):
        AdaController(AugmentPipe("xflip", p=0.9), p_max=0.8)
    with pytest.raises(ValueError, match="ada_target"):
        AdaController(pipe, target=1.5)
