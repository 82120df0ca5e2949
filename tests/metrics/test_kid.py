"""KID: unbiasedness against an exact MMD^2, agreement with torch-fidelity, determinism."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch

from ganforge.metrics.kid import kernel_inception_distance, mmd2_unbiased, polynomial_kernel
from tests.metrics import fixtures, reference

# torch-fidelity 0.4.0 kid_features_to_metric(features_a, features_b, subsets=10, subset_size=50, rng_seed=3)
REFERENCE_KID = (0.22376571750163082, 0.05439387150245284)


def _moments(mu: np.ndarray) -> list[np.ndarray]:
    """E[x], E[x x^T], E[x (x) x (x) x] of x ~ N(mu, I): the moment tensors that fix E k for a cubic kernel."""
    d = len(mu)
    eye = np.eye(d)
    m3 = (np.einsum("a,b,c->abc", mu, mu, mu) + np.einsum("a,bc->abc", mu, eye) + np.einsum("b,ac->abc", mu, eye)
          + np.einsum("c,ab->abc", mu, eye))
    return [mu, eye + np.outer(mu, mu), m3]


def exact_mmd2(mu_x: np.ndarray, mu_y: np.ndarray) -> float:
    """MMD^2 of N(mu_x, I) and N(mu_y, I) under k(x, y) = (x.y / d + 1)^3, exactly:
    E k(x, y) = sum_j C(3, j) d^-j <M_j(x), M_j(y)> for independent x, y."""
    d = len(mu_x)
    mx, my = _moments(mu_x), _moments(mu_y)

    def ek(a, b):
        return 1.0 + sum(comb(3, j) * d ** -j * float(np.sum(a[j - 1] * b[j - 1])) for j in (1, 2, 3))

    return ek(mx, mx) + ek(my, my) - 2 * ek(mx, my)


def test_estimate_is_unbiased_for_different_distributions():
    rng = np.random.default_rng(0)
    mu_x, mu_y = np.zeros(3), np.array([0.6, -0.3, 0.0])
    truth = exact_mmd2(mu_x, mu_y)
    m, draws = 40, 600
    unbiased, biased = [], []
    for _ in range(draws):
        x = rng.standard_normal((m, 3)) + mu_x
        y = rng.standard_normal((m, 3)) + mu_y
        kxx, kxy, kyy = polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y)
        unbiased.append(mmd2_unbiased(kxx, kxy, kyy))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())  # V-statistic, for contrast
    se = np.std(unbiased) / np.sqrt(draws)
    assert abs(np.mean(unbiased) - truth) < 4 * se
    assert abs(np.mean(biased) - truth) > 10 * se  # the test can tell an unbiased estimator from a biased one


def test_estimate_is_unbiased_for_equal_distributions():
    rng = np.random.default_rng(1)
    values = [kernel_inception_distance(rng.standard_normal((30, 4)), rng.standard_normal((30, 4)), subsets=1)[0]
              for _ in range(800)]
    se = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values)) < 4 * se
    assert min(values) < 0  # an unbiased estimate of 0 must sometimes be negative


def test_agrees_with_torch_fidelity():
    mean, std, m = kernel_inception_distance(fixtures.features_a(), fixtures.features_b(), 10, 50, seed=3)
    assert m == 50
    assert mean == pytest.approx(REFERENCE_KID[0], rel=1e-9)
    assert std == pytest.approx(REFERENCE_KID[1], rel=1e-9)


def test_agrees_with_live_torch_fidelity(monkeypatch):
    mkid = reference.metric_module("metric_kid", monkeypatch)
    a, b = torch.from_numpy(fixtures.features_a()), torch.from_numpy(fixtures.features_b())
    theirs = mkid.kid_features_to_metric(a, b, kid_subsets=7, kid_subset_size=40, rng_seed=11, verbose=False,
                                         kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                         kid_kernel_poly_coef0=1)
    mean, std, _ = kernel_inception_distance(a, b, 7, 40, seed=11)
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)


def test_subset_size_is_capped_by_the_sample_counts_and_reported():
    a, b = fixtures.features_a(), fixtures.features_b()
    assert kernel_inception_distance(a, b, subsets=3)[2] == min(len(a), len(b))
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(a[:1], b)
    with pytest.raises(ValueError, match="dimensions"):
        kernel_inception_distance(a, b[:, :3])
