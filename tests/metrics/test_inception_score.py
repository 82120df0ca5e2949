"""Inception Score: limits, agreement with torch-fidelity."""

from __future__ import annotations

import pytest
import torch

from ganforge.metrics.inception_score import inception_score
from tests.metrics import fixtures, reference

# torch-fidelity 0.4.0 isc_features_to_metric(logits_c, splits=5, shuffle=True, rng_seed=2020)
REFERENCE_IS = (2.2265326306908, 0.08167536224261407)


def test_uniform_predictions_score_one_and_confident_balanced_predictions_score_k():
    assert inception_score(torch.zeros(100, 10), splits=4)[0] == pytest.approx(1.0)
    confident = torch.full((100, 10), -50.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 50.0
    mean, std = inception_score(confident, splits=1, shuffle_seed=None)
    assert mean == pytest.approx(10.0, rel=1e-9) and std == 0.0


def test_collapsed_confident_predictions_score_one():
    x = torch.full((60, 10), -50.0)
    x[:, 3] = 50.0
    assert inception_score(x, splits=3)[0] == pytest.approx(1.0)


def test_agrees_with_torch_fidelity():
    mean, std = inception_score(torch.from_numpy(fixtures.logits_c()), splits=5)
    assert (mean, std) == pytest.approx(REFERENCE_IS, rel=1e-9)


def test_agrees_with_live_torch_fidelity(monkeypatch):
    misc = reference.metric_module("metric_isc", monkeypatch)
    logits = torch.from_numpy(fixtures.logits_c(90, 7))
    theirs = misc.isc_features_to_metric(logits, splits=3, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits, splits=3)
    assert mean == pytest.approx(theirs["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(theirs["inception_score_std"], rel=1e-9)


def test_bad_splits_are_refused():
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.zeros(5, 3), splits=6)
