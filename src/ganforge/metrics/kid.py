"""Kernel Inception Distance: Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018.

Stages: features ``[N, D]`` -> squared MMD with the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` on random
subsets -> mean and standard deviation over subsets. The within-set terms drop the kernel's diagonal, which makes the
estimate of MMD^2 unbiased (it can be slightly negative when the two distributions are equal). Subsets are drawn with
``numpy.random.RandomState(seed).choice(n, m, replace=False)``, the scheme of the reference implementation and of
torch-fidelity, so the same features and seed give the same numbers. All arithmetic is float64.

Registered as ``kid`` (Inception-v3 features) and ``kd-digits`` (the digit classifier's features).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.metrics.base import register_metric


def _as_f64(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be [N, D], got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0):
    """``(gamma * x @ y.T + coef0) ** degree`` with ``gamma = 1 / D`` by default: ``[N, D], [M, D] -> [N, M]``."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 estimate from kernel matrices of two equal-size samples (Gretton et al. 2012, eq. 3)."""
    m = k_xx.shape[0]
    if k_xx.shape != (m, m) or k_yy.shape != (m, m) or k_xy.shape != (m, m):
        raise ValueError(f"kernel matrices must all be [{m}, {m}], got {k_xx.shape}, {k_xy.shape}, {k_yy.shape}")
    if m < 2:
        raise ValueError("MMD needs subsets of at least 2 samples")
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real: torch.Tensor | np.ndarray,
    fake: torch.Tensor | np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float, int]:
    """KID between ``real [N, D]`` and ``fake [M, D]``: ``(mean, std, m)`` over ``subsets`` subsets of size ``m``.

    ``m = min(subset_size, N, M)``, as in StyleGAN's metric code (the size used is returned and recorded).
    """
    x, y = _as_f64(real, "real features"), _as_f64(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: real {x.shape[1]}, fake {y.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 fake samples, got {x.shape[0]} and {y.shape[0]}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        a = x[rng.choice(x.shape[0], m, replace=False)]
        b = y[rng.choice(y.shape[0], m, replace=False)]
        values[i] = mmd2_unbiased(
            polynomial_kernel(a, a, degree, gamma, coef0),
            polynomial_kernel(a, b, degree, gamma, coef0),
            polynomial_kernel(b, b, degree, gamma, coef0),
        )
    return float(values.mean()), float(values.std()), m


def _register(name: str, extractor: str, description: str) -> None:
    def compute(ctx, subsets: int = 100, subset_size: int = 1000) -> dict[str, float]:
        mean, std, m = kernel_inception_distance(
            ctx.features("real", extractor).pool, ctx.features("fake", extractor).pool, subsets, subset_size,
            seed=ctx.seed,
        )
        return {name: mean, f"{name}/std": std, f"{name}/subset_size": float(m), f"{name}/subsets": float(subsets)}

    register_metric(name, description, extractor=extractor)(compute)


_register("kid", "inception-v3", "Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, real vs fake "
          "Inception-v3 features (Bińkowski et al. 2018)")
_register("kd-digits", "digits", "the KID formula on the digit classifier's features (not comparable with KID)")
