"""Explicit channel and geometry policies: nothing is converted without the user being able to see how.

Resize policies (recorded in the run's config and printed at the start of training):
- ``center-crop``: scale the short side to the resolution (Lanczos), crop the centre square.
- ``pad``: scale the long side to the resolution, pad the rest with black (the aspect ratio is kept, nothing lost).
- ``stretch``: resize both sides independently (distorts non-square input).
- ``none``: images must already be square at the target resolution; anything else is an error.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ganforge.data.errors import DataError

RESIZE_POLICIES = ("center-crop", "pad", "stretch", "none")


def convert_channels(arr: np.ndarray, channels: int, name: str) -> np.ndarray:
    """``[H, W, C_in] -> [H, W, channels]``: 1 = luminance (ITU-R 601), 3 = RGB; alpha is composited on black."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    c_in = arr.shape[2]
    if c_in == 4:  # composite on black: RGB * alpha
        a = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = np.round(arr[:, :, :3].astype(np.float32) * a).astype(np.uint8)
        c_in = 3
    if c_in == channels:
        return arr
    if c_in == 1 and channels == 3:
        return np.repeat(arr, 3, axis=2)
    if c_in == 3 and channels == 1:
        y = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.round(y), 0, 255).astype(np.uint8)[:, :, None]
    raise DataError(f"{name}: cannot convert {c_in} channels to {channels}")


def resize(arr: np.ndarray, resolution: int, policy: str, name: str) -> np.ndarray:
    """Bring ``[H, W, C]`` to ``[resolution, resolution, C]`` by ``policy`` (see module docstring)."""
    if policy not in RESIZE_POLICIES:
        raise DataError(f"resize policy must be one of {RESIZE_POLICIES}, got {policy!r}")
    h, w, c = arr.shape
    if h == w == resolution:
        return arr
    if policy == "none":
        raise DataError(f"{name}: image is {w}x{h} but resolution {resolution} was asked with --resize none")
    im = Image.fromarray(arr[:, :, 0] if c == 1 else arr)
    if policy == "stretch":
        im = im.resize((resolution, resolution), Image.LANCZOS)
    elif policy == "center-crop":
        scale = resolution / min(h, w)
        nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
        im = im.resize((nw, nh), Image.LANCZOS)
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
    else:  # pad
        scale = resolution / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        im = im.resize((nw, nh), Image.LANCZOS)
        canvas = Image.new(im.mode, (resolution, resolution))
        canvas.paste(im, ((resolution - nw) // 2, (resolution - nh) // 2))
        im = canvas
    out = np.asarray(im, dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def prepare(
    images: list[np.ndarray] | np.ndarray,
    resolution: int | None,
    channels: int | None,
    policy: str,
    names: list[str] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Apply the channel and resize policies to every image: returns ``[N, C, R, R]`` uint8, R, C.

    ``resolution=None`` keeps the images' own size (they must then all be square and equal); ``channels=None`` keeps
    their channel count, which must then be the same for all images (mixed counts are an error naming a file).
    """
    n = len(images)
    if n == 0:
        raise DataError("no images")
    label = (lambda i: names[i]) if names else (lambda i: f"image #{i}")
    if channels is None:
        counts = {min(im.shape[2], 3) for im in images}
        if len(counts) > 1:
            bad = next(i for i, im in enumerate(images) if min(im.shape[2], 3) != min(images[0].shape[2], 3))
            raise DataError(
                f"mixed channel counts: {label(0)} has {images[0].shape[2]}, {label(bad)} has {images[bad].shape[2]};"
                " pass --channels 1 or --channels 3 to convert explicitly"
            )
        channels = counts.pop()
    if resolution is None:
        sizes = {(im.shape[0], im.shape[1]) for im in images}
        if len(sizes) > 1 or images[0].shape[0] != images[0].shape[1]:
            raise DataError(f"images have sizes {sorted(sizes)[:4]}...; pass --resolution R to resize them")
        resolution = images[0].shape[0]
    out = np.empty((n, resolution, resolution, channels), dtype=np.uint8)
    for i, im in enumerate(images):
        im = convert_channels(np.asarray(im), channels, label(i))
        out[i] = resize(im, resolution, policy, label(i))
    return out.transpose(0, 3, 1, 2).copy(), resolution, channels
