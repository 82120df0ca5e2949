"""Reader for HDF5 image sets in the widely shared ``usps.h5`` layout.

Layout: one group per split (``train``, ``test``), each with ``data`` (``[N, D]`` flattened square images, or
``[N, H, W]`` / ``[N, H, W, C]``) and optionally ``target`` (``[N]`` integer labels). ``data`` is float in [0, 1]
or uint8. A split is addressed as ``path.h5:train`` (``.hdf5`` works too); a file whose ``data`` sits at the top
level needs no split. Images are returned as uint8 ``[N, H, W, C]`` (floats are scaled by 255 and rounded), like
every other reader in ``formats.py``. Needs ``h5py`` (``pip install "ganforge[data]"``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ganforge.data.errors import DataError

H5_SUFFIXES = (".h5", ".hdf5")


def split_address(path: str | Path) -> tuple[Path, str | None]:
    """``'dir/usps.h5:train' -> (Path('dir/usps.h5'), 'train')``; ``'usps.h5' -> (Path('usps.h5'), None)``."""
    p = Path(path)
    name = p.name
    for suffix in H5_SUFFIXES:
        at = name.lower().find(suffix + ":")
        if at >= 0:
            split = name[at + len(suffix) + 1 :]
            if not split:
                raise DataError(f"{path}: empty split after ':'; address a split as FILE{suffix}:train")
            return p.with_name(name[: at + len(suffix)]), split
    return p, None


def is_hdf5(path: str | Path) -> bool:
    """True for ``*.h5`` / ``*.hdf5`` paths, with or without a ``:split`` suffix."""
    file, _ = split_address(path)
    return file.suffix.lower() in H5_SUFFIXES


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataError('reading .h5 datasets needs h5py, which is not installed: pip install "ganforge[data]"') \
            from None
    return h5py


def read_hdf5(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``path`` (``FILE.h5`` or ``FILE.h5:SPLIT``): uint8 images ``[N, H, W, C]`` and int64 labels or None."""
    file, split = split_address(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    h5py = _h5py()
    try:
        f = h5py.File(file, "r")
    except OSError as e:
        raise DataError(f"{file}: not a readable HDF5 file ({e})") from None
    with f:
        where = f"{file}:{split}" if split else str(file)
        if split is None:
            if "data" not in f:
                groups = sorted(k for k in f if isinstance(f[k], h5py.Group))
                raise DataError(f"{file}: no top-level 'data'; it holds splits {groups}; address one as "
                                f"{file}:{groups[0] if groups else 'train'}")
            group = f
        else:
            if split not in f or not isinstance(f[split], h5py.Group):
                groups = sorted(k for k in f if isinstance(f[k], h5py.Group))
                raise DataError(f"{file}: no split {split!r}; expected one of {groups}")
            group = f[split]
        if "data" not in group:
            raise DataError(f"{where}: no 'data' dataset (found {sorted(group)})")
        data = np.asarray(group["data"])
        labels = np.asarray(group["target"]) if "target" in group else None
    images = _to_uint8_images(data, where)
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{where}: 'target' must be [N] = [{len(images)}], got shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{where}: 'target' must hold integers, got {labels.dtype}")
        labels = labels.astype(np.int64)
    return images, labels


def _to_uint8_images(data: np.ndarray, where: str) -> np.ndarray:
    """``[N, D]`` (D a square), ``[N, H, W]`` or ``[N, H, W, C]`` float in [0, 1] or uint8 -> uint8 ``[N, H, W, C]``."""
    if data.ndim == 2:
        side = math.isqrt(data.shape[1])
        if side * side != data.shape[1]:
            raise DataError(f"{where}: 'data' is [N, {data.shape[1]}]; flattened rows must be square images "
                            f"(e.g. 256 = 16x16)")
        data = data.reshape(len(data), side, side, 1)
    elif data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4 or data.shape[-1] not in (1, 3):
        raise DataError(f"{where}: 'data' must be [N, D], [N, H, W] or [N, H, W, 1|3], got shape {data.shape}")
    if len(data) == 0:
        raise DataError(f"{where}: 'data' is empty")
    if data.dtype == np.uint8:
        return data
    if not np.issubdtype(data.dtype, np.floating):
        raise DataError(f"{where}: 'data' must be float in [0, 1] or uint8, got {data.dtype}")
    lo, hi = float(data.min()), float(data.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise DataError(f"{where}: float 'data' must lie in [0, 1], found values in [{lo:g}, {hi:g}]")
    return np.round(data * 255.0).astype(np.uint8)
