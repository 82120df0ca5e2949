"""Average log-magnitude spectra of image sets, and a side-by-side picture of them.

Wang et al. 2020 (CNNDetection, fig. 6) and Durall et al. 2020 average the Fourier spectra of many high-pass
filtered images: image content averages out, and the periodic traces of a generator's upsampling layers remain as
bright dots on a grid (at multiples of 1/4 or 1/2 cycles per pixel for 2x up-convolutions). Here: every image is
converted to luminance, brought to ``size`` x ``size`` by the detector's test view (centre crop, short side
upscaled if needed), optionally high-passed (image minus its 3x3 median, as Wang et al.), and its centred
log-magnitude FFT (``ganforge.models.detector.log_spectrum``) is averaged over the set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from ganforge.detection.data import inference_view
from ganforge.models.detector import log_spectrum

# A dark-to-bright colour ramp (black, purple, orange, pale yellow) for the pictures.
_RAMP = np.array([[0, 0, 4], [80, 18, 123], [183, 55, 121], [252, 137, 97], [252, 253, 191]], dtype=np.float64)


def highpass(arr: np.ndarray) -> np.ndarray:
    """``[H, W, 1]`` uint8 -> float32 residual ``image - median3x3(image)`` in [-1, 1] units ``[H, W]``."""
    im = Image.fromarray(arr[:, :, 0])
    med = np.asarray(im.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    return (arr[:, :, 0].astype(np.float32) - med) / 127.5


def average_spectrum(
    images: list[np.ndarray], size: int = 64, high_pass: bool = True, progress: bool = False
) -> np.ndarray:
    """Mean centred log-magnitude FFT ``[size, size]`` (zero frequency at ``(size // 2, size // 2)``)."""
    if not images:
        raise ValueError("no images to average")
    if size < 4:
        raise ValueError(f"spectrum size must be >= 4, got {size}")
    total = torch.zeros(size, size, dtype=torch.float64)
    for start in tqdm(range(0, len(images), 256), desc="spectrum", unit="batch", leave=False, disable=not progress):
        chunk = []
        for arr in images[start : start + 256]:
            v = inference_view(arr, size, 1)  # [size, size, 1] uint8, luminance
            chunk.append(highpass(v) if high_pass else v[:, :, 0].astype(np.float32) / 127.5 - 1.0)
        x = torch.from_numpy(np.stack(chunk)).unsqueeze(1)  # [B, 1, size, size]
        total += log_spectrum(x, "fft")[:, 0].double().sum(dim=0)
    return (total / len(images)).float().numpy()


def colourise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``values [H, W]`` linearly from ``[lo, hi]`` onto the colour ramp: uint8 ``[H, W, 3]``."""
    t = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    f = (t - i)[..., None]
    return np.round(_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)


def spectrum_picture(panels: list[tuple[str, np.ndarray]], path: str | Path, min_side: int = 256) -> Path:
    """Save spectra side by side with their labels; all but a final ``"difference"`` panel share one colour scale
    (1st to 99.5th percentile), so brighter means more energy in every panel alike."""
    if not panels:
        raise ValueError("no spectra to draw")
    shared = [v for name, v in panels if name != "difference"]
    lo = float(np.percentile(np.stack(shared), 1)) if shared else 0.0
    hi = float(np.percentile(np.stack(shared), 99.5)) if shared else 1.0
    tiles = []
    for name, v in panels:
        a, b = (lo, hi) if name != "difference" else (float(np.percentile(v, 1)), float(np.percentile(v, 99.5)))
        rgb = colourise(v, a, b)
        k = max(1, -(-min_side // min(v.shape)))  # integer upscale, nearest, so single-bin peaks stay visible
        tile = Image.fromarray(rgb).resize((v.shape[1] * k, v.shape[0] * k), Image.NEAREST)
        canvas = Image.new("RGB", (tile.width, tile.height + 24), (255, 255, 255))
        canvas.paste(tile, (0, 24))
        ImageDraw.Draw(canvas).text((4, 6), name, fill=(0, 0, 0))
        tiles.append(canvas)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)),
                    (255, 255, 255))
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 8
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
    return path
