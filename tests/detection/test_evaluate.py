"""Metrics against scikit-learn's reference implementations and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.detection.evaluate import accuracy, average_precision, expected_calibration_error, roc_auc, summarize

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ap_match_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    scores = rng.integers(0, 12, 300) + 2.0 * y  # many ties, informative
    assert roc_auc(scores, y) == pytest.approx(sk.roc_auc_score(y, scores), abs=1e-12)
    assert average_precision(scores, y) == pytest.approx(sk.average_precision_score(y, scores), abs=1e-12)


def test_perfect_reversed_and_uninformative_scores():
    y = np.array([0, 0, 1, 1])
    assert roc_auc([0.1, 0.2, 0.8, 0.9], y) == 1.0 and average_precision([0.1, 0.2, 0.8, 0.9], y) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], y) == 0.0
    assert roc_auc([0.5] * 4, y) == 0.5 and average_precision([0.5] * 4, y) == 0.5


def test_ece_by_hand():
    # Confidences 0.9 (predicted fake, right), 0.9 (fake, wrong), 0.6 (real: p=0.4, right), 0.6 (real, right).
    p = [0.9, 0.9, 0.4, 0.4]
    y = [1, 0, 0, 0]
    # Bin [0.867, 0.933): acc 0.5, conf 0.9 -> 0.4 * 2/4; bin [0.6, 0.667): acc 1, conf 0.6 -> 0.4 * 2/4.
    assert expected_calibration_error(p, y, bins=15) == pytest.approx(0.4)
    assert accuracy(p, y) == 0.75
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0


def test_summarize_uses_the_temperature_only_for_probabilities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    logits = rng.normal(size=200) + 3 * (2 * y - 1)
    a, b = summarize(logits, y, 1.0), summarize(logits, y, 4.0)
    assert a["auc"] == b["auc"] and a["ap"] == b["ap"]
    assert a["ece"] != b["ece"]
    assert a["n_real"] + a["n_fake"] == 200
    assert a["acc"] == pytest.approx((a["acc_real"] * a["n_real"] + a["acc_fake"] * a["n_fake"]) / 200)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="both real"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        average_precision([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="labels must be 0"):
        accuracy([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5, 0.2], [0, 1])
