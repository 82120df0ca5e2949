"""Turning tensors into pictures and videos, and videos back into frames.

Images in model space are float ``[N, C, H, W]`` in [-1, 1]; pictures on disk are uint8. Video goes through
``imageio`` with the ffmpeg binary bundled by ``imageio-ffmpeg`` (``pip install "ganforge[video]"``), mp4 (H.264) or
gif.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

VIDEO_SUFFIXES = (".mp4", ".gif", ".avi", ".mov", ".mkv", ".webm")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> uint8 ``[N, H, W, C]`` (C = 1 or 3; 2-channel or other data is refused)."""
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {list(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"cannot render {images.shape[1]}-channel samples as pictures (1 or 3 expected)")
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, C]`` -> float ``[N, C, H, W]`` in [-1, 1]. A read-only array (a decoded picture, a shared
    cache) is copied first: torch cannot wrap one safely."""
    arr = np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr, order="C")
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def make_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images into one uint8 picture ``[H', W', C]``; ``nrow`` images per row (default: square-ish)."""
    arr = to_uint8(images) if isinstance(images, torch.Tensor) else images
    n, h, w, c = arr.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = np.zeros((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = arr[i]
    return grid


def save_image(arr: np.ndarray, path: str | Path) -> Path:
    """Save uint8 ``[H, W, C]`` as PNG/JPEG (by suffix); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path)
    return path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    return save_image(make_grid(images, nrow), path)


def _imageio(path: Path):
    """``imageio.v2``, and for anything but a gif the ffmpeg plugin's package; a missing one names the extra."""
    try:
        import imageio.v2 as iio

        if path.suffix.lower() != ".gif":
            import imageio_ffmpeg  # noqa: F401  (without it imageio finds no backend for mp4 and other videos)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f'video needs imageio and imageio-ffmpeg ({e.name} is missing): pip install '
                                  '"ganforge[video]"', name=e.name) from None
    return iio


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 24.0) -> Path:
    """Write uint8 frames ``[H, W, C]`` to ``path`` (.mp4 via ffmpeg, or .gif)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unsupported video format; use one of {', '.join(VIDEO_SUFFIXES)}")
    iio = _imageio(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = (
        {"duration": 1000.0 / fps, "loop": 0}
        if path.suffix.lower() == ".gif"
        else {"fps": fps, "codec": "libx264", "macro_block_size": 1, "quality": 8}
    )
    with iio.get_writer(path, **kwargs) as writer:
        for frame in frames:
            writer.append_data(
                frame[:, :, 0]
                if frame.shape[2] == 1 and path.suffix.lower() == ".gif"
                else (np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
            )
    return path


def video_info(path: str | Path) -> dict:
    """Frame rate, size and frame count of a video file (``ValueError`` naming the file if unreadable)."""
    iio = _imageio(Path(path))
    try:
        with iio.get_reader(path) as reader:
            meta = reader.get_meta_data()
            n = reader.count_frames() if hasattr(reader, "count_frames") else None
    except Exception as e:  # imageio raises many types for bad input
        raise ValueError(f"{path}: not a readable video ({type(e).__name__}: {e})") from None
    return {"fps": float(meta.get("fps", 24.0)), "size": meta.get("size"), "frames": n}


def read_video(path: str | Path) -> tuple[Iterator[np.ndarray], float]:
    """Lazily decoded uint8 RGB frames ``[H, W, 3]`` and the frame rate; audio is ignored."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such video file")
    iio = _imageio(Path(path))
    try:
        reader = iio.get_reader(path)
        fps = float(reader.get_meta_data().get("fps", 24.0))
    except Exception as e:
        raise ValueError(f"{path}: not a readable video ({type(e).__name__}: {e})") from None

    def frames() -> Iterator[np.ndarray]:
        with reader:
            for frame in reader:
                yield np.asarray(frame)[:, :, :3]

    return frames(), fps
