"""The packaged ``faces`` generator (src/ganforge/pretrained/faces): offline right after install, deterministic per
seed, usable by sample and interpolate (the studio's face game: tests/studio/test_faces_game.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ganforge.checkpoint import PACKAGED, resolve_checkpoint
from tests.cli.test_cli import run

pytestmark = pytest.mark.usefixtures("one_thread")


def test_faces_is_packaged_and_small():
    folder = resolve_checkpoint("faces")
    assert PACKAGED["faces"] == "pretrained/faces"
    config = json.loads((folder / "config.json").read_text())
    assert config["train"]["resolution"] == 64 and config["train"]["channels"] == 3
    total = sum(f.stat().st_size for f in folder.iterdir())
    assert total <= 25 * 2**20, f"packaged faces generator is {total / 2**20:.1f} MB (limit 25 MB)"
    assert "non-commercial" in (folder / "README.md").read_text()


def test_sample_faces_is_deterministic(tmp_path):
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        res = run("sample", "faces", "--n", "4", "--seed", str(seed), "--out", str(tmp_path / f"{name}.png"))
        assert res.exit_code == 0, res.output
        outs.append(np.asarray(Image.open(tmp_path / f"{name}.png")))
    assert outs[0].shape[2] == 3 and outs[0].shape[0] >= 64
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    assert outs[0].std() > 10  # pictures, not a flat colour


def test_interpolate_faces(tmp_path):
    import imageio.v2 as iio

    out = tmp_path / "walk.gif"
    res = run("interpolate", "faces", "--seeds", "0,1", "--frames", "2", "--scale", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    frames = np.stack(iio.mimread(out))
    assert frames.shape[:3] == (3, 64, 64)
