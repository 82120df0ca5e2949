"""Temperature scaling recovers a known miscalibration and lowers ECE on data it was not fitted on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from ganforge.detection.calibration import calibrate, fit_temperature, nll


def _population(scale: float, n: int, seed: int):
    """True logits z ~ N(0, 2^2), labels ~ Bernoulli(sigmoid(z)); the "detector" reports ``scale * z``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return scale * z, y


@pytest.mark.parametrize("scale", [4.0, 0.3])
def test_fitted_temperature_undoes_over_and_under_confidence(scale):
    logits, y = _population(scale, 4000, 0)
    assert fit_temperature(logits, y) == pytest.approx(scale, rel=0.15)


def test_calibration_lowers_ece_and_nll_on_held_out_data():
    fit_logits, fit_y = _population(5.0, 1500, 1)
    eval_logits, eval_y = _population(5.0, 1500, 2)  # a different draw: held out
    rep = calibrate(fit_logits, fit_y, eval_logits, eval_y)
    assert rep["ece_after"] < 0.5 * rep["ece_before"]
    assert rep["nll_after"] < rep["nll_before"]
    assert not rep["separable"] and not rep["at_bound"]


def test_separable_fit_data_leave_the_temperature_at_one():
    rep = calibrate([-3.0, -1.0, 2.0, 5.0], [0, 0, 1, 1], [-1.0, 1.0], [0, 1])
    assert rep["separable"] and rep["temperature"] == 1.0


def test_nll_matches_the_formula():
    logits, y = np.array([2.0, -1.0, 0.5]), np.array([1, 0, 0])
    p = expit(logits / 2.0)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert nll(logits, y, 2.0) == pytest.approx(expected)
    assert np.isfinite(nll([1000.0, -1000.0], [0, 1]))  # stable far out
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(logits, y, bounds=(2.0, 1.0))
