"""Improved precision/recall on toy manifolds with known answers."""

from __future__ import annotations

import pytest
import torch

from ganforge.metrics.precision_recall import knn_radii, precision_recall
from tests.metrics import fixtures

# torch-fidelity 0.4.0 calculate_precision_recall_full(features_b (generated), features_a (real), neighborhood=3)
REFERENCE_PR = (0.01, 0.875)


def _cloud(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_identical_sets_give_one_one():
    x = _cloud(300, 8, 0)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)


def test_disjoint_sets_give_zero_zero():
    assert precision_recall(_cloud(300, 8, 0), _cloud(300, 8, 1, shift=100.0)) == (0.0, 0.0)


def test_half_collapsed_generator_keeps_precision_and_loses_recall():
    real = torch.cat([_cloud(200, 2, 0), _cloud(200, 2, 1, shift=50.0)])  # two well separated modes
    fake = _cloud(400, 2, 2)  # covers only the first mode
    p, r = precision_recall(real, fake)
    assert p > 0.95
    assert 0.4 < r < 0.55


def test_k_nearest_neighbour_radius_excludes_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]], dtype=torch.float64)
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(x, k=3).tolist() == [6.0, 5.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k must be"):
        knn_radii(x, k=4)


def test_agrees_with_torch_fidelity():
    real, fake = torch.from_numpy(fixtures.features_a()), torch.from_numpy(fixtures.features_b())
    assert precision_recall(real, fake, k=3) == pytest.approx(REFERENCE_PR, abs=1e-7)


def test_block_size_does_not_change_the_result():
    real, fake = _cloud(257, 5, 3), _cloud(199, 5, 4, shift=0.5)
    assert precision_recall(real, fake, block=7) == precision_recall(real, fake, block=1024)
