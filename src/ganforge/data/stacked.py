"""Stacked MNIST: three MNIST digits drawn independently and stacked as the R, G and B channels of one 28x28 image,
so the data has 1000 modes (labels ``100 * r + 10 * g + b``). The standard mode-collapse benchmark of Unrolled GAN
(Metz et al., ICLR 2017), VEEGAN (Srivastava et al., NeurIPS 2017) and PacGAN (Lin et al., NeurIPS 2018).

Built offline from the ``digits`` set (5,000 real MNIST digits) with a fixed seed, so every load gives the same
60,000 images. Evaluate with ``--metrics modes --extractor digits``: each channel is classified separately.

The 60,000 images are one random sample of a known population: three independent draws from the digit pool, whose
1000 class probabilities are the product of the pool's digit shares (uniform for the 500-per-class ``digits``
pool, the reference of VEEGAN's and PacGAN's "KL to uniform"). The dataset carries them as its ``class_prior``, and
the mode metric measures KL against it: against the sample's own histogram, a generator drawing exactly from the
population would score about 0.028 nats at 26,000 samples instead of 0.019, the sampling noise of the 60,000
labels added to its own.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ganforge.data.builtin import DATASETS, Builtin, Raw, register_dataset

STACKED_SIZE = 60_000
STACKED_SEED = 1000


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> Raw:
    """``n`` images ``[n, H, W, 3]`` from random triples of single-channel digits ``[M, H, W, 1]``, and their
    1000-way labels ``100 * label_R + 10 * label_G + label_B``."""
    if images.ndim != 4 or images.shape[3] != 1:
        raise ValueError(f"expected single-channel digits [M, H, W, 1], got {images.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(images), size=(n, 3))  # [n, 3]: one digit per channel
    stacked = np.concatenate([images[idx[:, k]] for k in range(3)], axis=3)  # [n, H, W, 3]
    return stacked, (labels[idx] * np.array([100, 10, 1])).sum(axis=1).astype(np.int64)


def triple_prior(labels: np.ndarray) -> np.ndarray:
    """Class probabilities ``[1000]`` of ``100 * r + 10 * g + b`` when r, g and b are independent draws from a pool
    with digit ``labels [M]`` (values 0-9)."""
    if labels.ndim != 1 or len(labels) == 0 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"expected a non-empty pool of digit labels 0-9, got shape {labels.shape}")
    shares = np.bincount(labels, minlength=10) / len(labels)  # [10]
    return np.einsum("i,j,k->ijk", shares, shares, shares).reshape(1000)


@functools.lru_cache(maxsize=2)
def _pool(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """The digit pool, read once per ``data_dir``: building the set and its prior both need it. Read-only, since the
    cache hands the same arrays to every caller."""
    digits, labels = DATASETS.get("digits").load(data_dir)
    if labels is None:
        raise ValueError("the digits set has no labels; Stacked MNIST needs them")
    digits.flags.writeable = labels.flags.writeable = False
    return digits, labels


def _stacked_prior(data_dir: Path | None) -> np.ndarray:
    return triple_prior(_pool(data_dir)[1])


def _stacked_mnist(data_dir: Path | None) -> Raw:
    return stack_digits(*_pool(data_dir), STACKED_SIZE, STACKED_SEED)


register_dataset(Builtin("stacked-mnist", "Stacked MNIST: 3 digits as R, G, B (1000 modes), 60,000 images built "
                         "offline from digits", _stacked_mnist, 28, 3, 1000, False, _stacked_prior))
