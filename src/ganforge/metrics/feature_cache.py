"""Features of real image sets kept on disk, keyed by what they were computed from.

The key is a sha256 over the exact uint8 pixels the extractor reads (so the files' contents after decoding, the
resolution, the resize policy and the channel policy, in order), the preprocessing recorded with the set
(``resolution``, ``channels``, ``resize``) and the extractor's identity (name, sha256 of its weights, its own resize
policy, feature dimension, compute path). Change any of them and the key changes; a folder evaluated twice costs
only the fakes the second time (``ganforge evaluate --real DIR``).

An entry is one ``<key>.safetensors`` file (pool features, class logits when the extractor has them, and the
provenance as metadata) written to a temporary name in the same folder and renamed, so a reader never sees half a
file. No pickle is involved. Features that float32 holds exactly (Inception's, computed in float32) are stored as
float32 and read back as the same float64 values. ``ganforge evaluate --clear-cache`` deletes the entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganforge.data.download import cache_dir
from ganforge.data.errors import DataError
from ganforge.metrics.features import FeatureExtractor, Features, quantize

FORMAT = "ganforge-features-1"
PREPROCESSING_KEYS = ("resolution", "channels", "resize")
CLEAR_COMMAND = "ganforge evaluate --clear-cache"


def default_folder() -> Path:
    """``$GANFORGE_CACHE/real-features`` (``~/.cache/ganforge/real-features`` by default)."""
    return cache_dir() / "real-features"


def extractor_identity(extractor: FeatureExtractor) -> dict[str, Any]:
    """What makes two extractors give the same features: ``describe()`` without the weights' location."""
    return {k: v for k, v in extractor.describe().items() if k != "weights_source"}


def content_key(batches, preprocessing: dict[str, Any], extractor: FeatureExtractor) -> tuple[str, int]:
    """``(sha256 hex, image count)`` of the uint8 images in ``batches`` (each ``[B, C, H, W]``), the preprocessing and
    the extractor's identity."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "preprocessing": preprocessing, "extractor": extractor_identity(extractor)},
                        sort_keys=True).encode())
    n = 0
    for batch in batches:
        x = quantize(batch).contiguous()  # [B, C, H, W] uint8, what the extractor is given
        shape = json.dumps(list(x.shape[1:])).encode()
        for image in x.numpy():  # per image, so the batch size does not change the key
            h.update(shape)
            h.update(image.tobytes())
        n += int(x.shape[0])
    return h.hexdigest(), n


def _compact(x: torch.Tensor) -> torch.Tensor:
    """float32 when that holds every value exactly, else the tensor as it is (float64)."""
    f = x.float()
    return f if torch.equal(f.double(), x.double()) else x


class FeatureCache:
    """A folder of cached feature sets (see the module docstring). ``folder`` defaults to :func:`default_folder`."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def load(self, key: str, count: int) -> Features | None:
        """The features stored under ``key`` (float64), or None when there are none. An entry that cannot be read or
        holds another number of images is an error naming the file."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise DataError(f"{path}: unreadable cached features ({e}); run `{CLEAR_COMMAND}`") from None
        pool, logits = tensors.get("pool"), tensors.get("logits")
        if pool is None or pool.ndim != 2 or pool.shape[0] != count:
            shape = None if pool is None else list(pool.shape)
            raise DataError(f"{path}: cached features hold pool {shape}, expected {count} rows; run "
                            f"`{CLEAR_COMMAND}`")
        return Features(pool.double(), None if logits is None else logits.double())

    def save(self, key: str, features: Features, provenance: dict[str, Any]) -> Path:
        """Write ``features`` under ``key`` atomically (temporary file in the same folder, then rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {"pool": _compact(features.pool).contiguous()}
        if features.logits is not None:
            tensors["logits"] = _compact(features.logits).contiguous()
        meta = {"format": FORMAT, "provenance": json.dumps(provenance, sort_keys=True, default=str)}
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, self.path(key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path(key)

    def clear(self) -> int:
        """Delete every cached entry (and leftover temporary files); returns how many entries were deleted."""
        if not self.folder.is_dir():
            return 0
        entries = list(self.folder.glob("*.safetensors"))
        for p in entries + list(self.folder.glob(".*.tmp")):
            p.unlink(missing_ok=True)
        return len(entries)
