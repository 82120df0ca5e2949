"""Tiny runs and checkpoints of every kind the studio serves, made with ``save_checkpoint`` (seconds, no training)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import save_checkpoint
from ganforge.media import save_grid
from ganforge.studio.load import temp_database

TRAIN_DIGITS = {"data": "digits", "data_dir": None, "resolution": None, "channels": None, "resize": "center-crop",
                "max_images": 400}


def _config(family: str, train: dict, kind: str = "gan") -> dict:
    return {"kind": kind, "family": family, "train": train, "nimg": 8000, "step": 125}


def make_generator_run(root: Path, name: str, G: torch.nn.Module, family: str, train: dict | None = None,
                       frames: tuple[int, ...] = (0, 4, 8), metric: bool = True) -> Path:
    """A run folder like the training loop writes: config.json, checkpoints/ckpt-*, fakes*.png, metric-fid.jsonl."""
    run = root / name
    run.mkdir(parents=True)
    cfg = _config(family, train if train is not None else dict(TRAIN_DIGITS))
    (run / "config.json").write_text(json.dumps(cfg))
    save_checkpoint(run / "checkpoints" / "ckpt-000000008000", {"G": G}, cfg)
    z = torch.randn(9, G.z_dim, generator=torch.Generator().manual_seed(1))
    c = None
    if getattr(G, "c_dim", 0):
        c = torch.nn.functional.one_hot(torch.arange(9) % G.c_dim, G.c_dim).float()
    for kimg in frames:
        with torch.no_grad():
            imgs = G(z, c) * (0.2 + kimg / 10)
        save_grid(imgs.clamp(-1, 1), run / f"fakes{kimg:06d}.png", nrow=3)
    if metric:
        with open(run / "metric-fid.jsonl", "w") as f:
            for kimg, v in ((4, 80.5), (8, 42.25)):
                f.write(json.dumps({"nimg": kimg * 1000, "kimg": kimg, "fid_400": v}) + "\n")
    return run


@pytest.fixture(scope="session")
def studio_runs(tmp_path_factory) -> dict[str, Path]:
    """One run or checkpoint per kind: dcgan (digits data), conditional dcgan, stylegan, progan mid-growth, UNIT,
    detector."""
    from ganforge.detection.predict import save_detector
    from ganforge.models.dcgan import DCGANGenerator
    from ganforge.models.detector import Detector
    from ganforge.models.progan import ProGANGenerator
    from ganforge.models.stylegan import StyleGenerator
    from ganforge.models.unit import UnitGenerator

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("studio-runs")
    runs = {
        "dcgan": make_generator_run(root, "00000-dcgan-digits", DCGANGenerator(z_dim=16, resolution=28, channels=1,
                                                                              width=8), "dcgan"),
        "cond": make_generator_run(root, "00001-dcgan-cond", DCGANGenerator(z_dim=16, c_dim=10, resolution=28,
                                                                           channels=1, width=8), "dcgan",
                                   train={**TRAIN_DIGITS, "cond": True}, frames=(), metric=False),
        "style": make_generator_run(root, "00002-stylegan-digits", StyleGenerator(
            z_dim=8, resolution=16, channels=1, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8),
            "stylegan", train={**TRAIN_DIGITS, "resolution": 16}, frames=(0,), metric=False),
    }
    pg = ProGANGenerator(z_dim=8, resolution=16, channels=1, fmap_base=32, fmap_max=8)
    pg.set_stage(1, 0.5)  # 8x8 of a 16x16 model
    runs["progan"] = make_generator_run(root, "00003-progan-digits", pg, "progan",
                                        train={**TRAIN_DIGITS, "resolution": 16}, frames=(), metric=False)
    unit = UnitGenerator(channels_a=1, channels_b=3, resolution=16, width=4, n_downsample=2, n_res=1)
    unit_cfg = _config("unit", {**TRAIN_DIGITS, "resolution": 16, "domain_b": "colour-digits"})
    runs["unit"] = save_checkpoint(root / "unit-ckpt", {"G": unit}, unit_cfg)
    det = Detector(channels=1, crop=16, width=4, depth=2, spectrum_size=8, hidden=8)
    det.set_temperature(1.5)
    runs["detector"] = save_detector(root / "det", det, {"train": {}, "data": {}, "report": {}})
    return runs


PHOTO_SIZES = ((40, 30), (30, 52), (64, 64), (23, 17), (100, 61))  # (width, height): landscape, portrait, square


def make_photos(folder: Path, sizes: tuple[tuple[int, int], ...] = PHOTO_SIZES, seed: int = 0) -> list[Path]:
    """A folder of colour JPEGs of assorted shapes (smooth gradients plus noise, like small photos), two levels deep."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i, (w, h) in enumerate(sizes):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), np.full((h, w), 40.0 * i)], axis=-1)
        arr = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / ("sub" if i % 2 else "") / f"photo{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return sorted(paths)


@pytest.fixture
def photos(tmp_path) -> Path:
    """``tmp_path/photos``: five colour JPEGs of assorted sizes."""
    make_photos(tmp_path / "photos")
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory) -> Path:
    """A 16 px colour DCGAN run whose config names no training data (so only ``--real DIR`` gives it real pictures)."""
    from ganforge.models.dcgan import DCGANGenerator

    torch.manual_seed(1)
    G = DCGANGenerator(z_dim=16, resolution=16, channels=3, width=8)
    return make_generator_run(tmp_path_factory.mktemp("colour"), "00010-dcgan-photos", G, "dcgan", train={},
                              frames=(), metric=False)


PG_ENV = "GANFORGE_TEST_PG_URL"  # a PostgreSQL server URL that may create databases; .ci/run starts one on loopback


@pytest.fixture
def pg_url():
    """A fresh, empty database on the PostgreSQL server named by ``GANFORGE_TEST_PG_URL``, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against (.ci/run starts one on loopback)")
    with temp_database(base, "ganforge_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def vote_url(request, tmp_path) -> str:
    """A database URL for the vote store: an SQLite file in tmp_path, and the PostgreSQL server when there is one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'votes.sqlite'}"
    return request.getfixturevalue("pg_url")
