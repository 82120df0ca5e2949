"""The photo recipe: what ``ganforge train --data FOLDER`` trains when FOLDER holds colour photos and no model is named.

Colour, a 64x64 centre crop, x-flip, DiffAugment (Zhao et al. 2020) on every image D sees, a G EMA, bf16 autocast
on a CPU with native bf16, AMX or AVX512-BF16 (precision ``auto``), and the family that came out ahead in a short
equal-wall-time comparison on the 5,000 CelebA faces (see ``PHOTO_FAMILY`` for the figures and their limits;
``benchmarks/faces_cpu.py`` measures the full protocol). Every value is a default: ``--resolution 32/128``,
``--model``, ``--no-xflip``, ``--precision`` and the rest override it.

A folder counts as colour photos when at least half of up to ``SAMPLE`` images, read evenly across it, have three
channels that differ (not grey stored as RGB) and a short side of at least ``MIN_SIDE`` pixels (not digits or icons).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganforge.data.errors import DataError
from ganforge.data.formats import decode_image, iter_image_folder

SAMPLE = 8  # images read to decide
MIN_SIDE = 32  # shorter side of a photo, in pixels
GREY_TOLERANCE = 4.0  # mean |R-G| + |G-B| (0-255) below which an RGB image is grey (JPEG chroma noise)

# The measured winner. Short runs on a shared, heavily loaded 2-core CPU (2026-12-01, load average 20-30): fastgan and
# dcgan (spectral norm, DiffAugment, x-flip, EMA) side by side on the 5,000 CelebA faces at 64 px, one thread each
# (2 threads each spun at OpenMP barriers under that load), the same wall time. Inception FID / KID of 300 fakes vs
# 300 reals of the training set, and the Frechet distance of 16x16 pixels (1,000 vs 1,000; two real halves: 6.8):
#   11 min: fastgan 2.69 kimg FID 405 KID 0.51 pixel 180 | dcgan 2.46 kimg FID 332 KID 0.39 pixel 264
#   25 min: fastgan 6.50 kimg FID 331 KID 0.38 pixel  77 | dcgan 5.98 kimg FID 343 KID 0.40 pixel 240
# fastgan leads at the later point (and its samples are face-shaped while dcgan's EMA samples are near-identical
# blobs). Both are far from faces: re-decide with benchmarks/faces_cpu.py (--set model=...) on a quiet machine.
PHOTO_FAMILY = "fastgan"
# Per candidate family: what makes it the photo recipe beyond the common part (DiffAugment, spectral norm, ...).
FAMILY_SETTINGS: dict[str, dict[str, Any]] = {
    # The fastgan loss applies DiffAugment by default. D twice as wide (base width 16: 0.51 M -> 1.75 M parameters at
    # 64 px) and a G EMA half-life of 10 kimg ramped over the first 5 % of images: on both cores, seed 0, FID 72.1 /
    # 54.5 / 37.5 / 29.7 at 15 / 30 / 60 / 120 min against 78.9 / 56.3 / 40.3 / 35.0 for D width 8 and a 2 kimg EMA
    # (BENCHMARKS.md "A wider discriminator with a longer G EMA"; chosen on seed 0 of that benchmark). G_ema keeps G's
    # batch-norm statistics (ema_bn_images 0): re-estimated for its own weights, the packaged generator measured FID
    # 30.10 against 29.74 (BENCHMARKS.md "G_ema's own batch-norm statistics"), and each re-estimate (4,096 forward
    # passes of G at every snapshot) costs training time in a recipe judged per hour.
    "fastgan": {"d_kwargs": {"width": 16}, "ema_kimg": 10.0, "ema_rampup": 0.05, "ema_bn_images": 0},
    "dcgan": {"d_kwargs": {"norm": "spectral"}, "loss_kwargs": {"augment": "diffaugment"}},
}
# precision "auto": bf16 where the CPU has it natively (ganforge.train.build.resolve_precision has the measurements).
COMMON = {"resolution": 64, "channels": 3, "resize": "center-crop", "xflip": True, "precision": "auto"}


def is_colour_image(arr: np.ndarray) -> bool:
    """Whether a decoded image ``[H, W, C]`` (uint8) has colour: three channels that differ beyond JPEG noise."""
    if arr.ndim != 3 or arr.shape[2] < 3:
        return False
    rgb = arr[:, :, :3].astype(np.float32)
    spread = np.abs(rgb[:, :, 0] - rgb[:, :, 1]).mean() + np.abs(rgb[:, :, 1] - rgb[:, :, 2]).mean()
    return bool(spread > GREY_TOLERANCE)


def is_photo_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder of colour photos (module docstring); anything else (a built-in name, a zip, an
    unreadable folder) is not."""
    root = Path(path)
    if not root.is_dir():
        return False
    try:
        files = iter_image_folder(root)
    except DataError:
        return False
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(SAMPLE, len(files))).round().astype(int)]
    votes = 0
    for f in picks:
        try:
            arr = decode_image(f, str(f))
        except DataError:
            continue
        votes += int(is_colour_image(arr) and min(arr.shape[:2]) >= MIN_SIDE)
    return votes * 2 >= len(picks)


def photo_defaults(data: str | None, family: str = PHOTO_FAMILY) -> dict[str, Any]:
    """TrainConfig values of the photo recipe when ``data`` is a folder of colour photos, else ``{}``."""
    if family not in FAMILY_SETTINGS:
        raise ValueError(f"no photo settings for family {family!r}; expected one of {sorted(FAMILY_SETTINGS)}")
    if data is None or not is_photo_folder(data):
        return {}
    return {"model": family, **COMMON, **FAMILY_SETTINGS[family]}
