"""The data layer: formats, policies, built-in datasets and ``load_dataset``, the single entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.data.builtin import DATASETS, Builtin, register_dataset
from ganforge.data.dataset import BatchSampler, GanDataset
from ganforge.data.errors import DataError
from ganforge.data.formats import read_folder, read_idx, read_npz, read_zip
from ganforge.data.hdf5 import is_hdf5, read_hdf5
from ganforge.data.transforms import RESIZE_POLICIES, prepare

__all__ = [
    "DATASETS",
    "RESIZE_POLICIES",
    "BatchSampler",
    "Builtin",
    "DataError",
    "GanDataset",
    "dataset_names",
    "load_dataset",
    "register_dataset",
]


def dataset_names() -> list[str]:
    _import_extra_datasets()
    return DATASETS.names()


def _import_extra_datasets() -> None:
    """Modules that register more built-ins on import (toy sets, Stacked MNIST, ...)."""
    import ganforge.data.builtin  # noqa: F401
    from ganforge.data import stacked, toy  # noqa: F401


def read_source(
    path: Path, on_error: str = "raise"
) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a dataset path by its kind: folder, ``.zip``, ``.npz`` or an IDX images file (labels beside it).

    Returns images, labels (or None) and per-image names for error messages (None for array formats).
    """
    if is_hdf5(path):  # FILE.h5 or FILE.h5:SPLIT (data/hdf5.py)
        return (*read_hdf5(path), None)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        return read_folder(path, on_error)
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".zip"):
        return read_zip(path, on_error)
    if suffixes.endswith(".npz"):
        return (*read_npz(path), None)
    if "idx" in path.name or "ubyte" in path.name:
        x = read_idx(path)
        if x.ndim != 3:
            raise DataError(f"{path}: an IDX images file must be [N, H, W], got {x.shape}")
        labels = None
        lab = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if lab != path and lab.is_file():
            labels = read_idx(lab).astype(np.int64)
        return x[..., None], labels, None
    raise DataError(f"{path}: unsupported dataset format; expected a folder, .zip, .npz or IDX file")


def load_dataset(
    source: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    resize: str = "center-crop",
    data_dir: str | Path | None = None,
    on_error: str = "raise",
    max_images: int | None = None,
) -> GanDataset:
    """Load a built-in dataset by name or a path, apply the channel/resize policies and return it in memory.

    ``on_error='skip'`` skips unreadable images with a warning instead of raising; the policy applied is recorded in
    ``dataset.info`` (and so in the run's config).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if resize not in RESIZE_POLICIES:
        raise DataError(f"resize policy must be one of {RESIZE_POLICIES}, got {resize!r}")
    _import_extra_datasets()
    name = str(source)
    if name in DATASETS:
        entry = DATASETS.get(name)
        raw = entry.load(Path(data_dir) if data_dir else None)
        if isinstance(raw, GanDataset):
            if resolution not in (None, raw.resolution) or channels not in (None, raw.channels):
                raise DataError(f"dataset {name!r} has fixed shape {raw.channels}x{raw.resolution}; do not resize it")
            return raw
        images, labels = raw
        names = None
        num_classes, kind = entry.num_classes, "builtin"
        prior = entry.class_prior(Path(data_dir) if data_dir else None) if entry.class_prior else None
    else:
        path = Path(source)
        if not path.exists() and not is_hdf5(path):
            raise DataError(
                f"{source!r} is neither a built-in dataset ({', '.join(DATASETS.names())}) nor an existing path"
            )
        images, labels, names = read_source(path, on_error)
        num_classes, kind = (int(labels.max()) + 1 if labels is not None else 0), "path"
        prior = None
    if max_images is not None:
        images, labels = images[:max_images], (labels[:max_images] if labels is not None else None)
    arr, res, ch = prepare(images, resolution, channels, resize, names)
    info = {"source": name, "kind": kind, "resize": resize, "resolution": res, "channels": ch, "images": len(arr)}
    return GanDataset(
        name=name,
        data=torch.from_numpy(arr),
        labels=torch.from_numpy(labels) if labels is not None else None,
        num_classes=num_classes,
        info=info,
        class_prior=prior,
    )
