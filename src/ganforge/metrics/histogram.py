"""Statistics of histograms shared by the mode metrics (class histograms of digits, nearest-mode histograms of toy
point sets)."""

from __future__ import annotations

import math

import numpy as np


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats of two histograms (normalised here); ``inf`` if p has mass where q has none."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError(f"histograms must have the same shape and positive mass, got {p.shape} and {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])))
