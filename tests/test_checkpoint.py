"""Checkpoints: safetensors + JSON, atomic writes, clear errors, and kill -9 during writing leaves a loadable one."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganforge.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_networks,
    load_state,
    read_config,
    resolve_checkpoint,
    save_checkpoint,
)
from ganforge.models.dcgan import DCGANGenerator


def test_round_trip_and_state(tmp_path):
    G = DCGANGenerator(z_dim=4, resolution=8, channels=1, width=4)
    state = {"step": 3, "opt": {"exp_avg": torch.ones(2)}}
    save_checkpoint(tmp_path / "c", {"G": G}, {"family": "dcgan"}, state)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["G.safetensors", "config.json", "state.pt"]
    meta = read_config(tmp_path / "c")
    assert meta["networks"]["G"] == {"class": "dcgan-g", "config": G.config}
    assert load_state(tmp_path / "c")["step"] == 3
    G2 = load_networks(tmp_path / "c")["G"]
    z = torch.randn(2, 4)
    assert torch.equal(G.eval()(z), G2(z))


def test_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        resolve_checkpoint(tmp_path / "missing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        read_config(tmp_path / "x")
    (tmp_path / "x" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        read_config(tmp_path / "x")
    G = DCGANGenerator(z_dim=4, resolution=8, channels=1, width=4)
    save_checkpoint(tmp_path / "y", {"G": G}, {})
    (tmp_path / "y" / "G.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing weights file"):
        load_networks(tmp_path / "y")
    with pytest.raises(CheckpointError, match="holds no training state"):
        load_state(tmp_path / "y")


def test_state_is_loaded_without_unpickling_code(tmp_path):
    """state.pt goes through torch.load(weights_only=True): an object that is not plain data is refused."""
    G = DCGANGenerator(z_dim=4, resolution=8, channels=1, width=4)
    save_checkpoint(tmp_path / "c", {"G": G}, {}, {"step": 1})
    torch.save({"evil": DCGANGenerator}, tmp_path / "c" / "state.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_state(tmp_path / "c")


# A child process saves checkpoint 1 whole, then saves checkpoint 2 with one step of save_checkpoint replaced by a
# wrapper that does the step's work (or half of it), prints "inside <window> <path>" and waits. The parent kills it
# with SIGKILL on that line, so every kill lands in the named window, and checks on disk that it did.
WRITER = r"""
import os, pathlib, shutil, sys, time
import torch
import ganforge.checkpoint as ck
from ganforge.models.dcgan import DCGANGenerator

root, mode, window = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
G = DCGANGenerator(z_dim=4, resolution=8, channels=1, width=4)


def save(i):
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(float(i))
    target = root / "latest" if mode == "replace" else root / "checkpoints" / f"ckpt-{i:012d}"
    ck.save_checkpoint(target, {"G": G}, {"i": i}, {"i": i})


def inside(path):
    print("inside", window, path, flush=True)
    while True:
        time.sleep(60)


real_save_file, real_torch_save, real_write_text = ck.save_file, torch.save, pathlib.Path.write_text
real_rename, real_rmtree = os.rename, shutil.rmtree


