"""Cluster labels for unlabelled data: the labels of self-conditioned training.

Self-conditioned GAN (Liu et al., "Diverse Image Generation via Self-Conditioned GANs", CVPR 2020) clusters the
real images without any labels, trains a class-conditional G and D on the cluster indices, and samples G's cluster
with the clusters' frequencies: each cluster's share of the samples is set by the data instead of left to the
adversarial game. The paper clusters its discriminator's features at initialisation and re-clusters every 25,000
iterations; within the budgets measured here (400 kimg at batch 32: 12,500 steps) only the first clustering, of
a random D's features, would run, so the features here are the images' own pixels, which needs no network.
BENCHMARKS.md (Stacked MNIST, twenty-eighth session) measures pixels and a random D's features alike: on Stacked
MNIST neither beat the unconditional default at 400 kimg.

k-means (Lloyd's algorithm with k-means++ seeding, Arthur & Vassilvitskii 2007) runs in float64 on a seeded subset,
then every sample is assigned to its nearest centre, so the same data, k and seed give the same labels whatever the
thread count (a resumed run recomputes them; in float64 a rounding difference flips a label only at an exact tie).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ganforge.data.dataset import GanDataset
from ganforge.data.errors import DataError

# The attribute under which a conditional generator carries the class frequencies to sample with when no class is
# asked for (set on a self-conditioned G by training and by ganforge.sampling.load_generator; read by the samplers).
CLASS_PRIOR = "class_prior"
FIT_SAMPLES = 10_000  # k-means is fitted on at most this many samples; all are then assigned
MAX_SIDE = 32  # larger images are average-pooled to 32x32 first: layout and colour, at a memory any set can afford
ITERATIONS = 30
CHUNK = 4096  # images assigned at a time: [CHUNK, k] distances and [CHUNK, D] float64 pixels


def kmeans(x: torch.Tensor, k: int, seed: int, iterations: int = ITERATIONS) -> torch.Tensor:
    """Centres ``[k, D]`` of ``x [N, D]`` (k-means++ seeding, then Lloyd's iterations until no label changes)."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= {len(x)} samples, got k = {k}")
    x = x.double()
    x2 = (x * x).sum(1)  # [N]
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(x), (1,), generator=gen)
    centres = x[pick]  # [1, D]
    d2 = (x2 - 2 * x @ centres[0] + x2[pick]).clamp(min=0)  # [N]: squared distance to the nearest centre so far
    for _ in range(k - 1):
        pick = torch.multinomial(d2 / d2.sum(), 1, generator=gen) if d2.sum() > 0 else pick
        centres = torch.cat([centres, x[pick]])
        d2 = torch.minimum(d2, (x2 - 2 * x @ x[pick][0] + x2[pick]).clamp(min=0))
    labels = None
    for _ in range(iterations):
        new = nearest(x, centres, x2)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)  # [k, 1]
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)  # an emptied centre stays put
    return centres


def pixel_features(data: torch.Tensor) -> torch.Tensor:
    """``[N, C*h*w]`` float64 pixels of ``data [N, C, H, W]`` (uint8 images or toy coordinates), average-pooled to
    at most ``MAX_SIDE`` on a side."""
    x = data.double()
    if x.shape[-1] > MAX_SIDE or x.shape[-2] > MAX_SIDE:
        x = torch.nn.functional.adaptive_avg_pool2d(x, (min(x.shape[-2], MAX_SIDE), min(x.shape[-1], MAX_SIDE)))
    return x.flatten(1)


def nearest(x: torch.Tensor, centres: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """Index ``[N]`` of the nearest of ``centres [k, D]`` for each row of ``x [N, D]``, in float64: distances as
    ``|x|^2 - 2 x.c + |c|^2`` (``x2``: the ``|x|^2`` already computed), whose cancellation error is far below any
    distance between distinct images. Callers bound ``N`` (the fit subset; ``cluster_dataset``'s chunks)."""
    x, centres = x.double(), centres.double()
    x2 = (x * x).sum(1) if x2 is None else x2  # [N]
    return (x2.unsqueeze(1) - 2 * x @ centres.T + (centres * centres).sum(1)).argmin(1)


def cluster_dataset(dataset: GanDataset, k: int, seed: int) -> GanDataset:
    """``dataset`` with its labels replaced by the indices of ``k`` k-means clusters of its pixels (``[N]``), and the
    clustering recorded in ``info["clusters"]`` (k, seed, features, and each cluster's size: the sampling prior)."""
    if not 2 <= k <= len(dataset):
        raise DataError(f"--clusters must be in [2, {len(dataset)}] (the number of samples) for dataset "
                        f"{dataset.name!r}, got {k}")
    gen = torch.Generator().manual_seed(seed)
    centres = kmeans(pixel_features(dataset.data[torch.randperm(len(dataset), generator=gen)[:FIT_SAMPLES]]), k, seed)
    labels = torch.cat([nearest(pixel_features(dataset.data[a : a + CHUNK]), centres)
                        for a in range(0, len(dataset), CHUNK)])  # [N], a chunk of images in float64 at a time
    counts = np.bincount(labels.numpy(), minlength=k)
    if (counts == 0).any():
        raise DataError(f"dataset {dataset.name!r}: {int((counts == 0).sum())} of {k} clusters are empty (more "
                        "clusters than distinct samples?); use fewer --clusters")
    features = f"pixels (at most {MAX_SIDE}x{MAX_SIDE})"
    info = dataset.info | {"clusters": {"k": k, "seed": seed, "features": features, "sizes": counts.tolist()}}
    return dataclasses.replace(dataset, labels=labels, num_classes=k, info=info, class_prior=None)


def cluster_prior(info: dict[str, Any]) -> torch.Tensor | None:
    """The cluster frequencies ``[k]`` (summing to 1) a self-conditioned run recorded in its dataset info, or None."""
    clusters = info.get("clusters") if isinstance(info, dict) else None
    if not clusters:
        return None
    sizes = torch.tensor(clusters["sizes"], dtype=torch.float64)
    return sizes / sizes.sum()
