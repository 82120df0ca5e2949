"""Traces of JPEG compression that do not depend on how detailed an image is.

A JPEG decoder rebuilds each aligned 8x8 block from DCT coefficients that were integer multiples of a quantisation
step (the quality's table); rounding the result to uint8 adds only about 0.3 of noise per coefficient. So the
orthonormal block DCT of a decoded JPEG lies on that lattice, while any other image's coefficients fall anywhere
(Fan & de Queiroz, "Identification of bitmap compression history: JPEG detection and quantizer estimation", IEEE TIP
2003; the same idea as Farid's "JPEG ghosts", IEEE TIFS 2009, in the DCT domain).

``jpeg_lattice_fit`` measures, for every candidate quality, how far the coefficients that the quality would not
zero are from its lattice (``12 * E[u^2]``, ``u`` the offset in steps: about 1 off the lattice, near 0 on it). A
smooth image has few large coefficients but those few are as far from any lattice as a sharp image's; the measure
asks where coefficients sit, not how big they are. That is what the detector's processing head needs: smooth
generators' clean output must not look re-compressed (see ``ganforge.models.detector``).
"""

from __future__ import annotations

from functools import lru_cache

import torch

# The luminance table of the JPEG standard (ITU-T T.81, Annex K.1), row-major over (vertical, horizontal) frequency.
_LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
QUALITIES = tuple(range(20, 101, 2))  # candidate qualities, one feature each
_MIN_ACTIVE = 8  # fewer coefficients off zero than this say nothing about a lattice


def quant_table(quality: int) -> torch.Tensor:
    """The 8x8 luminance quantisation steps ``[8, 8]`` libjpeg (and PIL) use at ``quality`` (1..100)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    t = torch.tensor(_LUMA_TABLE, dtype=torch.float32)
    return torch.clamp(torch.floor((t * scale + 50) / 100), 1, 255).view(8, 8)


@lru_cache(maxsize=1)
def _all_tables() -> torch.Tensor:
    """The tables of every candidate quality ``[len(QUALITIES), 8, 8]`` (built once)."""
    return torch.stack([quant_table(q) for q in QUALITIES])


@lru_cache(maxsize=1)
def _dct8() -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(8, dtype=torch.float32).unsqueeze(0)
    d = torch.cos(torch.pi * (2 * i + 1) * k / 16) * 0.5
    d[0] = d[0] / 2**0.5
    return d


def block_dct(y: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Orthonormal 8x8 DCT of the blocks of ``y [N, H, W]`` whose grid starts at ``(dy, dx)``: ``[N, B, 8, 8]``."""
    n, h, w = y.shape
    bh, bw = (h - dy) // 8, (w - dx) // 8
    blocks = y[:, dy : dy + 8 * bh, dx : dx + 8 * bw].reshape(n, bh, 8, bw, 8).permute(0, 1, 3, 2, 4)
    d = _dct8().to(y.device, y.dtype)
    return (d @ blocks.reshape(n, bh * bw, 8, 8) @ d.T)


def luma_255(img: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` in [-1, 1] -> JPEG's level-shifted luminance ``[N, H, W]`` in [-128, 127] (float32)."""
    x = (img.float() + 1.0) * 127.5
    if x.shape[1] == 3:
        x = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    else:
        x = x.mean(dim=1)
    return x - 128.0


@torch.no_grad()
def jpeg_lattice_fit(img: torch.Tensor) -> torch.Tensor:
    """Lattice misfit per candidate quality ``[N, len(QUALITIES)]`` on the 8x8 grid that starts at the top left.

    ``12 * mean(u^2)`` over the coefficients the quality would not round to zero, ``u = c / step - round(c /
    step)``; 1 when fewer than ``_MIN_ACTIVE`` such coefficients exist. Only the grid anchored at the top-left pixel
    is tried (a decoded JPEG seen whole, or cropped at multiples of 8, as the tiles the detector scores are,
    ``ganforge.detection.data.tile_origins``); a crop at another offset hides the lattice. Not
    differentiable: a fixed feature, like a histogram.
    """
    if min(img.shape[-2:]) < 8:
        return torch.ones(img.shape[0], len(QUALITIES), dtype=img.dtype, device=img.device)
    y = luma_255(img)
    steps = _all_tables().to(y.device, y.dtype)  # [Q, 8, 8]
    r = block_dct(y, 0, 0).unsqueeze(1) / steps[None, :, None]  # [N, Q, B, 8, 8]
    k = torch.round(r)
    active = (k != 0).to(r.dtype)
    n_active = active.sum(dim=(2, 3, 4))  # [N, Q]
    fit = 12 * ((r - k) ** 2 * active).sum(dim=(2, 3, 4)) / n_active.clamp_min(1)
    return torch.where(n_active >= _MIN_ACTIVE, fit, torch.ones_like(fit)).to(img.dtype)
