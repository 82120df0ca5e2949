"""Real pictures for "Which one is real?": a folder of photos is prepared exactly as training prepares data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ganforge.data import load_dataset
from ganforge.data.errors import DataError
from ganforge.studio.reals import NO_DATA, RealPictures, folder_source, read_folder_prepared, training_source

from .conftest import make_photos


def as_training_prepares(folder, resolution: int, channels: int) -> np.ndarray:
    ds = load_dataset(str(folder), resolution, channels, "center-crop")
    return ds.data.permute(0, 2, 3, 1).numpy()  # [N, R, R, C]


@pytest.mark.parametrize("channels", [3, 1])
def test_folder_pictures_match_the_training_preparation(photos, channels):
    got = read_folder_prepared(photos, 16, channels, limit=100)
    assert got.shape == (5, 16, 16, channels) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, as_training_prepares(photos, 16, channels))


def test_a_large_folder_is_sampled_evenly(photos):
    full = as_training_prepares(photos, 8, 3)
    np.testing.assert_array_equal(read_folder_prepared(photos, 8, 3, limit=3), full[[0, 2, 4]])


def test_unreadable_files_are_skipped_with_a_warning(photos):
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable file"):
        got = read_folder_prepared(photos, 16, 3, limit=100)
    assert len(got) == 5


def test_a_folder_without_readable_pictures_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such|not a directory"):
        folder_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="no image files"):
        folder_source(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"garbage")
    reals = RealPictures(folder_source(tmp_path / "bad"), 16, 3, use_labels=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="none of its 1 picture file"):
            reals.count()
    assert reals.error is not None and "--real" in reals.error


def test_real_pictures_from_a_folder_load_once_at_the_generators_size(tmp_path):
    make_photos(tmp_path / "p")
    reals = RealPictures(folder_source(tmp_path / "p"), 16, 3, use_labels=True)
    assert reals.loaded is None and reals.error is None  # lazily
    assert reals.count() == 5
    first = reals.loaded
    assert reals.count() == 5 and reals.loaded is first
    pic, label = reals.picture(3, c_dim=10)
    assert pic.shape == (16, 16, 3) and label is None  # a plain folder has no classes
    with pytest.raises(IndexError):
        reals.picture(5, c_dim=0)


def test_without_a_source_the_reason_names_the_real_option():
    reals = RealPictures(None, 16, 3, use_labels=False)
    assert reals.error == NO_DATA and "--real DIR" in NO_DATA
    with pytest.raises(RuntimeError, match="--real DIR"):
        reals.count()
    assert training_source({"train": {}}) is None and training_source({}) is None
    spec = training_source({"train": {"data": "digits", "resolution": 16, "max_images": 400}})
    assert spec is not None and (spec.source, spec.resolution, spec.max_images, spec.folder) == ("digits", 16, 400,
                                                                                                 False)


def test_training_data_that_is_gone_suggests_the_real_option(tmp_path):
    spec = training_source({"train": {"data": str(tmp_path / "gone")}})
    reals = RealPictures(spec, 16, 3, use_labels=False)
    with pytest.raises(RuntimeError, match="gone"):
        reals.count()
    assert "pass --real DIR" in (reals.error or "")
