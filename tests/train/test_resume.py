"""Exact resume: N steps + save + resume N steps == 2N steps, bitwise, on CPU."""

from __future__ import annotations

import numpy as np
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
    """Every network file of a checkpoint: ``{"G": {...}, "D": {...}, "G_ema": {...}}``."""
    return {p.stem: load_file(str(p)) for p in sorted(ckpt.glob("*.safetensors"))}


def _assert_bitwise_resume(cfg_of) -> None:
    """``cfg_of(sub, **changes)``: the run's config writing under ``sub``. N + N resumed steps == 2N, bitwise."""
    full = Trainer.from_config(cfg_of("full"), progress=False).run()
    half = Trainer.from_config(cfg_of("half", kimg=0.064), progress=False).run()
    resumed = Trainer.from_config(cfg_of("half"), resume=half, progress=False).run()  # extended to the full length
    assert resumed == half
    a, b = list_checkpoints(full)[-1], list_checkpoints(resumed)[-1]
    assert a.name == b.name  # same nimg
    wa, wb = weights(a), weights(b)
    assert set(wa) == set(wb) and {"G", "D", "G_ema"} <= set(wa)
    for net in wa:
        for k in wa[net]:
            assert torch.equal(wa[net][k], wb[net][k]), f"{net}.{k} differs after resume"


@pytest.mark.parametrize("loss", ["non-saturating", "wgan-gp"])
def test_resume_is_bitwise_identical(tmp_path, loss):
    _assert_bitwise_resume(lambda sub, **kw: tiny(tmp_path / sub, loss=loss, **kw))


# Tiny configurations of the other families, each with what makes its state special: the MLP GAN with k = 2 D steps,
# ProGAN growing through fade-ins (schedule and per-level source state), StyleGAN2 with ADA and lazy regularisers
# (augment p, path-length mean), FastGAN with DiffAugment and its random reconstruction crops, UNIT with two
# independently sampled domains.
FAMILIES = {
    "gan": dict(model="gan", g_kwargs={"hidden": 16, "layers": 2}, d_kwargs={"hidden": 16, "layers": 2}, d_steps=2),
    "progan": dict(model="progan", resolution=16, resize="pad", g_kwargs={"fmap_base": 32, "fmap_max": 8},
                   d_kwargs={"fmap_base": 32, "fmap_max": 8}, lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99),
                   schedule_kwargs={"fade_kimg": 0.032, "stable_kimg": 0.016}),
    "stylegan": dict(model="stylegan", resolution=16, resize="pad",
                     g_kwargs={"w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 8},
                     d_kwargs={"channel_base": 64, "channel_max": 8}, lr_g=2e-3, lr_d=2e-3, betas=(0.0, 0.99),
                     loss_kwargs={"augment": "ada", "ada_interval": 1, "ada_kimg": 0.1, "r1_interval": 2,
                                  "pl_interval": 2}),
    "fastgan": dict(model="fastgan", resolution=32, resize="pad", g_kwargs={"width": 2, "max_width": 16},
                    d_kwargs={"width": 2, "max_width": 16, "decoder_width": 4}),
    "unit": dict(model="unit", resolution=16, g_kwargs={"width": 4, "n_res": 0, "n_shared": 1},
                 d_kwargs={"width": 4, "n_layers": 2, "num_scales": 1}, lr_g=1e-4, lr_d=1e-4),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_resume_is_bitwise_identical_for_every_family(tmp_path, family):
    extra = dict(FAMILIES[family])
    if family == "unit":  # domain B: a small synthetic set (A is the digits)
        b = np.random.default_rng(0).integers(0, 256, (48, 16, 16), dtype=np.uint8)
        np.savez(tmp_path / "b.npz", images=b)
        extra["domain_b"] = str(tmp_path / "b.npz")
    _assert_bitwise_resume(lambda sub, **kw: tiny(tmp_path / sub, **{**extra, "max_images": 64, **kw}))


def test_lazy_fastgan_reconstruction_resumes_bitwise(tmp_path):
    """The half run stops after 4 steps, in the middle of a 3-step reconstruction cycle: the loss's step count
    must come back with the checkpoint, or the resumed run reconstructs on other steps."""
    extra = {**FAMILIES["fastgan"], "loss_kwargs": {"recon_interval": 3}}
    _assert_bitwise_resume(lambda sub, **kw: tiny(tmp_path / sub, **{**extra, "max_images": 64, **kw}))


def test_lazy_r1_r2_resume_bitwise(tmp_path):
    """Stacked MNIST's loss with the penalties every 3 steps: the half run stops after 4 steps, mid-cycle."""
    lazy = {"loss": "relativistic", "loss_kwargs": {"r1_gamma": 0.1, "r2_gamma": 0.1, "reg_interval": 3}}
    _assert_bitwise_resume(lambda sub, **kw: tiny(tmp_path / sub, **{**lazy, "max_images": 64, **kw}))


def test_every_family_has_a_resume_test():
    from ganforge.train.recipes import recipe_names

    assert set(recipe_names()) <= set(FAMILIES) | {"dcgan"}


def test_resume_restores_counters_and_stats(tmp_path):
    run = Trainer.from_config(tiny(tmp_path, kimg=0.064), progress=False).run()
    t = Trainer.from_config(tiny(tmp_path), resume=run, progress=False)
    assert t.nimg == 64 and t.step == 4
    t.run()
    lines = (run / "stats.jsonl").read_text().splitlines()
    nimgs = [int(line.split('"nimg": ')[1].split(",")[0]) for line in lines]
    assert nimgs == sorted(nimgs) and len(nimgs) == len(set(nimgs))


def test_resume_refuses_other_family(tmp_path):
    run = Trainer.from_config(tiny(tmp_path, kimg=0.032), progress=False).run()
    with pytest.raises(ValueError, match="checkpoint is a 'dcgan' run"):
        Trainer.from_config(tiny(tmp_path, model="gan", g_kwargs={}, d_kwargs={}), resume=run, progress=False)


def test_d_steps_counts_images(tmp_path):
    t = Trainer.from_config(tiny(tmp_path, d_steps=2, kimg=0.064), progress=False)
    t.run()
    assert t.nimg == 64 and t.step == 2  # 2 D batches of 16 per step


def test_self_conditioned_run_resumes_bitwise(tmp_path):
    """The cluster labels are recomputed on resume (seeded, float64): they must come out the same."""
    _assert_bitwise_resume(lambda sub, **kw: tiny(tmp_path / sub, clusters=4, **kw))
