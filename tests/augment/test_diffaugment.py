"""DiffAugment (Zhao et al. 2020): every operation keeps shapes, passes gradients, is the identity at strength 0
and is reproducible under a seeded generator; the colour, translation and cutout maths checked on simple images."""

from __future__ import annotations

import pytest
import torch

from ganforge.augment import DiffAugment
from ganforge.augment.diffaugment import OPS, cutout, parse_policy, translation

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int = 6, c: int = 3, r: int = 8, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(n, c, r, r, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("c", [1, 3])
def test_each_op_keeps_the_shape(op, c):
    x = images(c=c, r=16)
    y = DiffAugment(op)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_op_is_differentiable(op):
    x = images(n=2, r=6, dtype=torch.float64).requires_grad_(True)
    aug = DiffAugment(op)
    # gradcheck calls the function several times: the same seed each time gives the same random transform
    assert torch.autograd.gradcheck(lambda t: aug(t, torch.Generator().manual_seed(3)), (x,))


def test_gradient_flows_through_the_whole_policy():
    x = images().requires_grad_(True)
    DiffAugment(p=1.0)(x, torch.Generator().manual_seed(0)).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_strength_zero_is_the_identity(policy):
    x = images()
    assert DiffAugment(policy, p=0.0)(x) is x


def test_seeded_generator_is_deterministic_and_seeds_differ():
    x = images(n=8, r=16)
    aug = DiffAugment()
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_partial_strength_leaves_some_samples_untouched():
    x = images(n=64, r=8)
    y = DiffAugment("brightness", p=0.5)(x, torch.Generator().manual_seed(0))
    same = (y == x).flatten(1).all(dim=1)
    assert 10 < int(same.sum()) < 54


def test_translation_is_an_integer_shift_with_zero_fill():
    x = torch.arange(1.0, 65.0).view(1, 1, 8, 8).repeat(32, 1, 1, 1)
    y = translation(x, torch.Generator().manual_seed(0))
    for img in y[:, 0]:
        # every pixel is either a zero fill or an original value, and the original values keep their order
        nonzero = img[img != 0]
        assert len(nonzero) >= 7 * 7  # shift at most 1/8 of 8 = 1 pixel per axis
        assert set(nonzero.tolist()) <= set(range(1, 65))
    assert not torch.equal(y, x)


def test_cutout_zeroes_at_most_a_quarter_of_the_image():
    x = torch.ones(32, 3, 16, 16)
    y = cutout(x, torch.Generator().manual_seed(0))
    zeroed = (y == 0).all(dim=1).flatten(1).sum(dim=1)  # zeroed pixels per sample
    assert (zeroed <= 8 * 8).all() and (zeroed > 0).all() and (zeroed == 64).any()
    assert ((y == 0) | (y == 1)).all()


def test_colour_ops_keep_a_flat_grey_image_flat_under_saturation_and_contrast():
    x = torch.full((4, 3, 8, 8), 0.25)
    y = DiffAugment("saturation,contrast")(x, torch.Generator().manual_seed(0))
    assert torch.allclose(y, x)


def test_parse_policy_and_validation():
    assert parse_policy("color,cutout") == ("brightness", "saturation", "contrast", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        parse_policy("color,blur")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        DiffAugment(p=1.5)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        DiffAugment()(torch.zeros(3, 8, 8))


def test_classic_losses_augment_what_d_sees_in_both_phases():
    from ganforge.losses import Batch, build_loss

    seen: list[torch.Tensor] = []

    class D(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x, c=None):
            seen.append(x.detach().clone())
            return x.flatten(1).mean(1) * self.w

    class G(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = torch.nn.Parameter(torch.zeros(1, 3, 8, 8))

        def forward(self, z, c=None):
            return torch.tanh(self.b + z.view(-1, 1, 1, 1))

    g, d = G(), D()
    batch = Batch(real=images(n=4), real_c=None, z=torch.zeros(4, 1), gen_c=None)
    loss = build_loss("hinge", {"G": g, "D": d}, augment="diffaugment")
    loss.accumulate_gradients("Dmain", batch, 1.0)
    assert not torch.equal(seen[0], batch.real)  # the reals D judged were augmented
    loss.accumulate_gradients("Gmain", batch, 1.0)
    assert g.b.grad is not None and g.b.grad.abs().sum() > 0  # G's gradient flows through the augmentation
    seen.clear()
    build_loss("hinge", {"G": g, "D": d}).accumulate_gradients("Dmain", batch, 1.0)
    assert torch.equal(seen[0], batch.real)  # no augmentation unless asked
    with pytest.raises(ValueError, match="augment must be one of"):
        build_loss("hinge", {"G": g, "D": d}, augment="ada")
