"""GanDataset: the class prior a dataset may carry (the population its labels are drawn from) is checked on entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import GanDataset
from ganforge.data.errors import DataError


def _dataset(prior: np.ndarray | None, labels: tuple[int, ...] | None = (0, 1, 2, 1)) -> GanDataset:
    lab = torch.tensor(labels) if labels is not None else None
    return GanDataset("toy", torch.zeros(4, 1, 2, 2, dtype=torch.uint8), lab, 3, class_prior=prior)


def test_a_valid_prior_is_kept_as_float64():
    ds = _dataset(np.array([0.5, 0.25, 0.25], dtype=np.float32))
    assert ds.class_prior.dtype == np.float64 and ds.class_prior.tolist() == [0.5, 0.25, 0.25]
    assert _dataset(None).class_prior is None


@pytest.mark.parametrize("prior, labels, match", [
    (np.array([0.5, 0.5]), (0, 1, 2, 1), "shape \\[3\\]"),
    (np.array([0.5, 0.3, 0.3]), (0, 1, 2, 1), "sum to 1"),
    (np.array([1.2, -0.1, -0.1]), (0, 1, 2, 1), "non-negative"),
    (np.array([0.5, 0.5, 0.0]), (0, 1, 2, 1), "probability 0 to a class the labels hold"),
    (np.array([0.5, 0.25, 0.25]), None, "needs labels"),
])
def test_a_prior_that_cannot_describe_the_labels_is_refused(prior, labels, match):
    with pytest.raises(DataError, match=match):
        _dataset(prior, labels)
