"""Every data format loads, and every bad input yields the documented error naming the file."""

from __future__ import annotations

import gzip
import json
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganforge.data import DataError, load_dataset


def _img(path, size=(10, 12), mode="RGB", color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode != "L" else 128).save(path)
    return path


def test_folder_recursive_any_format_with_policy(tmp_path):
    _img(tmp_path / "a.png", (20, 10))
    _img(tmp_path / "sub" / "b.jpg", (10, 20))
    _img(tmp_path / "sub" / "deeper" / "c.bmp", (16, 16))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = load_dataset(tmp_path, resolution=8, resize="center-crop")
    assert ds.data.shape == (3, 3, 8, 8) and ds.labels is None
    assert ds.info["resize"] == "center-crop" and ds.info["images"] == 3


@pytest.mark.parametrize("policy", ["center-crop", "pad", "stretch"])
def test_non_square_policies(tmp_path, policy):
    Image.fromarray(np.full((10, 40, 3), 255, np.uint8)).save(tmp_path / "wide.png")
    ds = load_dataset(tmp_path, resolution=8, resize=policy)
    x = ds.data[0, 0].numpy()
    if policy == "pad":  # black bars above and below, content in the middle rows
        assert x[0].max() == 0 and x[-1].max() == 0 and x[4].min() > 200
    else:
        assert x.min() > 200


def test_resize_none_refuses_wrong_size(tmp_path):
    _img(tmp_path / "a.png", (10, 12))
    with pytest.raises(DataError, match=r"a\.png.*10x12"):
        load_dataset(tmp_path, resolution=8, resize="none")


def test_channels_explicit(tmp_path):
    _img(tmp_path / "rgb.png", (8, 8), "RGB", (255, 0, 0))
    _img(tmp_path / "gray.png", (8, 8), "L")
    with pytest.raises(DataError, match="mixed channel counts.*--channels"):
        load_dataset(tmp_path)
    gray = load_dataset(tmp_path, channels=1)
    assert gray.channels == 1
    assert int(gray.data[1, 0, 0, 0]) == round(0.299 * 255)  # luminance of pure red (files sorted: gray, rgb)
    rgb = load_dataset(tmp_path, channels=3)
    assert rgb.channels == 3 and int(rgb.data[0, 1, 0, 0]) == 128


def test_rgba_composited_on_black(tmp_path):
    Image.new("RGBA", (4, 4), (200, 100, 50, 0)).save(tmp_path / "clear.png")
    ds = load_dataset(tmp_path, channels=3)
    assert int(ds.data.max()) == 0


def test_folder_labels_from_dataset_json(tmp_path):
    _img(tmp_path / "x" / "a.png", (4, 4))
    _img(tmp_path / "b.png", (4, 4))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["x/a.png", 1], ["b.png", 0]]}))
    ds = load_dataset(tmp_path)
    assert ds.labels.tolist() == [0, 1] and ds.num_classes == 2  # sorted: b.png, x/a.png


def test_dataset_json_labelling_an_absent_file_names_it(tmp_path):
    _img(tmp_path / "a.png", (4, 4))
    _img(tmp_path / "b.png", (4, 4))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["a.png", 1], ["b.png", 0], ["sub/gone.png", 2]]}))
    with pytest.raises(DataError, match=r"dataset\.json: labels 'sub/gone\.png', which is not an image file"):
        load_dataset(tmp_path)
    z = tmp_path / "ds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(tmp_path / "a.png", "00000/a.png")
        zf.writestr("dataset.json", json.dumps({"labels": [["00000/a.png", 0], ["00000/b.png", 1]]}))
    with pytest.raises(DataError, match=r"ds\.zip:dataset\.json: labels '00000/b\.png'"):
        load_dataset(z)


def test_dataset_json_label_of_a_skipped_unreadable_file_is_no_error(tmp_path):
    _img(tmp_path / "a.png", (4, 4))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["a.png", 1], ["bad.png", 0]]}))
    with pytest.warns(UserWarning, match=r"skipping .*bad\.png"):
        ds = load_dataset(tmp_path, on_error="skip")
    assert ds.labels.tolist() == [1]


