"""The HDF5 reader (usps.h5 layout) and its dispatch from ``load_dataset``."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

from ganforge.data import DataError, load_dataset
from ganforge.data.hdf5 import is_hdf5, read_hdf5, split_address
from tests.conftest import shared_path


def _write(path, splits: dict[str, tuple[np.ndarray, np.ndarray | None]], top: np.ndarray | None = None):
    with h5py.File(path, "w") as f:
        for name, (data, target) in splits.items():
            g = f.create_group(name)
            g["data"] = data
            if target is not None:
                g["target"] = target
        if top is not None:
            f["data"] = top
    return path


def test_split_addresses():
    assert split_address("d/usps.h5:train") == (split_address("d/usps.h5")[0], "train")
    assert split_address("x.HDF5:test")[1] == "test"
    assert split_address("plain.h5")[1] is None
    assert is_hdf5("a/b.h5:test") and is_hdf5("b.hdf5") and not is_hdf5("b.npz") and not is_hdf5("h5dir/x.png")
    with pytest.raises(DataError, match="empty split"):
        split_address("x.h5:")


def test_flat_float_rows_become_square_uint8_images_with_labels(tmp_path):
    data = np.zeros((3, 16), np.float32)
    data[0, 0], data[1, 5], data[2, 15] = 1.0, 0.5, 0.25
    path = _write(tmp_path / "s.h5", {"train": (data, np.array([0, 3, 1], np.int32)),
                                      "test": (np.ones((2, 16), np.float32), None)})
    images, labels = read_hdf5(f"{path}:train")
    assert images.shape == (3, 4, 4, 1) and images.dtype == np.uint8
    assert images[0, 0, 0, 0] == 255 and images[1, 1, 1, 0] == 128 and images[2, 3, 3, 0] == 64
    assert labels.tolist() == [0, 3, 1] and labels.dtype == np.int64
    ds = load_dataset(f"{path}:train", resolution=8)
    assert ds.data.shape == (3, 1, 8, 8) and ds.num_classes == 4 and ds.info["source"].endswith("s.h5:train")
    test, no_labels = read_hdf5(f"{path}:test")
    assert no_labels is None and (test == 255).all()


def test_top_level_data_and_uint8_images(tmp_path):
    path = _write(tmp_path / "t.hdf5", {}, top=np.full((2, 5, 5), 7, np.uint8))
    images, labels = read_hdf5(path)
    assert images.shape == (2, 5, 5, 1) and labels is None and (images == 7).all()


def test_bad_files_give_clear_errors(tmp_path):
    path = _write(tmp_path / "s.h5", {"train": (np.zeros((2, 16), np.float32), None)})
    with pytest.raises(DataError, match=r"no top-level 'data'; it holds splits \['train'\]"):
        load_dataset(str(path))
    with pytest.raises(DataError, match=r"no split 'valid'; expected one of \['train'\]"):
        read_hdf5(f"{path}:valid")
    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "missing.h5:train"))
    bad = _write(tmp_path / "b.h5", {"odd": (np.zeros((2, 15), np.float32), None),
                                     "range": (np.full((2, 4), 2.0, np.float32), None),
                                     "labels": (np.zeros((2, 4), np.float32), np.zeros(3, np.int64))})
    with pytest.raises(DataError, match="must be square images"):
        read_hdf5(f"{bad}:odd")
    with pytest.raises(DataError, match=r"must lie in \[0, 1\], found values in \[2, 2\]"):
        read_hdf5(f"{bad}:range")
    with pytest.raises(DataError, match=r"'target' must be \[N\] = \[2\]"):
        read_hdf5(f"{bad}:labels")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        read_hdf5(tmp_path / "junk.h5")


def test_real_usps_test_split():
    path = shared_path("usps", "usps.h5")
    ds = load_dataset(f"{path}:test")
    assert ds.data.shape == (2007, 1, 16, 16) and ds.num_classes == 10
    assert np.bincount(ds.labels.numpy()).sum() == 2007


def test_without_h5py_the_error_names_the_extra(tmp_path, monkeypatch):
    path = _write(tmp_path / "d.h5", {"train": (np.zeros((2, 4, 4), np.uint8), None)})
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(DataError, match=r'needs h5py, which is not installed: pip install "ganforge\[data\]"'):
        load_dataset(f"{path}:train")
