"""Stacked MNIST: three digits as R, G, B; labels 100 r + 10 g + b; deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.data.stacked import STACKED_SIZE, stack_digits, triple_prior


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
    # the 60,000 labels are a sample of independent triples from the 500-per-class pool: the population is uniform
    assert ds.class_prior.shape == (1000,) and np.allclose(ds.class_prior, 1e-3, rtol=1e-12)
    assert not np.array_equal(ds.class_counts() / STACKED_SIZE, ds.class_prior)  # the sample's histogram is noisy


def test_triple_prior_is_the_product_of_the_pool_shares():
    pool = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9])
    prior = triple_prior(pool)
    shares = np.bincount(pool, minlength=10) / len(pool)
    assert prior.shape == (1000,) and prior.sum() == pytest.approx(1.0)
    for r, g, b in ((0, 0, 0), (9, 1, 0), (2, 9, 9), (5, 5, 1)):
        assert prior[100 * r + 10 * g + b] == pytest.approx(shares[r] * shares[g] * shares[b])
    with pytest.raises(ValueError, match="digit labels 0-9"):
        triple_prior(np.array([0, 10]))
    with pytest.raises(ValueError, match="digit labels 0-9"):
        triple_prior(np.array([], dtype=np.int64))


def test_stacked_mnist_can_be_resized_by_policy():
    ds = load_dataset("stacked-mnist", resolution=32, resize="pad", max_images=10)
    assert ds.data.shape == (10, 3, 32, 32) and np.allclose(ds.class_prior, 1e-3)  # the population is unchanged


def test_stacked_mnist_reads_its_digit_pool_once(monkeypatch):
    from ganforge.data import stacked

    pool = np.stack([np.full((28, 28, 1), k * 20, np.uint8) for k in range(10)]), np.arange(10)
    calls = []

    class Digits:
        def load(self, data_dir):
            calls.append(data_dir)
            return pool[0].copy(), pool[1].copy()

    class Registry:
        def get(self, name):
            assert name == "digits"
            return Digits()

    monkeypatch.setattr(stacked, "DATASETS", Registry())
    stacked._pool.cache_clear()
    try:
        ds = load_dataset("stacked-mnist")  # the images and the prior both come from the pool
        assert calls == [None] and ds.class_prior.shape == (1000,)
        images, labels = stacked._pool(None)
        with pytest.raises(ValueError, match="read-only"):  # shared by every caller: nobody may change it
            images[0] = 0
    finally:
        stacked._pool.cache_clear()  # later tests read the real pool
