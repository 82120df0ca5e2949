"""``ganforge detect train / predict / eval / spectrum`` end to end on tiny data."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.cli.detect import detect

TINY = '{"width": 4, "depth": 2, "spectrum_size": 14, "hidden": 8}'


@pytest.fixture(scope="module")
def det(weak_generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "det"
    r = CliRunner().invoke(detect, ["train", "--real", "digits", "--max-real", "100", "--fake", weak_generator,
                                    "--n-fake", "100", "--crop", "28", "--steps", "20", "--batch", "16",
                                    "--model-kwargs", TINY, "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return str(out)


def test_train_writes_a_calibrated_checkpoint(det):
    meta = json.loads(open(f"{det}/config.json").read())
    assert meta["kind"] == "detector" and set(meta["networks"]) == {"detector"}
    cal = meta["report"]["calibration"]
    assert {"temperature", "ece_before", "ece_after"} <= set(cal)
    assert meta["data"]["fake"] and meta["train"]["steps"] == 20


def test_predict_json_and_csv_with_a_corrupt_file(det, mixed_folder):
    runner = CliRunner()
    r = runner.invoke(detect, ["predict", det, str(mixed_folder), "--quiet"])
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert sum("error" in x for x in records) == 2 and sum("p_fake" in x for x in records) == 4
    assert "scored 4 image(s), 2 unreadable" in r.stderr
    r = runner.invoke(detect, ["predict", det, str(mixed_folder / "b_rgb.jpg"), "--format", "csv", "--quiet"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and len(rows) == 1 and 0 <= float(rows[0]["p_fake"]) <= 1 and rows[0]["error"] == ""


def test_predict_exits_nonzero_when_nothing_could_be_scored(det, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    r = CliRunner().invoke(detect, ["predict", det, str(tmp_path / "bad.png"), "--quiet"])
    assert r.exit_code == 1 and json.loads(r.stdout)[0]["error"]


def test_eval_clean_and_perturbed(det, weak_generator):
    r = CliRunner().invoke(detect, ["eval", det, "--real", "digits", "--max-real", "40", "--fake", weak_generator,
                                    "--n-fake", "40", "--jpeg", "75", "--scale", "0.5", "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["perturbation"] == "scale0.5+jpeg75" and res["n_real"] == 40 and res["n_fake"] == 40
    assert {"auc", "ap", "acc", "ece", "uncalibrated"} <= set(res)


def test_spectrum_side_by_side(weak_generator, tmp_path):
    out = tmp_path / "s.png"
    r = CliRunner().invoke(detect, ["spectrum", "digits", "--vs", weak_generator, "--size", "28", "--max-images",
                                    "30", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert Image.open(out).width > 3 * 28  # three panels: digits, the generator, their difference


def test_fake_dataset_name_and_dry_run(weak_generator):
    runner = CliRunner()
    r = runner.invoke(detect, ["train", "--real", "digits", "--fake", "digits", "--out", "x", "--quiet"])
    assert r.exit_code != 0 and "names a dataset of real images" in r.output
    r = runner.invoke(detect, ["train", "--real", "digits", "--fake", weak_generator, "--out", "x", "--dry-run"])
    assert r.exit_code == 0 and json.loads(r.stdout)["train"]["crop"] == 64


def test_train_on_simulated_fakes_only(tmp_path):
    out = tmp_path / "det-sim"
    r = CliRunner().invoke(detect, ["train", "--real", "digits", "--max-real", "60", "--simulate", "transposed,nearest",
                                    "--simulate-steps", "5", "--n-fake", "30", "--crop", "28", "--steps", "5",
                                    "--batch", "8", "--model-kwargs", TINY, "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["data"]["simulate"] == ["transposed", "nearest"]
    assert [f["source"] for f in meta["report"]["sources"]["fake"]] == ["simulated-transposed", "simulated-nearest"]
    runner = CliRunner()
    r = runner.invoke(detect, ["train", "--real", "digits", "--out", str(tmp_path / "x"), "--quiet"])
    assert r.exit_code != 0 and "--fake" in r.output
    r = runner.invoke(detect, ["train", "--real", "digits", "--simulate", "cubic", "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "unknown upsampler" in r.output


def test_processing_option_reaches_the_model_and_a_step_the_augmentation_never_varies_is_refused(weak_generator):
    runner = CliRunner()
    base = ["train", "--real", "digits", "--fake", weak_generator, "--out", "x", "--dry-run"]
    r = runner.invoke(detect, base)
    assert r.exit_code == 0 and json.loads(r.stdout)["train"]["model"]["processing"] == "jpeg+resize"
    r = runner.invoke(detect, [*base, "--processing", "", "--jpeg-prob", "0"])
    assert r.exit_code == 0 and json.loads(r.stdout)["train"]["model"]["processing"] == ""
    r = runner.invoke(detect, [*base, "--jpeg-prob", "0"])
    assert isinstance(r.exception, ValueError) and "jpeg_prob in (0, 1)" in str(r.exception)
    r = runner.invoke(detect, [*base, "--resize-exact", "0.5", "--resize-exact-prob", "0.3"])
    aug = json.loads(r.stdout)["train"]["augment"]
    assert r.exit_code == 0 and aug["resize_exact"] == [0.5] and aug["resize_exact_prob"] == 0.3
    r = runner.invoke(detect, [*base, "--resize-exact", "half"])
    assert r.exit_code != 0 and "comma-separated numbers" in r.output
    assert json.loads(runner.invoke(detect, base).stdout)["train"]["threshold"] == "fewest-errors"
    r = runner.invoke(detect, [*base, "--threshold", "real-fpr", "--max-real-fpr", "0.05"])
    train = json.loads(r.stdout)["train"]
    assert r.exit_code == 0 and train["threshold"] == "real-fpr" and train["max_real_fpr"] == 0.05
    r = runner.invoke(detect, [*base, "--simulate", "nearest", "--simulate-steps", "150,600"])
    assert r.exit_code == 0 and json.loads(r.stdout)["sources"]["simulate_steps"] == [150, 600]
    r = runner.invoke(detect, [*base, "--simulate-steps", "0"])
    assert r.exit_code != 0 and "whole numbers >= 1" in r.output
    r = runner.invoke(detect, [*base, "--threshold", "median"])
    assert r.exit_code != 0 and "fewest-errors" in r.output
