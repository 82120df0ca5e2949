"""Downloads are checksummed and cached; offline, the error says how to provide the files."""

from __future__ import annotations

import hashlib

import pytest

from ganforge.data import DataError, load_dataset
from ganforge.data.download import RemoteFile, locate


def test_offline_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    remote = RemoteFile("x.bin", "sha256:" + "0" * 64, ("http://127.0.0.1:9/x.bin",))
    with pytest.raises(DataError, match=r"(?s)could not download x\.bin.*--data-dir FOLDER.*GANFORGE_DATA"):
        locate(remote, [], "sub")
    assert not list((tmp_path / "cache").rglob("*.part"))  # nothing half-written is left


def test_local_file_found_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "x.bin").write_bytes(b"hello")
    good = RemoteFile("x.bin", "sha256:" + hashlib.sha256(b"hello").hexdigest(), ())
    assert locate(good, [tmp_path], "sub") == tmp_path / "x.bin"
    bad = RemoteFile("x.bin", "sha256:" + "1" * 64, ())
    with pytest.raises(DataError, match="checksum mismatch"):
        locate(bad, [tmp_path], "sub")


def test_download_from_file_url_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "srv" / "y.bin"
    src.parent.mkdir()
    src.write_bytes(b"payload")
    remote = RemoteFile("y.bin", "md5:" + hashlib.md5(b"payload").hexdigest(), (src.as_uri(),))
    path = locate(remote, [], "sub")
    assert path == tmp_path / "cache" / "sub" / "y.bin" and path.read_bytes() == b"payload"
    wrong = RemoteFile("z.bin", "sha256:" + "2" * 64, (src.as_uri(),))
    with pytest.raises(DataError, match="does not match checksum"):
        locate(wrong, [], "sub")
    assert not (tmp_path / "cache" / "sub" / "z.bin").exists()


def test_mnist_offline_from_data_dir(shared_data, tmp_path, monkeypatch):
    """`--data-dir` with the official files works offline (test split from ../shared/data)."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    folder = shared_data("mnist")
    ds = load_dataset("mnist-test", data_dir=folder)
    assert ds.data.shape == (10000, 1, 28, 28)


def test_mnist_offline_without_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    import ganforge.data.builtin as b

    offline = {
        k: type(v)(v.filename, v.checksum, ("http://127.0.0.1:9/" + v.filename,)) for k, v in b.MNIST_FILES.items()
    }
    with pytest.raises(DataError, match=r"(?s)train-images-idx3-ubyte.gz.*--data-dir"):
        b._idx_loader(offline, "mnist", "train")(None)
