"""A command whose optional extra is missing says which ``pip install "ganforge[...]"`` brings it, in one line, with
no traceback. A missing module is simulated by ``sys.modules[name] = None`` (its import then fails)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from ganforge.cli import main as main_module

REPO_EXTRAS = ("onnx", "video", "data", "studio")


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["ganforge", *args])
    with pytest.raises(SystemExit) as e:
        main_module.main()
    captured = capsys.readouterr()
    return int(e.value.code), captured.err


def _hide(monkeypatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _assert_one_line(err: str, extra: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f'pip install "ganforge[{extra}]"' in lines[0], err


def test_every_distribution_of_an_extra_maps_to_that_extra():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    extras = meta["project"]["optional-dependencies"]
    for extra in REPO_EXTRAS:
        for requirement in extras[extra]:
            dist = re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0]
            module = {"python-multipart": "multipart"}.get(dist, dist.replace("-", "_"))
            assert main_module.EXTRA_OF_MODULE.get(module) == extra, (extra, requirement)


def test_a_module_of_no_extra_is_not_explained_away():
    assert main_module.missing_extra(ModuleNotFoundError("x", name="numpy")) is None
    line = main_module.missing_extra(ModuleNotFoundError("x", name="onnxruntime.capi"))
    assert line == 'onnxruntime is not installed; this command needs the "onnx" extra: pip install "ganforge[onnx]"'


def test_onnx_export_without_onnxruntime(monkeypatch, capsys, tmp_path):
    _hide(monkeypatch, "onnxruntime")
    code, err = _run(monkeypatch, capsys, "export", "digits", "--onnx", str(tmp_path / "G.onnx"))
    assert code == 2
    _assert_one_line(err, "onnx")
    assert "needs onnxruntime" in err and "--no-check" in err
    assert not (tmp_path / "G.onnx").exists()  # refused before anything is written


def test_onnx_export_without_onnx(monkeypatch, capsys, tmp_path):
    _hide(monkeypatch, "onnx", "onnxruntime")
    code, err = _run(monkeypatch, capsys, "export", "digits", "--onnx", str(tmp_path / "G.onnx"), "--no-check")
    assert code == 2
    _assert_one_line(err, "onnx")
    assert "needs onnx " in err and not (tmp_path / "G.onnx").exists()


def test_a_bare_missing_module_of_an_extra_is_explained(monkeypatch, capsys):
    def bare(*args, **kwargs):  # as if a command imported uvicorn at its top without a check of its own
        raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")

    monkeypatch.setattr(main_module.cli, "main", bare)
    code, err = _run(monkeypatch, capsys, "anything")
    assert code == 2
    _assert_one_line(err, "studio")
    assert err.startswith("error: uvicorn is not installed")


@pytest.mark.parametrize("missing,suffix", [(("imageio", "imageio.v2"), ".gif"), (("imageio_ffmpeg",), ".mp4")])
def test_video_without_imageio(monkeypatch, capsys, tmp_path, missing, suffix):
    _hide(monkeypatch, *missing)
    out = tmp_path / f"walk{suffix}"
    code, err = _run(monkeypatch, capsys, "interpolate", "digits", "--seeds", "0,1", "--frames", "2", "--scale", "1",
                     "--out", str(out))
    assert code == 2
    _assert_one_line(err, "video")
    assert not out.exists()


def test_hdf5_data_without_h5py(monkeypatch, capsys, tmp_path):
    _hide(monkeypatch, "h5py")
    (tmp_path / "fakes.h5").write_bytes(b"")
    code, err = _run(monkeypatch, capsys, "evaluate", "--fake", str(tmp_path / "fakes.h5"), "--real", "digits",
                     "--metrics", "fd-digits")
    assert code == 2
    _assert_one_line(err, "data")
