"""Readers for the on-disk formats ganforge accepts.

- image folders (recursive, any format PIL reads), optionally with a StyleGAN2-ADA style ``dataset.json`` of labels
- zip archives in the StyleGAN2-ADA ``dataset_tool`` layout (images + optional ``dataset.json``)
- MNIST-style IDX files (raw or gzip), images and labels
- ``.npz`` arrays with ``images`` (or ``x``) and optional ``labels`` (or ``y``)

Every reader returns raw uint8 arrays ``[H, W, C]`` (one per image, sizes may differ) and optional integer labels;
resizing and channel policy live in ``transforms.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganforge.data.errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# Refuse absurd images before decoding them (decompression bombs); 64 Mpx is far beyond any GAN resolution.
Image.MAX_IMAGE_PIXELS = 64 * 1024 * 1024


def decode_image(data: bytes | Path, name: str) -> np.ndarray:
    """Decode one image to uint8 ``[H, W, C]`` with C in {1, 3, 4}; errors name the file."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            im.load()
            if im.width == 0 or im.height == 0:
                raise DataError(f"{name}: zero-size image ({im.width}x{im.height})")
            if im.mode in ("1", "L", "I;16", "I", "F", "P", "LA", "PA", "CMYK", "YCbCr", "RGBA", "RGB"):
                mode = {
                    "1": "L",
                    "I;16": "L",
                    "I": "L",
                    "F": "L",
                    "P": "RGBA" if "transparency" in im.info else "RGB",
                    "LA": "RGBA",
                    "PA": "RGBA",
                    "CMYK": "RGB",
                    "YCbCr": "RGB",
                }.get(im.mode, im.mode)
                im = im.convert(mode)
            else:
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{name}: image too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.size == 0:
        raise DataError(f"{name}: zero-size image")
    return arr


def iter_image_folder(root: Path) -> list[Path]:
    """All image files below ``root`` (recursive, sorted for reproducibility)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _labels_from_json(text: str, where: str) -> dict[str, int] | None:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: invalid JSON ({e})") from None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if labels is None:
        return None
    try:
        return {str(name).replace("\\", "/"): int(lbl) for name, lbl in labels}
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'labels' must be a list of [filename, integer] pairs") from None


def _decode_all(items: Iterator[tuple[str, bytes | Path]], on_error: str) -> tuple[list[np.ndarray], list[str]]:
    images, names = [], []
    for name, data in items:
        try:
            images.append(decode_image(data, name))
            names.append(name)
        except DataError as e:
            if on_error == "skip":
                warnings.warn(f"skipping {e}", stacklevel=3)
                continue
            raise
    if not images:
        raise DataError("no readable images left after skipping bad files")
    return images, names


def read_folder(root: Path, on_error: str = "raise") -> tuple[list[np.ndarray], np.ndarray | None, list[str]]:
    """Read every image below ``root``; labels from ``root/dataset.json`` when present; and the file names."""
    files = iter_image_folder(root)
    images, names = _decode_all(((str(p), p) for p in files), on_error)
    labels = None
    meta = root / "dataset.json"
    if meta.is_file():
        table = _labels_from_json(meta.read_text(), str(meta))
        if table is not None:
            labels = _lookup_labels(table, [_relative(n, root) for n in names], [_relative(p, root) for p in files],
                                    str(meta))
    return images, labels, names


def _relative(path: str | Path, root: Path) -> str:
    """``path`` below ``root`` with forward slashes, as ``dataset.json`` names files."""
    return str(Path(path).relative_to(root)).replace("\\", "/")


def read_zip(path: Path, on_error: str = "raise") -> tuple[list[np.ndarray], np.ndarray | None, list[str]]:
    """Read a StyleGAN2-ADA ``dataset_tool`` zip: images at any depth, labels in ``dataset.json``."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable zip archive ({e})") from None
    with zf:
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        if not names:
            raise DataError(f"{path}: the archive holds no image files")
        images, kept = _decode_all(((f"{path}:{n}", zf.read(n)) for n in names), on_error)
        labels = None
        if "dataset.json" in zf.namelist():
            table = _labels_from_json(zf.read("dataset.json").decode("utf-8"), f"{path}:dataset.json")
            if table is not None:
                kept_names = [k.split(":", 1)[1] if k.startswith(f"{path}:") else k for k in kept]
                labels = _lookup_labels(table, kept_names, names, f"{path}:dataset.json")
    return images, labels, kept


def _lookup_labels(table: dict[str, int], names: list[str], present: list[str], where: str) -> np.ndarray:
    """Labels of the decoded images ``names``, in order. ``present``: every image file of the source (decoded or
    skipped as unreadable); a label for a file that is not among them is an error naming that file."""
    held = set(present)
    absent = [n for n in table if n not in held]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise DataError(f"{where}: labels {absent[0]!r}{more}, which is not an image file of this dataset; "
                        "fix the name or remove the entry")
    missing = [n for n in names if n not in table]
    if missing:
        raise DataError(f"{where}: no label for {len(missing)} image(s), e.g. {missing[0]!r}")
    return np.array([table[n] for n in names], dtype=np.int64)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an MNIST-style IDX file (raw or .gz): images ``[N, H, W]`` or labels ``[N]``.

    The magic number is two zero bytes, a type code and the number of dimensions; 2051 (images) and 2049 (labels) are
    the MNIST values.
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or not 1 <= raw[3] <= 4:
        magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise DataError(f"{path}: wrong IDX magic number {magic}; expected 2051 (images) or 2049 (labels)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but {len(raw) - offset} bytes follow"
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``images``/``x`` (``[N, H, W]``, ``[N, H, W, C]`` or ``[N, C, H, W]``) and ``labels``/``y`` from npz.

    Loaded with ``allow_pickle=False``: object arrays are refused.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            img_key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
            if img_key is None:
                raise DataError(f"{path}: no 'images' (or 'x') array; found {sorted(keys)}")
            images = z[img_key]
            lab_key = next((k for k in ("labels", "y") if k in keys), None)
            labels = z[lab_key].astype(np.int64) if lab_key else None
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{path}: images must be [N, H, W(, C)] or [N, C, H, W], got shape {images.shape}")
    if images.shape[1] in (1, 3, 4) and images.shape[-1] not in (1, 3, 4):
        images = images.transpose(0, 2, 3, 1)
    if images.dtype != np.uint8:
        if np.issubdtype(images.dtype, np.floating) and images.min() >= 0 and images.max() <= 1:
            raise DataError(f"{path}: float images in [0, 1] are ambiguous; store uint8 0..255")
        raise DataError(f"{path}: images must be uint8, got {images.dtype}")
    if labels is not None and len(labels) != len(images):
        raise DataError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels
