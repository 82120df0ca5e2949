"""Deterministic feature sets for reference comparisons: closed formulas, no random generator, so the expected
values below (computed once with pytorch-fid 0.3.0 and torch-fidelity 0.4.0) stay valid on every platform."""

from __future__ import annotations

import numpy as np


def features_a(n: int = 120, d: int = 16) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    return np.sin(0.37 * i * (j + 1) + j) + 0.3 * np.cos(0.11 * i * (j + 2))  # [n, d] float64


def features_b(n: int = 100, d: int = 16) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    return 1.2 * np.sin(0.29 * i * (j + 2) - j) + 0.5 * np.cos(0.07 * i * (j + 1)) + 0.2  # [n, d] float64


def logits_c(n: int = 100, k: int = 10) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    return 3.0 * np.sin(0.3 * i + 1.7 * j) + np.cos(0.05 * i * j)  # [n, k] float64
