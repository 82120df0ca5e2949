"""Detector metrics as pure functions of scores and labels (label 1 = generated, 0 = real).

- ``roc_auc``: area under the ROC curve, computed as the Mann-Whitney U statistic with tied scores given half
  credit; threshold-free, so temperature scaling cannot change it.
- ``average_precision``: area under the precision-recall curve as a step function over distinct thresholds,
  ``sum_k (R_k - R_{k-1}) P_k`` (the definition CNNDetection reports, same as scikit-learn's).
- ``accuracy``: fraction right when "fake" means probability >= threshold (0.5); also per class, since Wang et al.
  2020 show that AP near 99 % can coexist with poor accuracy on real or fake images when probabilities are
  miscalibrated.
- ``expected_calibration_error``: Guo et al. 2017, top-label form: the predicted class's probability (confidence)
  goes into one of ``bins`` equal-width bins of [0, 1] (only the upper half is populated in the binary case) and
  ``ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|``.

``summarize`` takes logits, not probabilities: ranking metrics are computed on the logits, because sigmoid rounds
very confident scores to exactly 0 or 1 in floating point and would create artificial ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata


def check_scores(scores: Any, labels: Any, both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if len(s) != len(y):
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    if len(s) == 0:
        raise ValueError("no scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    if both and (y.min() == y.max()):
        raise ValueError(f"need both real (0) and fake (1) labels, got only {int(y[0])}")
    return s, y.astype(np.int64)


def roc_auc(scores: Any, labels: Any) -> float:
    """Probability that a random fake scores above a random real (ties count one half)."""
    s, y = check_scores(scores, labels)
    ranks = rankdata(s)  # average ranks for ties
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def average_precision(scores: Any, labels: Any) -> float:
    """``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, highest first."""
    s, y = check_scores(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_group = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # index of the last item at each distinct score
    tp = np.cumsum(y)[last_of_group]
    predicted = last_of_group + 1
    precision = tp / predicted
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(probs: Any, labels: Any, threshold: float = 0.5) -> float:
    p, y = check_scores(probs, labels, both=False)
    return float(np.mean((p >= threshold).astype(np.int64) == y))


def expected_calibration_error(probs: Any, labels: Any, bins: int = 15) -> float:
    """Top-label ECE (Guo et al. 2017) of probabilities-of-fake ``probs`` with ``bins`` equal-width bins."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p, y = check_scores(probs, labels, both=False)
    if p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    pred = (p >= 0.5).astype(np.int64)
    conf = np.where(pred == 1, p, 1 - p)  # in [0.5, 1]
    correct = (pred == y).astype(np.float64)
    idx = np.minimum((conf * bins).astype(np.int64), bins - 1)  # bin b covers [b/bins, (b+1)/bins)
    ece = 0.0
    for b in np.unique(idx):
        m = idx == b
        ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def summarize(logits: Any, labels: Any, temperature: float = 1.0, bins: int = 15) -> dict[str, float]:
    """All detector metrics for logits (positive = fake): AUC and AP on the logits; accuracy (overall, real, fake)
    and ECE on ``sigmoid(logits / temperature)``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s, y = check_scores(logits, labels)
    p = expit(s / temperature)
    pred = p >= 0.5
    return {
        "auc": roc_auc(s, y),
        "ap": average_precision(s, y),
        "acc": accuracy(p, y),
        "acc_real": float(np.mean(~pred[y == 0])),
        "acc_fake": float(np.mean(pred[y == 1])),
        "ece": expected_calibration_error(p, y, bins),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
    }