def test_zip_dataset_tool_layout(tmp_path):
    z = tmp_path / "ds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(3):
            p = tmp_path / f"img{i}.png"
            Image.fromarray(np.full((8, 8, 3), i * 50, np.uint8)).save(p)
            zf.write(p, f"00000/img{i:08d}.png")
        zf.writestr("dataset.json", json.dumps({"labels": [[f"00000/img{i:08d}.png", i % 2] for i in range(3)]}))
    ds = load_dataset(z)
    assert ds.data.shape == (3, 3, 8, 8) and ds.labels.tolist() == [0, 1, 0]
    assert int(ds.data[2].float().mean()) == 100


def _write_idx(path, arr, magic_type=0x08, gz=False):
    header = struct.pack(">BBBB", 0, 0, magic_type, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_raw_and_gz_with_labels(tmp_path, gz):
    suffix = ".gz" if gz else ""
    imgs = np.random.default_rng(0).integers(0, 255, (5, 6, 6))
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", imgs, gz=gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.array([0, 1, 2, 1, 0]), gz=gz)
    ds = load_dataset(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert ds.data.shape == (5, 1, 6, 6) and ds.labels.tolist() == [0, 1, 2, 1, 0]
    assert np.array_equal(ds.data[:, 0].numpy(), imgs.astype(np.uint8))


def test_idx_wrong_magic(tmp_path):
    p = tmp_path / "bad-images-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 20)
    with pytest.raises(DataError, match=r"bad-images-idx3-ubyte: wrong IDX magic number .*2051"):
        load_dataset(p)


def test_idx_truncated(tmp_path):
    p = tmp_path / "t-images-idx3-ubyte"
    _write_idx(p, np.zeros((4, 5, 5)))
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(DataError, match="IDX header says shape"):
        load_dataset(p)


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "hwc.npz", images=rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), labels=[0, 1, 0, 1])
    np.savez(tmp_path / "chw.npz", x=rng.integers(0, 255, (4, 3, 8, 8), dtype=np.uint8))
    a, b = load_dataset(tmp_path / "hwc.npz"), load_dataset(tmp_path / "chw.npz")
    assert a.data.shape == b.data.shape == (4, 3, 8, 8) and a.labels.tolist() == [0, 1, 0, 1]
    np.savez(tmp_path / "float.npz", images=rng.random((2, 8, 8)))
    with pytest.raises(DataError, match="float.npz.*ambiguous"):
        load_dataset(tmp_path / "float.npz")


def test_truncated_image_named(tmp_path):
    _img(tmp_path / "good.png", (8, 8))
    good = (tmp_path / "good.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"broken\.png: not a readable image"):
        load_dataset(tmp_path)


def test_unreadable_image_skipped_when_asked(tmp_path):
    _img(tmp_path / "good.png", (8, 8))
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a jpeg")
    with pytest.warns(UserWarning, match=r"skipping .*garbage\.jpg"):
        ds = load_dataset(tmp_path, on_error="skip")
    assert len(ds) == 1


def test_zero_size_image(tmp_path):
    # A PNG whose header declares 0 x 0 pixels.
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")
    (tmp_path / "empty.png").write_bytes(png)
    with pytest.raises(DataError, match=r"empty\.png"):
        load_dataset(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no image files found"):
        load_dataset(tmp_path)


def test_unknown_source():
    with pytest.raises(DataError, match="neither a built-in dataset"):
        load_dataset("no-such-dataset-or-path")


def test_builtin_digits_offline():
    ds = load_dataset("digits")
    assert ds.data.shape == (5000, 1, 28, 28) and ds.num_classes == 10
    assert ds.class_counts().tolist() == [500] * 10
    assert 20 < float(ds.data.float().mean()) < 50  # white digits on black, MNIST-like mean intensity


def test_real_mnist_test_split(shared_data):
    path = shared_data("mnist", "t10k-images-idx3-ubyte.gz")
    ds = load_dataset(path)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert ds.class_counts().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_celeba_faces_resized(shared_data):
    folder = shared_data("celeba_subset", "celebA")
    ds = load_dataset(folder, resolution=32, max_images=None)
    assert ds.data.shape == (5000, 3, 32, 32)
