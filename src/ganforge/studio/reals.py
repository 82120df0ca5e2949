"""The real pictures of "Which one is real?": a generator's own training data, or any folder of photos (``--real``).

Either way the pictures are prepared as training prepares them (``ganforge.data.transforms``): channels converted to
the generator's, the short side scaled to its resolution (Lanczos) and the centre square cropped. A folder given with
``--real`` is read lazily and at most ``MAX_REAL_IMAGES`` of its files (spread evenly over the sorted list) are
decoded, one at a time, so a folder of large photos costs only the small prepared copies.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MAX_REAL_IMAGES = 20_000  # real pictures kept in memory per model ...
MAX_REAL_BYTES = 256 * 1024 * 1024  # ... and at most this many bytes of them
NO_DATA = "the checkpoint names no training data; pass --real DIR (a folder of photos)"


@dataclass(frozen=True)
class RealSource:
    """Where the real pictures come from: ``folder`` (``--real DIR``) or a dataset spec from the run's config."""

    source: str  # a folder, or a dataset name/path as the run's config records it
    folder: bool
    resolution: int | None = None  # the training spec's (None: the dataset's own size)
    channels: int | None = None
    resize: str = "center-crop"
    data_dir: str | None = None
    max_images: int | None = None

    def describe(self) -> str:
        return f"--real {self.source}" if self.folder else f"training data {self.source!r}"


def training_source(meta: dict[str, Any]) -> RealSource | None:
    """The data a checkpoint was trained on, from its config's ``train`` section (None when it names none)."""
    train = meta.get("train") or {}
    data = train.get("data") or (meta.get("dataset") or {}).get("source")
    if not data:
        return None
    return RealSource(source=str(data), folder=False, resolution=train.get("resolution"),
                      channels=train.get("channels"), resize=train.get("resize") or "center-crop",
                      data_dir=train.get("data_dir"), max_images=train.get("max_images"))


def folder_source(path: str | Path) -> RealSource:
    """``--real DIR``: a folder of pictures (any depth, any format PIL reads); ``ValueError`` if it holds none."""
    from ganforge.data.formats import iter_image_folder

    root = Path(path).expanduser()
    iter_image_folder(root)  # DataError (a ValueError) naming the folder: missing, not a folder, or no pictures
    return RealSource(source=str(root), folder=True)


def fit_picture(arr: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A real picture brought to a generated one's size and channels (Lanczos; only if they differ)."""
    from ganforge.data.transforms import convert_channels

    if arr.shape[2] != channels:
        arr = convert_channels(arr, channels, "real picture")
    if arr.shape[:2] != (size, size):
        im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).resize((size, size), Image.LANCZOS)
        arr = np.asarray(im)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
    return arr


def read_folder_prepared(root: Path, resolution: int, channels: int, limit: int) -> np.ndarray:
    """Up to ``limit`` pictures of ``root`` as uint8 ``[N, R, R, C]``, centre-cropped and resized like training data.

    Unreadable files are skipped with one warning; a folder without a single readable picture is a ``DataError``.
    """
    from ganforge.data.errors import DataError
    from ganforge.data.formats import decode_image, iter_image_folder
    from ganforge.data.transforms import convert_channels, resize

    files = iter_image_folder(root)
    if len(files) > limit:  # spread the sample over the whole (sorted) folder
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, limit).round()]
    out, skipped = [], []
    for path in files:
        try:
            arr = convert_channels(decode_image(path, str(path)), channels, str(path))
        except DataError as e:
            skipped.append(str(e))
            continue
        out.append(resize(arr, resolution, "center-crop", str(path)))
    if skipped:
        warnings.warn(f"--real {root}: skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}", stacklevel=2)
    if not out:
        raise DataError(f"{root}: none of its {len(files)} picture file(s) could be read")
    return np.stack(out)  # [N, R, R, C]


class RealPictures:
    """A generator's real pictures, loaded once on first use (thread-safe) at its resolution and channels.

    ``error`` says why there are none (no source, unreadable data); it is set before loading when no source is known
    and after a failed load, and never changes afterwards.
    """

    def __init__(self, source: RealSource | None, resolution: int, channels: int, use_labels: bool) -> None:
        self.source, self.resolution, self.channels, self.use_labels = source, resolution, channels, use_labels
        self.error: str | None = NO_DATA if source is None else None
        self._images: np.ndarray | None = None  # uint8 [N, H, W, C]
        self._labels: np.ndarray | None = None  # int [N] (conditional generators trained on labelled data)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> np.ndarray | None:
        return self._images

    def count(self) -> int:
        """How many there are, loading them on first use (``RuntimeError`` with the reason if they cannot be)."""
        with self._lock:
            if self._images is None and self.error is None:
                self._load()
            if self._images is None:
                raise RuntimeError(f"'Which one is real?' unavailable: {self.error}")
            return len(self._images)

    def picture(self, index: int, c_dim: int) -> tuple[np.ndarray, int | None]:
        """Picture ``index`` (uint8 ``[R, R, C]``) and its class when it has one in ``[0, c_dim)``."""
        n = self.count()
        if not 0 <= index < n:
            raise IndexError(f"real picture {index} out of range [0, {n})")
        assert self._images is not None
        label = int(self._labels[index]) if self._labels is not None else None
        if label is not None and not 0 <= label < c_dim:
            label = None
        return fit_picture(self._images[index], self.resolution, self.channels), label

    def _limit(self, resolution: int, channels: int, max_images: int | None) -> int:
        by_bytes = max(1, MAX_REAL_BYTES // (resolution * resolution * channels))
        return min(max_images or MAX_REAL_IMAGES, MAX_REAL_IMAGES, by_bytes)

    def _load(self) -> None:
        assert self.source is not None
        try:
            if self.source.folder:
                limit = self._limit(self.resolution, self.channels, None)
                self._images = read_folder_prepared(Path(self.source.source), self.resolution, self.channels, limit)
            else:
                self._load_training_data(self.source)
        except Exception as e:  # data missing or unreadable: the game is off, the rest of the studio works
            hint = "" if self.source.folder else "; pass --real DIR (a folder of photos) instead"
            self.error = f"cannot load {self.source.describe()} ({type(e).__name__}: {e}){hint}"

    def _load_training_data(self, spec: RealSource) -> None:
        from ganforge.data import load_dataset

        limit = self._limit(spec.resolution or self.resolution, spec.channels or self.channels, spec.max_images)
        ds = load_dataset(spec.source, spec.resolution, spec.channels, spec.resize, spec.data_dir, on_error="skip",
                          max_images=limit)
        if not ds.is_image:
            raise ValueError("it holds points, not pictures")
        self._images = ds.data.permute(0, 2, 3, 1).numpy()  # [N, H, W, C] uint8
        self._labels = ds.labels.numpy() if ds.labels is not None and self.use_labels else None
