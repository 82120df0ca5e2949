"""The two-domain source: independent reproducible sampling of A and B, resume state, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import DataError, GanDataset
from ganforge.train.recipes.unit import TwoDomainSource, load_domain_b
from tests.train.recipes.helpers import dry_run


def _ds(name: str, n: int, channels: int = 1, res: int = 8) -> GanDataset:
    # Image i is filled with the value i, so a batch reveals which indices were drawn.
    data = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, channels, res, res).contiguous()
    return GanDataset(name=name, data=data)


def _tiny_unit(a: Path, b: Path) -> dict:
    """TrainConfig options of a UNIT run on two ``.npz`` files with the smallest networks (fast to build)."""
    return dict(model="unit", data=str(a), domain_b=str(b), batch=2, g_kwargs={"width": 4, "n_res": 0},
                d_kwargs={"width": 4, "n_layers": 2, "num_scales": 1}, device="cpu", ema_kimg=0.0)


def _indices(batch: torch.Tensor) -> list[int]:
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().int().tolist()


def test_batches_follow_two_independent_reproducible_permutations():
    a, b = _ds("a", 10), _ds("b", 7, channels=3)
    src = TwoDomainSource(a, b, batch_size=5, seed=3)
    first = [src.next() for _ in range(4)]
    batch = first[0]
    assert batch.real.shape == (5, 1, 8, 8) and batch.extra["real_b"].shape == (5, 3, 8, 8)
    assert batch.real_c is None and batch.gen_c is None and batch.z.shape == (5, 1)
    seq_a = sum((_indices(x.real) for x in first), [])
    seq_b = sum((_indices(x.extra["real_b"]) for x in first), [])
    assert sorted(seq_a[:10]) == list(range(10)) and sorted(seq_b[:7]) == list(range(7))  # every image once per epoch
    assert seq_a[:7] != seq_b[:7]  # not the same order in both domains
    again = TwoDomainSource(a, b, batch_size=5, seed=3)
    assert [_indices(again.next().real) for _ in range(4)] == [_indices(x.real) for x in first]
    other = TwoDomainSource(a, b, batch_size=5, seed=4)
    assert [_indices(other.next().real) for _ in range(2)] != [_indices(x.real) for x in first[:2]]


def test_state_dict_resumes_both_domains_and_flips_exactly():
    a, b = _ds("a", 9), _ds("b", 6)
    src = TwoDomainSource(a, b, batch_size=4, seed=0, xflip=True)
    for _ in range(3):
        src.next()
    state = src.state_dict()
    expected = [src.next() for _ in range(3)]
    resumed = TwoDomainSource(a, b, batch_size=4, seed=0, xflip=True)
    resumed.load_state_dict(state)
    for e in expected:
        r = resumed.next()
        assert torch.equal(e.real, r.real) and torch.equal(e.extra["real_b"], r.extra["real_b"])
    with pytest.raises(ValueError, match="lacks"):
        resumed.load_state_dict({"sampler": {}})


def test_ranks_get_disjoint_slices_of_the_global_batches():
    a, b = _ds("a", 12), _ds("b", 12)
    whole = TwoDomainSource(a, b, batch_size=4, seed=1).next()
    parts = [TwoDomainSource(a, b, batch_size=4, seed=1, rank=r, world_size=2).next() for r in range(2)]
    assert torch.equal(torch.cat([p.real for p in parts]), whole.real)
    assert torch.equal(torch.cat([p.extra["real_b"] for p in parts]), whole.extra["real_b"])


def test_validation_and_preview_batches():
    a = _ds("a", 5)
    with pytest.raises(DataError, match="8px and domain B"):
        TwoDomainSource(a, _ds("b", 5, res=4), batch_size=2, seed=0)
    points = GanDataset(name="pts", data=torch.zeros(5, 2, 1, 1))
    with pytest.raises(DataError, match="holds points"):
        TwoDomainSource(a, points, batch_size=2, seed=0)
    src = TwoDomainSource(a, _ds("b", 3), batch_size=2, seed=0)
    pa, pb = src.preview_batches(4)
    assert pa.shape == pb.shape == (3, 1, 8, 8)  # limited by the smaller domain
    assert torch.equal(src.preview_batches(4)[0], pa)


def test_domain_b_is_required_and_loaded_with_the_same_policies(tmp_path):
    from ganforge.train.config import TrainConfig

    with pytest.raises(ValueError, match="--domain-b"):
        load_domain_b(TrainConfig(model="unit"))
    np.savez(tmp_path / "b.npz", images=np.zeros((3, 10, 10), np.uint8))
    ds = load_domain_b(TrainConfig(model="unit", domain_b=str(tmp_path / "b.npz"), resolution=8, channels=3))
    assert ds.data.shape == (3, 3, 8, 8)


def test_building_a_unit_run_loads_domain_b_once_and_sizes_the_networks_from_it(tmp_path, monkeypatch):
    from ganforge.train import build as build_module
    from ganforge.train.config import TrainConfig
    from ganforge.train.recipes import unit as recipe

    np.savez(tmp_path / "b.npz", images=np.zeros((6, 16, 16, 3), np.uint8))
    np.savez(tmp_path / "a.npz", images=np.zeros((5, 16, 16), np.uint8))
    loads = []
    real_load = recipe.load_dataset

    def counting_load(name, *args):
        loads.append(name)
        return real_load(name, *args)

    monkeypatch.setattr(recipe, "load_dataset", counting_load)
    cfg = TrainConfig(**_tiny_unit(tmp_path / "a.npz", tmp_path / "b.npz"))
    parts = build_module.build(cfg)
    assert loads == [str(tmp_path / "b.npz")]  # once, by the source; the networks take it from there
    assert parts.nets["G"].channels == {"a": 1, "b": 3} and parts.source.dataset_b is not None
    assert len(parts.source.dataset_b) == 6


def test_small_images_get_the_measured_small_networks_unless_the_user_sizes_them(tmp_path):
    from ganforge.train import build as build_module
    from ganforge.train.config import TrainConfig
    from ganforge.train.recipes.unit import SMALL_IMAGE, small_image_kwargs

    assert small_image_kwargs(SMALL_IMAGE + 4) == ({}, {})  # larger images keep the authors' sizes
    # D depth: as many stride-2 layers (<= 4) as leave the last instance-normalised map >= 2 px
    assert [small_image_kwargs(r)[1]["n_layers"] for r in (8, 16, 28, 32)] == [2, 3, 3, 4]
    np.savez(tmp_path / "a.npz", images=np.zeros((4, 28, 28), np.uint8))
    np.savez(tmp_path / "b.npz", images=np.zeros((4, 28, 28), np.uint8))
    common = {"model": "unit", "data": str(tmp_path / "a.npz"), "domain_b": str(tmp_path / "b.npz"), "batch": 2,
              "device": "cpu", "ema_kimg": 0.0}
    nets = build_module.build(TrainConfig(**common)).nets
    assert nets["G"].config["width"] == 16 and nets["G"].config["init"] == "kaiming"
    assert {k: nets["D"].config[k] for k in ("width", "n_layers", "num_scales", "norm")} == {
        "width": 64, "n_layers": 3, "num_scales": 1, "norm": "instance"}
    given = build_module.build(TrainConfig(**common, g_kwargs={"width": 8, "init": "gaussian"},
                                           d_kwargs={"num_scales": 2, "norm": "none"}))
    assert given.nets["G"].config["width"] == 8 and given.nets["G"].config["init"] == "gaussian"
    assert given.nets["D"].config["num_scales"] == 2 and given.nets["D"].config["norm"] == "none"


def test_small_images_get_the_heavier_cycle_term_under_the_users_loss_options(tmp_path):
    from ganforge.train import build as build_module
    from ganforge.train.config import TrainConfig

    for res in (28, 36):
        for tag in ("a", "b"):
            np.savez(tmp_path / f"{tag}{res}.npz", images=np.zeros((4, res, res), np.uint8))

    def built_loss(res: int, domain_b: str | None = None, **kw):
        cfg = TrainConfig(model="unit", data=str(tmp_path / f"a{res}.npz"),
                          domain_b=str(tmp_path / (domain_b or f"b{res}.npz")), batch=2, device="cpu", ema_kimg=0.0,
                          **kw)
        return build_module.build(cfg).loss

    def weights(res: int, **kw) -> dict[str, float]:
        return built_loss(res, **kw).w

    small, large = built_loss(28), built_loss(36)
    assert small.w["cycle_weight"] == 20.0 and large.w["cycle_weight"] == 10.0  # 36 px: the authors' 10
    assert small.w["identity_weight"] == 2.0 and small.identity_kimg == 10.0  # fading identity term
    assert large.w["identity_weight"] == 0.0
    np.savez(tmp_path / "rgb28.npz", images=np.zeros((4, 28, 28, 3), np.uint8))
    mixed = built_loss(28, domain_b="rgb28.npz")
    assert mixed.w["identity_weight"] == 0.0  # grey A, colour B: no identity mapping between them
    mine = weights(28, loss_kwargs={"kl_weight": 0.1})
    assert mine["cycle_weight"] == 20.0 and mine["kl_weight"] == 0.1  # the user's other weights keep the default
    assert weights(28, loss_kwargs={"cycle_weight": 10.0})["cycle_weight"] == 10.0  # the user's weight wins


def test_the_loss_defaults_hook_applies_to_the_familys_own_loss_only():
    from ganforge.train.config import TrainConfig
    from ganforge.train.recipes.unit import RECIPE

    ds = GanDataset(name="a", data=torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    rgb = GanDataset(name="b", data=torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    cfg = TrainConfig(model="unit", loss_kwargs={"kl_weight": 0.1})
    source = TwoDomainSource(ds, rgb, batch_size=2, seed=0)
    assert RECIPE.loss_kwargs(cfg, ds, source, "unit") == {"cycle_weight": 20.0, "kl_weight": 0.1}
    assert RECIPE.loss_kwargs(cfg, ds, source, "non-saturating") == {"kl_weight": 0.1}


def test_the_effective_loss_weights_are_saved_and_a_resumed_run_keeps_them(tmp_path, monkeypatch):
    import dataclasses

    from ganforge.checkpoint import list_checkpoints, read_config
    from ganforge.cli.train import resolve_config
    from ganforge.train import build as build_module
    from ganforge.train.loop import Trainer
    from ganforge.train.recipes.unit import RECIPE

    for tag in ("a", "b"):
        np.savez(tmp_path / f"{tag}.npz", images=np.zeros((4, 28, 28), np.uint8))
    given = {"model": "unit", "data": str(tmp_path / "a.npz"), "domain_b": str(tmp_path / "b.npz"), "batch": 2,
             "device": "cpu", "ema_kimg": 0.0, "kimg": 0.002, "snapshot_kimg": 0.002, "grid_kimg": 0.002,
             "outdir": str(tmp_path / "runs"), "loss_kwargs": {"kl_weight": 0.1}, "threads": 1}
    cfg = resolve_config(given, None, None)
    run = Trainer.from_config(cfg, progress=False).run()
    assert cfg.loss_kwargs == {"kl_weight": 0.1}  # the user's config is not changed in place
    saved = read_config(list_checkpoints(run)[-1])["train"]["loss_kwargs"]
    assert saved == {"cycle_weight": 20.0, "identity_weight": 2.0, "identity_kimg": 10.0,
                     "kl_weight": 0.1}  # the recipe's small-image weights, pinned
    # A later version with another small-image default resumes the run with the weight it started with.
    heavier = dataclasses.replace(RECIPE, loss_defaults=lambda cfg, dataset, source: {"cycle_weight": 30.0})
    monkeypatch.setattr(build_module, "get_recipe", lambda name: heavier)
    resumed_cfg = resolve_config({"kimg": 0.004}, None, str(run))
    resumed = Trainer(build_module.build(resumed_cfg), resume=str(run), progress=False)
    assert resumed.loss.w["cycle_weight"] == 20.0 and resumed.loss.w["kl_weight"] == 0.1


def test_dry_run_says_that_the_unit_recipe_adds_data_dependent_loss_weights():
    cfg, note = dry_run("--model", "unit", "--domain-b", "b.npz")
    assert cfg["loss_kwargs"] == {} and "loss weights that depend on the loaded data" in note
    assert "loss weights" not in dry_run("--model", "unit", "--domain-b", "b.npz", "--loss", "non-saturating")[1]
    assert "loss weights" not in dry_run()[1]  # the digits DCGAN: no data-dependent weights


def test_unit_trains_batch_16_at_lr_2e4_unless_the_user_sets_them():
    unit = ("--model", "unit", "--domain-b", "b.npz")
    cfg = dry_run(*unit)[0]
    assert (cfg["batch"], cfg["lr_g"], cfg["lr_d"], cfg["betas"], cfg["xflip"]) == (16, 2e-4, 2e-4, [0.5, 0.999], True)
    cfg = dry_run(*unit, "--batch", "8", "--lr-g", "1e-4")[0]
    assert (cfg["batch"], cfg["lr_g"], cfg["lr_d"]) == (8, 1e-4, 2e-4)


def _spot(res: int = 12, at: tuple[int, int] = (5, 6)) -> GanDataset:
    # Four images, each black with one white pixel at ``at``: a shift shows as the pixel's new position.
    data = torch.zeros(4, 1, res, res, dtype=torch.uint8)
    data[:, :, at[0], at[1]] = 255
    return GanDataset(name="spot", data=data)


def _spot_positions(batch: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(divmod(int(img[0].argmax()), img.shape[-1])) for img in batch]


def test_translate_moves_each_image_by_its_own_offset_of_at_most_p_pixels():
    src = TwoDomainSource(_spot(), _spot(), batch_size=4, seed=0, translate=2)
    moves = set()
    for _ in range(10):
        batch = src.next()
        for x in (batch.real, batch.extra["real_b"]):
            assert x.shape == (4, 1, 12, 12)
            assert ((x > 0).flatten(1).sum(1) == 1).all()  # moved, not smeared or cut: the spot is inside
            for y, xx in _spot_positions(x):
                moves.add((y - 5, xx - 6))
    assert moves <= {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    assert len(moves) >= 15  # offsets vary per image and per axis, within the range
    plain = TwoDomainSource(_spot(), _spot(), batch_size=4, seed=0).next()
    assert _spot_positions(plain.real) == [(5, 6)] * 4  # translate 0 (the default) leaves images as they are
    with pytest.raises(ValueError, match="translate must be >= 0"):
        TwoDomainSource(_spot(), _spot(), batch_size=4, seed=0, translate=-1)


def test_translate_repeats_the_edge_into_the_gap_and_resumes_exactly():
    edge = _spot(at=(0, 6))  # ink on the top row, as frame-filling USPS digits have
    src = TwoDomainSource(edge, edge, batch_size=4, seed=1, translate=2, xflip=True)
    for _ in range(3):
        src.next()
    state = src.state_dict()
    expected = [src.next() for _ in range(4)]
    copies = 0
    for e in expected:
        for img in e.real:
            rows = (img[0].amax(-1) > 0).tolist()  # rows holding ink
            k = sum(rows)  # shifted down by k - 1: the top row and k - 1 copies; shifted up: cut off
            assert rows == [True] * k + [False] * (12 - k) and k <= 3
            copies += k > 1
    assert copies > 0  # some downward shift repeated the edge row (replicate padding, not black)
    resumed = TwoDomainSource(edge, edge, batch_size=4, seed=1, translate=2, xflip=True)
    resumed.load_state_dict(state)
    for e in expected:
        r = resumed.next()
        assert torch.equal(e.real, r.real) and torch.equal(e.extra["real_b"], r.extra["real_b"])


def test_translate_is_a_unit_option_checked_in_the_config_and_reaches_the_source(tmp_path):
    from ganforge.train import build as build_module
    from ganforge.train.config import TrainConfig

    with pytest.raises(ValueError, match="model 'unit' only"):
        TrainConfig(model="dcgan", translate=2)
    with pytest.raises(ValueError, match="translate must be a whole number"):
        TrainConfig(model="unit", translate=-1)
    assert dry_run("--model", "unit", "--domain-b", "b.npz", "--translate", "2")[0]["translate"] == 2
    np.savez(tmp_path / "a.npz", images=np.zeros((5, 16, 16), np.uint8))
    cfg = TrainConfig(**_tiny_unit(tmp_path / "a.npz", tmp_path / "a.npz"), translate=3)
    assert build_module.build(cfg).source.translate == 3


def test_small_images_shift_by_default_and_the_run_saves_what_it_used(tmp_path):
    from ganforge.train import build as build_module
    from ganforge.train.config import TrainConfig
    from ganforge.train.recipes.unit import SMALL_IMAGE, small_image_translate

    assert small_image_translate(SMALL_IMAGE) == 2 and small_image_translate(SMALL_IMAGE + 1) == 0
    np.savez(tmp_path / "a.npz", images=np.zeros((5, 40, 40), np.uint8))
    base = _tiny_unit(tmp_path / "a.npz", tmp_path / "a.npz")
    assert TrainConfig(**base).translate is None  # the family's choice, resolved from the loaded images
    for res, expected in ((32, 2), (36, 0)):
        parts = build_module.build(TrainConfig(**base, resolution=res))
        assert parts.source.translate == expected and parts.cfg.translate == expected  # pinned for resume
    assert build_module.build(TrainConfig(**base, resolution=32, translate=0)).source.translate == 0


def test_resuming_a_run_saved_before_translate_existed_keeps_it_unshifted(tmp_path, monkeypatch):
    from ganforge.cli import train as train_cli

    saved = {"model": "unit", "data": "a.npz", "domain_b": "b.npz", "resolution": 32}
    monkeypatch.setattr("ganforge.checkpoint.resolve_checkpoint", lambda path: path)
    monkeypatch.setattr("ganforge.checkpoint.read_config", lambda path: {"train": dict(saved)})
    assert train_cli.resolve_config({}, None, str(tmp_path)).translate == 0
    assert train_cli.resolve_config({"kimg": 5.0}, None, str(tmp_path)).translate == 0
