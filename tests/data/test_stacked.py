"""Stacked MNIST: three digits as R, G, B; labels 100 r + 10 g + b; deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.data.stacked import STACKED_SIZE, stack_digits


def test_stack_digits_labels_and_channels():
    digits = np.stack([np.full((28, 28, 1), k * 20, np.uint8) for k in range(10)])  # digit k has brightness 20 k
    images, labels = stack_digits(digits, np.arange(10), 500, seed=0)
    assert images.shape == (500, 28, 28, 3) and images.dtype == np.uint8
    r, g, b = (images[:, 0, 0, c].astype(np.int64) // 20 for c in range(3))
    assert np.array_equal(labels, 100 * r + 10 * g + b)
    again, _ = stack_digits(digits, np.arange(10), 500, seed=0)
    assert np.array_equal(images, again)
    with pytest.raises(ValueError, match="single-channel"):
        stack_digits(images, labels, 10, seed=0)


def test_builtin_stacked_mnist():
    ds = load_dataset("stacked-mnist")
    assert ds.data.shape == (STACKED_SIZE, 3, 28, 28) and ds.data.dtype == torch.uint8
    assert ds.num_classes == 1000
    assert (ds.class_counts() > 0).all()  # all 1000 modes present
    digits = load_dataset("digits")
    for i in (0, 12345, STACKED_SIZE - 1):  # every channel is one of the real digits, with the right label
        label = int(ds.labels[i])
        for c, want in enumerate((label // 100, label // 10 % 10, label % 10)):
            match = (digits.data[:, 0] == ds.data[i, c]).flatten(1).all(dim=1)
            assert match.any() and set(digits.labels[match].tolist()) == {want}
    assert torch.equal(load_dataset("stacked-mnist").data[:100], ds.data[:100])


def test_stacked_mnist_can_be_resized_by_policy():
    ds = load_dataset("stacked-mnist", resolution=32, resize="pad", max_images=10)
    assert ds.data.shape == (10, 3, 32, 32)
