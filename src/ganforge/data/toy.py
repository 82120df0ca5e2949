"""Toy distributions where mode collapse can be seen: the benchmarks of Unrolled GAN (Metz et al., ICLR 2017), VEEGAN
(Srivastava et al., NeurIPS 2017) and PacGAN (Lin et al., NeurIPS 2018).

- ``ring8``: 8 isotropic Gaussians (std 0.02) evenly spaced on a circle of radius 2.
- ``grid25``: 25 isotropic Gaussians (std 0.05) on the 5x5 grid {-4, -2, 0, 2, 4}^2.
- ``gauss1d``: one 1-D Gaussian N(0, 1) (the setting of Goodfellow et al. 2014's illustration).

Samples are float32 points shaped like images, ``[N, D, 1, 1]`` (D = 2 or 1), in model space (no [-1, 1] scaling: a
generator for these needs a linear output, e.g. ``gan`` with ``out_activation='linear'``). Labels are the mode index.
``dataset.info`` carries the mode centres and std, which the ``modes`` metric and the scatter plot read. A fixed seed
makes every load identical.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ganforge.data.builtin import Builtin, register_dataset
from ganforge.data.dataset import GanDataset

TOY_SIZE = 20_000
TOY_SEED = 2017


def ring_centers(n: int = 8, radius: float = 2.0) -> np.ndarray:
    """``[n, 2]`` points evenly spaced on a circle, the first at angle 0."""
    angles = 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """``[side**2, 2]`` points on a centred square grid, row-major."""
    axis = (np.arange(side) - (side - 1) / 2) * spacing
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def mixture(name: str, centers: np.ndarray, std: float, n: int = TOY_SIZE, seed: int = TOY_SEED) -> GanDataset:
    """``n`` samples of an equal-weight isotropic Gaussian mixture as a :class:`GanDataset` ``[n, D, 1, 1]``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centers), size=n)
    points = centers[labels] + std * rng.standard_normal((n, centers.shape[1]))
    info = {
        "source": name, "kind": "toy", "resolution": 1, "channels": int(centers.shape[1]), "images": n,
        "modes": centers.tolist(), "mode_std": std, "seed": seed,
    }
    return GanDataset(
        name=name,
        data=torch.from_numpy(points.astype(np.float32)).view(n, -1, 1, 1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        num_classes=len(centers),
        info=info,
    )


def _ring8(_: Path | None) -> GanDataset:
    return mixture("ring8", ring_centers(8, 2.0), 0.02)


def _grid25(_: Path | None) -> GanDataset:
    return mixture("grid25", grid_centers(5, 2.0), 0.05)


def _gauss1d(_: Path | None) -> GanDataset:
    return mixture("gauss1d", np.zeros((1, 1)), 1.0)


register_dataset(Builtin("ring8", "8 Gaussians (std 0.02) on a circle of radius 2: 2-D points for mode-collapse study",
                         _ring8, 1, 2, 8, False))
register_dataset(Builtin("grid25", "25 Gaussians (std 0.05) on a 5x5 grid with spacing 2: 2-D points",
                         _grid25, 1, 2, 25, False))
register_dataset(Builtin("gauss1d", "a 1-D Gaussian N(0, 1): points [N, 1, 1, 1]", _gauss1d, 1, 1, 1, False))
