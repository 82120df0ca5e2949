"""TF1-compatible bilinear resize: bit-exact with torch-fidelity's function, plus properties that hold anyway."""

from __future__ import annotations

import torch

from ganforge.metrics.resize import resize_bilinear_tf1
from tests.metrics import reference


def test_bit_exact_with_torch_fidelity():
    theirs = reference.tf1_resize()
    g = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 28, 28), (1, 3, 32, 32), (1, 1, 64, 48), (1, 3, 300, 410)]:
        x = torch.randint(0, 256, shape, generator=g).float()
        expected = theirs(x, size=(299, 299), align_corners=False)
        assert torch.equal(resize_bilinear_tf1(x, (299, 299)), expected), shape


def test_known_values_of_the_tf1_rule():
    # TF1 align_corners=False samples output i at input i * in / out, without a half-pixel offset:
    # 2 -> 4 columns sample at 0, 0.5, 1, 1.5 (clamped to the last column).
    x = torch.tensor([[[[0.0, 10.0]]]])
    assert resize_bilinear_tf1(x, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    # 4 -> 2 samples columns 0 and 2 (no averaging).
    y = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    assert resize_bilinear_tf1(y, (1, 2)).flatten().tolist() == [1.0, 3.0]


def test_identity_and_constants():
    x = torch.rand(2, 3, 17, 17)
    assert torch.equal(resize_bilinear_tf1(x, (17, 17)), x)
    c = torch.full((1, 1, 9, 13), 7.0)
    assert torch.equal(resize_bilinear_tf1(c, (299, 299)), torch.full((1, 1, 299, 299), 7.0))
