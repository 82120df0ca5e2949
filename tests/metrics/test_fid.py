"""Fréchet distance: closed form for known Gaussians, agreement with pytorch-fid / torch-fidelity, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.metrics.fid import GaussianStats, frechet_distance, gaussian_stats
from tests.metrics import fixtures, reference

# Computed with pytorch-fid 0.3.0 ``calculate_frechet_distance`` and torch-fidelity 0.4.0 ``fid_statistics_to_metric``
# (both gave this value) on the statistics of fixtures.features_a() and fixtures.features_b().
REFERENCE_FID = 4.025982463544032


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def closed_form(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), by symmetric eigendecompositions (an independent
    route from sqrtm of the non-symmetric product the implementation uses)."""
    r1 = _psd_sqrt(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(r1 @ s2 @ r1)))


def _random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_diagonal_gaussians_match_the_textbook_formula():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)  # 5 + (4 + 1 + 0)
    got = frechet_distance(GaussianStats(mu1, np.diag(var1), 2), GaussianStats(mu2, np.diag(var2), 2))
    assert expected == pytest.approx(10.0)
    assert got == pytest.approx(expected, rel=1e-12)


def test_full_covariance_gaussians_match_the_closed_form():
    rng = np.random.default_rng(0)
    for d in (2, 8, 64):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
        got = frechet_distance(GaussianStats(mu1, s1, 2), GaussianStats(mu2, s2, 2))
        assert got == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-9)


def test_identical_statistics_give_zero_and_shift_gives_squared_norm():
    rng = np.random.default_rng(1)
    s = _random_spd(16, rng)
    mu = rng.standard_normal(16)
    assert frechet_distance(GaussianStats(mu, s, 2), GaussianStats(mu, s, 2)) == pytest.approx(0.0, abs=1e-8)
    shift = np.full(16, 0.5)
    assert frechet_distance(GaussianStats(mu, s, 2), GaussianStats(mu + shift, s, 2)) == pytest.approx(4.0, rel=1e-7)


def test_agrees_with_pytorch_fid_and_torch_fidelity_on_identical_statistics():
    got = frechet_distance(gaussian_stats(fixtures.features_a()), gaussian_stats(fixtures.features_b()))
    assert got == pytest.approx(REFERENCE_FID, rel=1e-6)


def test_agrees_with_live_torch_fidelity(monkeypatch):
    mfid = reference.metric_module("metric_fid", monkeypatch)
    a, b = torch.from_numpy(fixtures.features_a()), torch.from_numpy(fixtures.features_b())
    theirs = mfid.fid_statistics_to_metric(mfid.fid_features_to_statistics(a), mfid.fid_features_to_statistics(b),
                                           False)["frechet_inception_distance"]
    assert frechet_distance(gaussian_stats(a), gaussian_stats(b)) == pytest.approx(theirs, rel=1e-6)


def test_sample_statistics_are_float64_and_converge():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 4, generator=g)  # float32 input
    y = torch.randn(20000, 4, generator=g) + torch.tensor([1.0, 0.0, 0.0, 0.0])
    sx = gaussian_stats(x)
    assert sx.mu.dtype == np.float64 and sx.sigma.dtype == np.float64 and sx.n == 20000
    assert frechet_distance(sx, gaussian_stats(y)) == pytest.approx(1.0, abs=0.05)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        gaussian_stats(np.zeros(3))
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(gaussian_stats(np.eye(3)), gaussian_stats(np.eye(4)))
