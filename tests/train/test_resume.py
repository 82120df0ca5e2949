"""Exact resume: N steps + save + resume N steps == 2N steps, bitwise, on CPU."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from ganforge.checkpoint import list_checkpoints
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(
        model="dcgan",
        data="digits",
        max_images=256,
        z_dim=8,
        g_kwargs={"width": 8},
        d_kwargs={"width": 8},
        batch=16,
        kimg=0.128,
        grid_kimg=0.064,
        snapshot_kimg=0.064,
        grid_size=4,
        log_every=2,
        outdir=str(tmp_path),
        ema_kimg=0.05,
        xflip=True,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def weights(ckpt):
    return {n: load_file(str(ckpt / f"{n}.safetensors")) for n in ("G", "D", "G_ema")}


@pytest.mark.parametrize("loss", ["non-saturating", "wgan-gp"])
def test_resume_is_bitwise_identical(tmp_path, loss):
    full = Trainer(tiny(tmp_path / "full", loss=loss), progress=False).run()
    half = Trainer(tiny(tmp_path / "half", loss=loss, kimg=0.064), progress=False).run()
    cfg = tiny(tmp_path / "half", loss=loss)  # same run, extended to the full length
    resumed = Trainer(cfg, resume=half, progress=False).run()
    assert resumed == half
    a, b = list_checkpoints(full)[-1], list_checkpoints(resumed)[-1]
    assert a.name == b.name  # same nimg
    wa, wb = weights(a), weights(b)
    for net in wa:
        for k in wa[net]:
            assert torch.equal(wa[net][k], wb[net][k]), f"{net}.{k} differs after resume"


def test_resume_restores_counters_and_stats(tmp_path):
    run = Trainer(tiny(tmp_path, kimg=0.064), progress=False).run()
    t = Trainer(tiny(tmp_path), resume=run, progress=False)
    assert t.nimg == 64 and t.step == 4
    t.run()
    lines = (run / "stats.jsonl").read_text().splitlines()
    nimgs = [int(line.split('"nimg": ')[1].split(",")[0]) for line in lines]
    assert nimgs == sorted(nimgs) and len(nimgs) == len(set(nimgs))


def test_resume_refuses_other_family(tmp_path):
    run = Trainer(tiny(tmp_path, kimg=0.032), progress=False).run()
    with pytest.raises(ValueError, match="checkpoint is a 'dcgan' run"):
        Trainer(tiny(tmp_path, model="gan", g_kwargs={}, d_kwargs={}), resume=run, progress=False)


def test_d_steps_counts_images(tmp_path):
    t = Trainer(tiny(tmp_path, d_steps=2, kimg=0.064), progress=False)
    t.run()
    assert t.nimg == 64 and t.step == 2  # 2 D batches of 16 per step
