"""JPEG traces: the standard quantisation tables, an orthonormal block DCT, and a lattice fit that finds the quality
a decoded JPEG was saved at while clean images fit no lattice, however smooth they are. (The logistic model fitted
on the lattice summary is a solver in ganforge.detection.processing, tested in tests/detection/test_processing.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.detection.data import gaussian_blur, jpeg, to_tensor
from ganforge.models.jpeg_trace import QUALITIES, block_dct, jpeg_lattice_fit, quant_table


def test_quant_tables_follow_libjpeg_scaling():
    t50 = quant_table(50)
    assert t50[0, 0] == 16 and t50[0, 1] == 11 and t50[7, 7] == 99  # the standard's table itself
    assert torch.equal(quant_table(100), torch.ones(8, 8))
    assert quant_table(75)[0, 1] == 6  # 11 * 50 / 100 rounded as libjpeg does
    assert bool((quant_table(30) >= quant_table(60)).all())  # lower quality, coarser steps
    with pytest.raises(ValueError, match="JPEG quality"):
        quant_table(0)


def test_block_dct_is_orthonormal_per_block():
    y = torch.randn(2, 19, 27)
    c = block_dct(y, 1, 2)  # blocks from (1, 2): 2 x 3 of them
    assert c.shape == (2, 6, 8, 8)
    blocks = y[:, 1:17, 2:26]
    assert torch.allclose((c**2).sum(dim=(1, 2, 3)), (blocks**2).sum(dim=(1, 2)), rtol=1e-4)


def _noise(seed: int, sigma: float = 0.0) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    return gaussian_blur(img, sigma)


@pytest.mark.parametrize("quality", [40, 75])
def test_a_decoded_jpeg_sits_on_its_qualitys_lattice_and_a_clean_image_on_none(quality):
    clean = [_noise(s) for s in range(4)] + [_noise(s, 1.5) for s in range(4, 8)]  # sharp and smooth
    fit_clean = jpeg_lattice_fit(to_tensor(clean))
    fit_jpeg = jpeg_lattice_fit(to_tensor([jpeg(a, quality) for a in clean]))
    assert fit_clean.shape == (8, len(QUALITIES))
    assert float(fit_clean.amin(dim=1).min()) > 0.7  # no lattice, sharp or smooth
    assert float(fit_jpeg.amin(dim=1).max()) < 0.5
    found = torch.tensor(QUALITIES)[fit_jpeg.argmin(dim=1)]
    assert bool((found - quality).abs().le(4).all())
    flat = jpeg_lattice_fit(torch.zeros(1, 1, 16, 16))  # nothing off zero: no evidence either way
    assert torch.equal(flat, torch.ones_like(flat))
