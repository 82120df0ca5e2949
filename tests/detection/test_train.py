"""Acceptance: a detector separates real digits from a weak generator's digits on the CPU in seconds (AUC > 0.95 on
a held-out split), is calibrated on another held-out split, and round-trips through its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganforge.checkpoint import CheckpointError, save_checkpoint
from ganforge.detection.data import Augment, ImageSet, load_source, read_images
from ganforge.detection.predict import load_detector, save_detector, score_arrays
from ganforge.detection.thresholds import scores_and_cells
from ganforge.detection.train import (
    DetectorTrainConfig,
    fewest_errors_threshold,
    set_cell_thresholds,
    split_indices,
    train_detector,
)
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.detector import Detector

TINY_MODEL = {"width": 8, "depth": 2, "spectrum_size": 14, "hidden": 16}


@pytest.fixture(scope="module")
def trained(weak_generator):
    real = read_images("digits", max_images=240)
    fake = load_source(weak_generator, 240)
    cfg = DetectorTrainConfig(crop=28, steps=40, batch=32, model=TINY_MODEL, augment={"blur_sigma": (0.0, 1.0)})
    net, report = train_detector(real, [fake], cfg, progress=False)
    return net, report, real, fake


def test_separates_real_digits_from_a_weak_generator(trained):
    net, report, _, _ = trained
    assert report["test"]["auc"] > 0.95
    assert report["test"]["acc"] > 0.9
    assert report["splits"] == {"train": 336, "calib": 72, "test": 72}
    assert report["channels"] == 1 and net.channels == 1
    assert float(net.temperature) == pytest.approx(report["calibration"]["temperature"])
    # the spectrum statistics were installed from the data, not left at the identity
    assert not torch.equal(net.spec_std, torch.ones_like(net.spec_std))


def test_checkpoint_round_trip_scores_identically(trained, tmp_path):
    net, report, real, fake = trained
    path = save_detector(tmp_path / "det", net, {"report": report})
    back, meta = load_detector(path)
    imgs = real.images[:5] + fake.images[:5]
    assert np.array_equal(score_arrays(back, imgs), score_arrays(net, imgs))
    assert meta["kind"] == "detector" and meta["preprocess"] == {"crop": 28, "channels": 1, "view": "tiles"}
    assert float(back.temperature) == float(net.temperature)


def test_loading_a_generator_checkpoint_as_a_detector_is_refused(weak_generator):
    with pytest.raises(CheckpointError, match="not a detector checkpoint"):
        load_detector(weak_generator)


def test_colour_fakes_make_a_three_channel_detector_and_grey_reals_are_converted(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "g3", {"G": DCGANGenerator(z_dim=8, resolution=28, channels=3, width=4)}, {})
    real = read_images("digits", max_images=20)
    fake = load_source(tmp_path / "g3", 20)
    cfg = DetectorTrainConfig(crop=28, steps=2, batch=4, model=TINY_MODEL, stats_images=8)
    net, report = train_detector(real, [fake], cfg, progress=False)
    assert net.channels == 3 and report["channels"] == 3


def test_config_and_data_are_validated():
    with pytest.raises(ValueError, match="unknown detector training option"):
        DetectorTrainConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match="even number"):
        DetectorTrainConfig(batch=5)
    with pytest.raises(ValueError, match="top-level"):
        DetectorTrainConfig(model={"crop": 32})
    with pytest.raises(ValueError, match="blur_prob"):
        DetectorTrainConfig(augment={"blur_prob": 2})
    with pytest.raises(ValueError, match="real_fpr"):
        DetectorTrainConfig(real_fpr=0.5)
    with pytest.raises(ValueError, match="real_fpr"):
        DetectorTrainConfig(real_fpr=None)  # the old "keep the training threshold" sentinel is gone
    with pytest.raises(ValueError, match="unknown detector training option.*threshold.*removed: one rule"):
        DetectorTrainConfig.from_dict({"threshold": "real-fpr"})
    with pytest.raises(ValueError, match="unknown augment option.*blur_strength"):
        DetectorTrainConfig(augment={"blur_strength": 2})
    with pytest.raises(ValueError, match="unknown model option.*widht"):
        DetectorTrainConfig(model={"widht": 8})
    with pytest.raises(ValueError, match="max_real_fpr"):
        DetectorTrainConfig(real_fpr=0.05, max_real_fpr=0.03)
    with pytest.raises(ValueError, match="too few"):
        split_indices(2, 0.15, 0.15, np.random.default_rng(0), "tiny")
    empty = ImageSet("empty", [], [])
    with pytest.raises(ValueError, match="no readable images"):
        train_detector(read_images("digits", max_images=10), [empty], DetectorTrainConfig(), progress=False)


def test_the_temperature_is_fitted_on_generated_fakes_not_simulated_ones(weak_generator):
    """Simulated fakes (here: exact copies of reals, the worst case) are a training aid; the temperature and the
    calibration report use the generated ones, unless there are no others."""
    real = read_images("digits", max_images=60)
    fake = load_source(weak_generator, 60)
    copies = ImageSet("simulated-copies", list(real.images), [f"copy-{n}" for n in real.names], simulated=True)
    assert copies.subset([0, 1]).simulated and copies.converted(1).simulated
    cfg = DetectorTrainConfig(crop=28, steps=2, batch=4, model=TINY_MODEL, stats_images=8)
    _, report = train_detector(real, [fake, copies], cfg, progress=False)
    assert report["calibrated_on"] == [fake.source]
    assert report["calibration"]["n_eval"] == report["splits"]["test"] - len(copies) * 15 // 100
    _, only = train_detector(real, [copies], cfg, progress=False)
    assert only["calibrated_on"] == ["simulated-copies"]


def test_splits_are_disjoint_and_cover_everything():
    s = split_indices(100, 0.15, 0.15, np.random.default_rng(0), "x")
    allidx = np.concatenate([s.train, s.calib, s.test])
    assert sorted(allidx.tolist()) == list(range(100)) and len(s.calib) == 15 and len(s.test) == 15


def _saved(tmp_path, edit) -> str:
    """A detector checkpoint whose config.json ``edit`` changed, as an older version would have written it."""
    net = Detector(channels=1, crop=16, **{**TINY_MODEL, "spectrum_size": 8})
    path = save_detector(tmp_path / "det", net, {"train": DetectorTrainConfig(crop=16).to_dict(), "report": {}})
    meta = json.loads((path / "config.json").read_text())
    edit(meta)
    (path / "config.json").write_text(json.dumps(meta))
    return str(path)


@pytest.mark.parametrize("edit,mode", [
    (lambda m: m["train"].update(threshold="real-fpr"), "threshold rule 'real-fpr'"),
    (lambda m: m["train"].update(real_fpr=None), r"real_fpr null, i.e. `--real-fpr 0`"),
    (lambda m: m["preprocess"].update(view="resize"), "test view 'resize'"),
    (lambda m: m["networks"]["detector"]["config"].update(processing=""), "processing ''"),
    (lambda m: m["networks"]["detector"]["config"].pop("processing"), "processing ''"),
])
def test_a_detector_that_used_a_removed_mode_fails_to_load_naming_it(tmp_path, edit, mode):
    with pytest.raises(CheckpointError, match=f"used a removed mode: .*{mode}.*Retrain"):
        load_detector(_saved(tmp_path, edit))


def test_detectors_of_the_kept_modes_still_load(tmp_path):
    """A detector saved with the rule that was kept (fewest-errors) and the centre-crop view loads and is scored."""
    def older(meta):
        meta["train"].update(threshold="fewest-errors", view="center-crop")
        meta["preprocess"]["view"] = "center-crop"

    net, meta = load_detector(_saved(tmp_path, older))
    assert meta["train"]["threshold"] == "fewest-errors"
    assert score_arrays(net, [np.zeros((20, 30, 1), np.uint8)], meta["preprocess"]["view"]).shape == (1,)


def test_each_processing_cell_gets_its_own_false_positive_rate():
    """Reals processed in different ways score differently; each cell's threshold leaves ``fpr`` of its own reals
    above it, and a cell with too few reals falls back to the quantile of all of them."""
    torch.manual_seed(0)
    net = Detector(channels=1, crop=16, processing="jpeg+resize", **{**TINY_MODEL, "spectrum_size": 8}).eval()
    rng = np.random.default_rng(0)
    cells = np.repeat([0, 1, 2, 3], [400, 400, 400, 10])
    scores = rng.normal(size=len(cells)) + np.array([-6.0, 0.0, -2.0, 5.0])[cells]
    fakes = scores + 20.0  # far above the reals of every cell: the fakes lower no threshold
    thr = set_cell_thresholds(net, scores, cells, fakes, cells, 0.05, 0.05)
    assert list(thr) == ["none", "jpeg", "resize", "jpeg+resize"]
    for c, name in enumerate(thr):
        if c < 2:
            assert np.mean(scores[cells == c] > thr[name]) == pytest.approx(0.05, abs=0.003)
    pooled = float(np.quantile(scores, 0.95))  # 10 reals in jpeg+resize: the quantile of all of them
    own = float(np.quantile(scores[cells == 2], 0.95))
    # JPEG before a resize leaves no trace: both resized cells take the larger of their thresholds
    assert thr["jpeg+resize"] == thr["resize"] == pytest.approx(max(pooled, own))
    assert torch.allclose(net.proc_thresholds, torch.tensor(list(thr.values())))
    assert thr == set_cell_thresholds(net, scores, cells, fakes[:0], cells[:0], 0.05, 0.05)  # no fakes: the same
    with pytest.raises(ValueError, match="one cell each"):
        set_cell_thresholds(net, scores, cells[:5], fakes, cells, 0.05, 0.05)
    with pytest.raises(ValueError, match="real_fpr <= max_real_fpr"):
        set_cell_thresholds(net, scores, cells, fakes, cells, 0.05, 0.01)


def test_fewest_errors_threshold_minimises_balanced_errors():
    real = np.array([0.0, 1.0, 2.0, 3.0])  # a real costs 1/4, a fake 1/8
    fake = np.array([2.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert fewest_errors_threshold(real, fake) == 4.0  # misses the fake at 2.5 rather than calling 3.0 fake
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=300), rng.normal(size=200) + 1.5
    brute = min((np.mean(real >= c) + np.mean(fake < c), c) for c in np.r_[real, fake])  # lowest of any tie
    assert fewest_errors_threshold(real, fake) == brute[1]
    with pytest.raises(ValueError, match="need real and fake"):
        fewest_errors_threshold(real, np.array([]))


def test_calibration_fakes_lower_a_cell_threshold_only_where_they_overlap_the_reals():
    """Cell 0: fakes far above the reals, the 5 % real quantile stays. Cell 1: fakes overlap the reals (the traces
    are gone), and the threshold drops to where the balanced error is smallest, trading some reals for many fakes."""
    torch.manual_seed(0)
    net = Detector(channels=1, crop=16, processing="jpeg", **{**TINY_MODEL, "spectrum_size": 8}).eval()
    rng = np.random.default_rng(0)
    cells = np.repeat([0, 1], 2000)
    real = rng.normal(size=4000)
    fake = rng.normal(size=4000) + np.array([8.0, 1.0])[cells]
    quantile_only = set_cell_thresholds(net, real, cells, fake[:0], cells[:0], 0.05, 0.05)
    thr = set_cell_thresholds(net, real, cells, fake, cells, 0.05, 0.49)  # bound far away: it does not bind
    assert thr["none"] == quantile_only["none"]
    assert thr["jpeg"] < quantile_only["jpeg"] - 0.5
    assert thr["jpeg"] == pytest.approx(0.5, abs=0.3)  # unit normals 1 apart: the midpoint (a flat minimum)
    errors = {name: np.mean(real[cells == 1] >= t) + np.mean(fake[cells == 1] < t)
              for name, t in (("quantile", quantile_only["jpeg"]), ("fewest", thr["jpeg"]))}
    assert errors["fewest"] < errors["quantile"] - 0.1
    capped = set_cell_thresholds(net, real, cells, fake, cells, 0.05, 0.1)
    assert capped["none"] == quantile_only["none"]
    assert np.mean(real[cells == 1] >= capped["jpeg"]) == pytest.approx(0.1, abs=0.002)  # the cap binds
    assert torch.allclose(net.proc_thresholds, torch.tensor(list(capped.values())))
    with pytest.raises(ValueError, match="fake scores with one cell each"):
        set_cell_thresholds(net, real, cells, fake, cells[:10], 0.05, 0.1)


def test_training_places_one_threshold_per_processing_cell(trained):
    net, report, _, _ = trained
    thr = report["processing_thresholds"]
    assert list(thr) == ["none", "jpeg", "resize", "jpeg+resize"]
    assert torch.allclose(net.proc_thresholds, torch.tensor(list(thr.values())))
    assert list(report["processing_real_fpr"]) == list(thr)
    assert all(0 <= v < 0.5 for v in report["processing_real_fpr"].values())


def test_thresholds_are_placed_on_processed_not_blurred_calibration_images(trained, monkeypatch):
    """The training blur is a robustness aid; the heavily blurred reals it makes would set the thresholds (their top
    1 % score far above any picture as it reaches people), so thresholds see JPEG and resizing only."""
    net, _, real, _ = trained
    seen: list[Augment] = []
    original = Augment.apply

    def spy(self, arr, crop, rng, force=None):
        seen.append(self)
        return original(self, arr, crop, rng, force)

    monkeypatch.setattr(Augment, "apply", spy)
    augment = Augment(blur_prob=1.0, jpeg_prob=0.5, resize_prob=0.5)
    scores, cells = scores_and_cells(net, real.images[:4], augment, np.random.default_rng(1))
    assert len(scores) == len(cells) == 4 * (1 + 2 ** len(net.proc_steps))
    assert seen and all(a.blur_prob == 0.0 for a in seen)
    assert all((a.jpeg_prob, a.resize_prob, a.resize_scale) == (0.5, 0.5, augment.resize_scale) for a in seen)
