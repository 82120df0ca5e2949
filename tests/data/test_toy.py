"""Toy point sets: shapes, geometry, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import DataError, load_dataset
from ganforge.data.toy import grid_centers, ring_centers


@pytest.mark.parametrize("name,dim,modes,std", [("ring8", 2, 8, 0.02), ("grid25", 2, 25, 0.05), ("gauss1d", 1, 1, 1.0)])
def test_toy_sets_are_float_points_with_their_modes(name, dim, modes, std):
    ds = load_dataset(name)
    assert ds.data.dtype == torch.float32 and ds.data.shape[1:] == (dim, 1, 1) and not ds.is_image
    assert ds.num_classes == modes and int(ds.labels.max()) == modes - 1
    centers = np.asarray(ds.info["modes"])
    assert centers.shape == (modes, dim) and ds.info["mode_std"] == std
    points = ds.data.flatten(1).double().numpy()
    offsets = points - centers[ds.labels.numpy()]
    assert offsets.std() == pytest.approx(std, rel=0.05)
    assert np.abs(offsets.mean(0)).max() < 0.05 * std + 0.01


def test_toy_sets_are_deterministic_and_fixed_shape():
    a, b = load_dataset("ring8"), load_dataset("ring8")
    assert torch.equal(a.data, b.data) and torch.equal(a.labels, b.labels)
    with pytest.raises(DataError, match="fixed shape"):
        load_dataset("ring8", resolution=28)


def test_mode_geometry():
    ring = ring_centers(8, 2.0)
    assert np.allclose(np.linalg.norm(ring, axis=1), 2.0)
    assert np.allclose(ring[0], [2.0, 0.0]) and np.allclose(ring[2], [0.0, 2.0])
    grid = grid_centers(5, 2.0)
    assert sorted(set(grid[:, 0].round(6))) == [-4.0, -2.0, 0.0, 2.0, 4.0] and len(grid) == 25


def test_point_sets_are_the_resolution_one_builtins():
    from ganforge.data import dataset_names
    from ganforge.data.builtin import DATASETS

    points = sorted(name for name in dataset_names() if DATASETS.get(name).resolution == 1)
    assert points == ["gauss1d", "grid25", "ring8"]  # what train/recipes/gan.py treats as point sets
