"""Average spectra show a periodic generator artefact where it should be, and the picture is written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforge.detection.spectrum import average_spectrum, colourise, spectrum_picture


def _images(periodic: bool, n: int = 20, size: int = 32):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = rng.normal(128, 20, (size, size))
        if periodic:  # a 4-pixel checkerboard-like grid, as 2x up-convolutions twice over leave
            img[::4, ::4] += 40
        out.append(np.clip(img, 0, 255).astype(np.uint8)[:, :, None])
    return out


def test_periodic_artefact_gives_peaks_at_quarter_frequencies():
    size = 32
    clean = average_spectrum(_images(False), size)
    art = average_spectrum(_images(True), size)
    c = size // 2
    q = size // 4
    diff = art - clean
    assert diff.shape == (size, size)
    assert diff[c + q, c + q] > 1.0 and diff[c, c + q] > 1.0 and diff[c - q, c] > 1.0
    assert abs(diff[c + q + 1, c + q + 2]) < 0.5  # off the grid: no change


def test_picture_has_one_tile_per_panel_and_validates(tmp_path):
    a, b = np.random.default_rng(0).normal(size=(2, 16, 16))
    path = spectrum_picture([("real", a), ("fake", b), ("difference", b - a)], tmp_path / "s.png")
    im = Image.open(path)
    assert im.width == 3 * 256 + 2 * 8 and im.height == 256 + 24
    with pytest.raises(ValueError, match="no spectra"):
        spectrum_picture([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no images"):
        average_spectrum([], 16)
    ramp = colourise(np.array([[0.0, 1.0]]), 0.0, 1.0)
    assert ramp.dtype == np.uint8 and ramp[0, 0].sum() < ramp[0, 1].sum()
