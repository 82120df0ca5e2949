"""Fréchet Inception Distance: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017.

Stages: features ``[N, D]`` -> Gaussian statistics (mean, covariance; float64) -> Fréchet distance
``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The matrix square root is ``scipy.linalg.sqrtm`` with the same
guard pytorch-fid uses (offset the diagonals by ``eps`` when the product is singular; drop an imaginary part only when
it is numerically zero), so numbers agree with pytorch-fid / torch-fidelity on identical statistics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from ganforge.metrics import register_metric


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of ``n`` feature vectors, float64."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    def __post_init__(self) -> None:
        d = self.mu.shape[0] if self.mu.ndim == 1 else -1
        if self.mu.ndim != 1 or self.sigma.shape != (d, d):
            raise ValueError(f"statistics must be mu [D] and sigma [D, D], got {self.mu.shape} and {self.sigma.shape}")


def gaussian_stats(features: torch.Tensor | np.ndarray) -> GaussianStats:
    """Mean and covariance (``ddof=1``, as ``np.cov``) of ``features [N, D]`` in float64; needs N >= 2."""
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {x.shape[0]}")
    x = x.astype(np.float64, copy=False)
    return GaussianStats(mu=x.mean(axis=0), sigma=np.cov(x, rowvar=False), n=int(x.shape[0]))


def frechet_distance(s1: GaussianStats, s2: GaussianStats, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, S1) and N(mu2, S2) (the closed form for Gaussians)."""
    if s1.mu.shape != s2.mu.shape:
        raise ValueError(f"statistics of different dimension: {s1.mu.shape[0]} vs {s2.mu.shape[0]}")
    mu1, mu2 = s1.mu.astype(np.float64), s2.mu.astype(np.float64)
    sigma1, sigma2 = s1.sigma.astype(np.float64), s2.sigma.astype(np.float64)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"Fréchet distance: singular product of covariances; adding {eps} to the diagonals", stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@register_metric("fid", "Fréchet distance between real and fake feature Gaussians (Heusel et al. 2017)")
def fid_metric(ctx) -> dict[str, float]:
    real, fake = ctx.features("real"), ctx.features("fake")
    return {"fid": frechet_distance(gaussian_stats(real.pool), gaussian_stats(fake.pool))}
