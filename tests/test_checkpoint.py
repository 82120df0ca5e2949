"""Checkpoints: safetensors + JSON, atomic writes, clear errors, and kill -9 during writing leaves a loadable one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

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


WRITER = r"""
import sys, torch
from pathlib import Path
from ganforge.checkpoint import save_checkpoint
from ganforge.models.dcgan import DCGANGenerator
root = Path(sys.argv[1])
G = DCGANGenerator(z_dim=64, resolution=64, channels=3, width=64)
i = 0
print("ready", flush=True)
while True:
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(float(i))
    save_checkpoint(root / "checkpoints" / f"ckpt-{i:012d}", {"G": G}, {"i": i}, {"i": i})
    save_checkpoint(root / "latest", {"G": G}, {"i": i}, {"i": i})
    i += 1
"""


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.7])
def test_kill_9_during_writes_leaves_loadable_checkpoints(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpts = list_checkpoints(tmp_path)
    assert ckpts, "the writer should have completed at least one checkpoint"
    for ck in ckpts:  # every checkpoint that is visible under its final name is whole
        i = read_config(ck)["i"]
        G = load_networks(ck)["G"]
        assert all(float(p.flatten()[0]) == float(i) for p in G.parameters())
        assert load_state(ck)["i"] == i
    latest = load_networks(tmp_path / "latest")["G"]  # the replaced-in-place folder is always whole too
    assert float(next(latest.parameters()).flatten()[0]) >= 0