def torn_weights(tensors, filename, *a, **k):
    real_save_file(tensors, filename, *a, **k)
    with open(filename, "r+b") as f:
        f.truncate(os.path.getsize(filename) // 2)
    inside(filename)


def torn_state(obj, f, *a, **k):
    real_torch_save(obj, f, *a, **k)
    with open(f, "r+b") as fh:
        fh.truncate(os.path.getsize(f) // 2)
    inside(f)


def torn_config(self, text, *a, **k):
    if self.name == "config.json":
        real_write_text(self, text[: len(text) // 2])
        inside(self)
    return real_write_text(self, text, *a, **k)


def before_rename(src, dst):
    if ".tmp-" in pathlib.Path(src).name:
        inside(src)
    return real_rename(src, dst)


def before_cleanup(path, *a, **k):
    if ".old-" in pathlib.Path(path).name:
        inside(path)
    return real_rmtree(path, *a, **k)


save(1)
if window == "weights":
    ck.save_file = torn_weights
elif window == "state":
    torch.save = torn_state
elif window == "config":
    pathlib.Path.write_text = torn_config
elif window == "rename":
    os.rename = before_rename
elif window == "cleanup":
    shutil.rmtree = before_cleanup
save(2)
print("finished without entering", window, flush=True)
"""


def _kill_inside(root: Path, mode: str, window: str) -> tuple[Path, int]:
    """Run WRITER, SIGKILL it on its "inside" line; return the path it named and its pid."""
    err = root.parent / f"writer-{mode}-{window}.err"
    with open(err, "w") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), mode, window], stdout=subprocess.PIPE, stderr=errf, text=True
        )
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 180)
            line = proc.stdout.readline() if ready else "(no line within 180 s)"
            if line.startswith("inside "):
                os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert line.startswith(f"inside {window} "), f"writer never entered the window: {line!r}\n{err.read_text()}"
    assert proc.returncode == -signal.SIGKILL
    return Path(line.split(" ", 2)[2].strip()), proc.pid


def _assert_whole(ckpt: Path, i: int) -> None:
    """config, weights and state of ``ckpt`` all belong to save number ``i``."""
    assert read_config(ckpt)["i"] == i
    G = load_networks(ckpt)["G"]
    assert all(bool((p == float(i)).all()) for p in G.parameters())
    assert load_state(ckpt)["i"] == i


def _assert_torn(named: Path, window: str) -> None:
    """The file the writer was cut in really is unusable, so taking it as valid would fail loudly."""
    if window == "weights":
        with pytest.raises(Exception):  # noqa: B017 - safetensors raises its own error types
            load_file(str(named))
    elif window == "state":
        with pytest.raises(Exception):  # noqa: B017 - a cut zip archive: torch raises RuntimeError or EOFError
            torch.load(named, weights_only=True)
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(named.read_text())


@pytest.mark.parametrize("window", ["weights", "state", "config", "rename", "cleanup"])
def test_kill_9_while_replacing_in_place_keeps_a_whole_checkpoint(tmp_path, window):
    """``latest`` is replaced in place: a kill in each window leaves the old whole one or the new whole one."""
    root = tmp_path / "run"
    latest = root / "latest"
    named, pid = _kill_inside(root, "replace", window)
    tmp, old = root / f".latest.tmp-{pid}", root / f".latest.old-{pid}"
    if window in ("weights", "state", "config"):  # cut while writing the new folder: the previous one is untouched
        assert named.parent == tmp and latest.is_dir() and not old.exists()
        _assert_torn(named, window)
        expected = 1
    elif window == "rename":  # between the two renames: the previous one is moved aside, nothing at "latest"
        assert named == tmp and not latest.exists() and old.is_dir()
        expected = 1
    else:  # the new one is in place, the previous one not yet deleted
        assert named == old and latest.is_dir() and not tmp.exists()
        expected = 2
    resolved = resolve_checkpoint(latest)
    assert resolved == latest
    _assert_whole(resolved, expected)
    save_checkpoint(latest, {"G": DCGANGenerator(z_dim=4, resolution=8, channels=1, width=4)}, {"i": 3}, {"i": 3})
    assert read_config(latest)["i"] == 3  # a resumed run can write over what the kill left


@pytest.mark.parametrize("window", ["weights", "state", "config", "rename"])
def test_kill_9_while_adding_a_checkpoint_lists_only_whole_ones(tmp_path, window):
    """A new ``ckpt-*`` folder is invisible until whole: the run resolves to the previous checkpoint."""
    root = tmp_path / "run"
    named, pid = _kill_inside(root, "run", window)
    tmp = root / "checkpoints" / f".ckpt-{2:012d}.tmp-{pid}"
    assert (named.parent if window != "rename" else named) == tmp
    if window != "rename":
        _assert_torn(named, window)
    else:
        _assert_whole(tmp, 2)  # complete but not renamed: still not a checkpoint of the run
    first = root / "checkpoints" / f"ckpt-{1:012d}"
    assert list_checkpoints(root) == [first]
    assert resolve_checkpoint(root) == first
    _assert_whole(first, 1)
