"""Mode statistics and pictures for the toy point sets (``ring8``, ``grid25``, ``gauss1d``; :mod:`ganforge.data.toy`).

The protocol of Unrolled GAN (Metz et al. 2017) and VEEGAN (Srivastava et al. 2017): a generated point is
*high quality* when it lies within 3 standard deviations of its nearest mode centre; a mode is covered when enough
high-quality points fall to it (``min_fraction`` of its expected share, at least one; ``modes/any``: at least one).
``modes/kl`` compares the histogram of nearest modes of all points with the data's mode weights (equal here).

:func:`save_scatter` draws generated points over the true modes (3-std circles) with PIL, so a user can watch collapse
happen in the sample pictures the training loop writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge.data import GanDataset
from ganforge.metrics.histogram import kl_divergence


def _centers(info: dict[str, Any]) -> tuple[np.ndarray, float]:
    if "modes" not in info or "mode_std" not in info:
        raise ValueError(f"dataset info {sorted(info)} has no 'modes'/'mode_std': not a toy point set")
    return np.asarray(info["modes"], dtype=np.float64), float(info["mode_std"])


def nearest_modes(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre ``[N]`` and the distance to it ``[N]`` for ``points [N, D]``."""
    d = np.sqrt(((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))  # [N, M]
    idx = d.argmin(axis=1)
    return idx, d[np.arange(len(points)), idx]


def toy_modes(samples: torch.Tensor, info: dict[str, Any], min_fraction: float = 0.1) -> dict[str, float]:
    """``modes``, ``modes/any``, ``modes/total``, ``modes/hq`` (share of high-quality points) and ``modes/kl``."""
    centers, std = _centers(info)
    points = samples.detach().double().cpu().reshape(len(samples), -1).numpy()  # [N, D]
    if points.shape[1] != centers.shape[1]:
        raise ValueError(f"samples are {points.shape[1]}-D but the modes are {centers.shape[1]}-D")
    idx, dist = nearest_modes(points, centers)
    hq = dist <= 3 * std
    m = len(centers)
    hq_counts = np.bincount(idx[hq], minlength=m)
    threshold = max(1.0, min_fraction * len(points) / m)
    return {
        "modes": float((hq_counts >= threshold).sum()),
        "modes/any": float((hq_counts > 0).sum()),
        "modes/total": float(m),
        "modes/hq": float(hq.mean()),
        "modes/kl": kl_divergence(np.bincount(idx, minlength=m), np.ones(m)),
    }


def _view(centers: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    margin = max(0.5 * (centers.max(0) - centers.min(0)).max(), 8 * std, 1.0)
    return centers.min(0) - margin, centers.max(0) + margin


def save_scatter(samples: torch.Tensor, dataset: GanDataset | dict[str, Any], path: str | Path,
                 size: int = 512) -> Path:
    """Draw generated points ``[N, D]`` (D = 2: scatter; D = 1: histogram) over the true modes; write a PNG."""
    info = dataset.info if isinstance(dataset, GanDataset) else dataset
    centers, std = _centers(info)
    points = samples.detach().double().cpu().reshape(len(samples), -1).numpy()
    stats = toy_modes(samples, info)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = _view(centers, std)
    if centers.shape[1] == 2:
        def px(p: np.ndarray) -> np.ndarray:
            return np.stack([(p[..., 0] - lo[0]) / (hi[0] - lo[0]) * (size - 1),
                             (hi[1] - p[..., 1]) / (hi[1] - lo[1]) * (size - 1)], axis=-1)

        r = max(3.0, 3 * std / (hi[0] - lo[0]) * size)
        for cx, cy in px(centers):
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(220, 40, 40), width=2)
        inside = 0
        for x, y in px(points):
            if 0 <= x < size and 0 <= y < size:
                draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=(30, 80, 200))
                inside += 1
    elif centers.shape[1] == 1:
        bins = 64
        hist, edges = np.histogram(points[:, 0], bins=bins, range=(lo[0], hi[0]))
        width = (hi[0] - lo[0]) / bins
        density = hist / max(len(points), 1) / width
        xs = np.linspace(lo[0], hi[0], 256)
        pdf = np.mean([np.exp(-0.5 * ((xs - c) / std) ** 2) / (std * np.sqrt(2 * np.pi)) for c in centers[:, 0]], 0)
        top = max(pdf.max(), density.max()) * 1.1
        base = size - 20
        for i, h in enumerate(density):
            x0 = i * size / bins
            draw.rectangle([x0, base - h / top * (base - 20), x0 + size / bins - 1, base], fill=(30, 80, 200))
        curve = [(float((x - lo[0]) / (hi[0] - lo[0]) * (size - 1)), float(base - p / top * (base - 20)))
                 for x, p in zip(xs, pdf)]
        draw.line(curve, fill=(220, 40, 40), width=2)
        inside = int(hist.sum())
    else:
        raise ValueError(f"can only draw 1-D or 2-D points, got {centers.shape[1]}-D")
    draw.text((6, 4), f"modes {stats['modes']:.0f}/{len(centers)}  high-quality {stats['modes/hq']:.0%}  "
              f"n={len(points)} ({len(points) - inside} outside view)", fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
