"""Scoring folders: corrupt files become per-file error entries while the rest is scored; any size or mode works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.detection.predict import predict_path, score_arrays
from ganforge.models.detector import Detector


def _det(channels: int) -> Detector:
    torch.manual_seed(0)
    net = Detector(channels=channels, crop=16, width=4, depth=2, spectrum_size=8, hidden=8)
    net.set_temperature(2.0)
    return net.eval()


def test_folder_is_scored_and_corrupt_files_get_clear_error_entries(mixed_folder):
    for channels in (1, 3):
        records = predict_path(_det(channels), {"preprocess": {"view": "center-crop"}}, mixed_folder)
        names = [r["file"].split("/")[-1] for r in records]
        assert names == ["a_grey.png", "b_rgb.jpg", "c_rgba.png", "e_corrupt.png", "f_truncated.png", "d_tiny.png"]
        by = {n: r for n, r in zip(names, records, strict=True)}
        for n in ("a_grey.png", "b_rgb.jpg", "c_rgba.png", "d_tiny.png"):
            assert 0.0 < by[n]["p_fake"] < 1.0 and by[n]["label"] in ("real", "fake") and "error" not in by[n]
            assert by[n]["p_fake"] == pytest.approx(1 / (1 + np.exp(-by[n]["logit"] / 2.0)), rel=1e-9)  # T = 2
        for n in ("e_corrupt.png", "f_truncated.png"):
            assert set(by[n]) == {"file", "error"} and n in by[n]["error"]


def test_scores_do_not_depend_on_batch_size_or_position():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (int(rng.integers(10, 40)), int(rng.integers(10, 40)), 3), dtype=np.uint8)
            for _ in range(7)]
    net = _det(3)
    a = score_arrays(net, imgs, batch_size=7)
    b = score_arrays(net, imgs, batch_size=2)
    c = score_arrays(net, imgs[3:4])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a[3:4], c, rtol=1e-5, atol=1e-5)
    assert score_arrays(net, []).shape == (0,)
