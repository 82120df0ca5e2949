"""``ganforge detect train / predict / eval / spectrum`` end to end on tiny data."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.cli.detect import detect

TINY = {"width": 4, "depth": 2, "spectrum_size": 14, "hidden": 8}


def _config(tmp_path, d: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(d))
    return str(path)


@pytest.fixture(scope="module")
def det(weak_generator, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("det")
    cfg = _config(tmp, {"sources": {"max_real": 100, "n_fake": 100},
                        "train": {"crop": 28, "batch": 16, "model": TINY}})
    out = tmp / "det"
    r = CliRunner().invoke(detect, ["train", "--real", "digits", "--fake", weak_generator, "--steps", "20",
                                    "--config", cfg, "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return str(out)


def test_train_writes_a_calibrated_checkpoint(det):
    meta = json.loads(open(f"{det}/config.json").read())
    assert meta["kind"] == "detector" and set(meta["networks"]) == {"detector"}
    cal = meta["report"]["calibration"]
    assert {"temperature", "ece_before", "ece_after"} <= set(cal)
    assert meta["data"]["fake"] and meta["train"]["steps"] == 20
    assert meta["data"]["max_real"] == 100 and meta["train"]["crop"] == 28  # from the config file


def test_predict_json_and_csv_with_a_corrupt_file(det, mixed_folder):
    runner = CliRunner()
    r = runner.invoke(detect, ["predict", det, str(mixed_folder), "--quiet"])
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert all(list(x) == ["path", "probability", "label", "regions", "error"] for x in records)
    assert sum(x["error"] is not None for x in records) == 2 and sum(x["probability"] is not None for x in records) == 4
    assert "scored 4 image(s), 2 unreadable" in r.stderr
    r = runner.invoke(detect, ["predict", det, str(mixed_folder / "b_rgb.jpg"), "--format", "csv", "--quiet"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and len(rows) == 1 and 0 <= float(rows[0]["probability"]) <= 1 and rows[0]["error"] == ""
    assert list(rows[0]) == ["path", "probability", "label", "regions", "error"] and rows[0]["regions"] == "6"
    assert "(6 regions)" in r.stderr  # 50 x 70 at crop 28: 2 x 3 tiles at native resolution


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
    cfg = _config(tmp_path, {"sources": {"max_real": 60, "n_fake": 30, "simulate": ["transposed", "nearest"],
                                         "simulate_steps": [5]},
                             "train": {"crop": 28, "batch": 8, "model": TINY}})
    r = CliRunner().invoke(detect, ["train", "--real", "digits", "--config", cfg, "--steps", "5", "--out", str(out),
                                    "--quiet"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["data"]["simulate"] == ["transposed", "nearest"]
    assert [f["source"] for f in meta["report"]["sources"]["fake"]] == ["simulated-transposed", "simulated-nearest"]
    runner = CliRunner()
    r = runner.invoke(detect, ["train", "--real", "digits", "--out", str(tmp_path / "x"), "--quiet"])
    assert r.exit_code != 0 and "--fake" in r.output
    cfg = _config(tmp_path, {"sources": {"simulate": ["cubic"]}})
    r = runner.invoke(detect, ["train", "--real", "digits", "--config", cfg, "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "unknown upsampler" in r.output


def test_train_takes_only_the_options_users_set_and_the_rest_from_one_config_file():
    r = CliRunner().invoke(detect, ["train", "--help"])
    options = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", r.output.split("Options:")[1])))
    assert options == ["--config", "--device", "--dry-run", "--fake", "--help", "--out", "--print-config", "--quiet",
                       "--real", "--seed", "--steps"]
    assert "1 % of the" in r.output and "3 % of them" in r.output  # the one threshold rule


def test_print_config_gives_every_default_and_reads_back_unchanged(tmp_path):
    runner = CliRunner()
    r = runner.invoke(detect, ["train", "--print-config"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["train"]["model"]["processing"] == "jpeg+resize" and d["train"]["real_fpr"] == 0.01
    assert d["train"]["max_real_fpr"] == 0.03 and d["train"]["augment"]["jpeg_prob"] == 0.5
    assert d["sources"]["simulate_steps"] == [150, 600] and d["sources"]["n_fake"] == 2000
    back = runner.invoke(detect, ["train", "--print-config", "--config", _config(tmp_path, d)])
    assert json.loads(back.stdout) == d
    r = runner.invoke(detect, ["train", "--print-config", "--steps", "7", "--seed", "3", "--config",
                               _config(tmp_path, {"train": {"steps": 99, "augment": {"resize_exact": [0.5],
                                                                                    "resize_exact_prob": 0.3}}})])
    train = json.loads(r.stdout)["train"]
    assert (train["steps"], train["seed"]) == (7, 3)  # the command line over the file
    assert train["augment"]["resize_exact"] == [0.5] and train["augment"]["resize_exact_prob"] == 0.3


@pytest.mark.parametrize("config,message", [
    ({"train": {"augment": {"jpeg_prob": 0}}}, "jpeg_prob in (0, 1)"),
    ({"train": {"augment": {"jpeg_prob": 1.0}}}, "learns to recognise 'jpeg', so"),  # the step by name
    ({"train": {"model": {"processing": ""}}}, "processing ''"),
    ({"train": {"threshold": "real-fpr"}}, "threshold"),
    ({"train": {"real_fpr": 0}}, "real_fpr must be in (0, 0.5)"),
    ({"train": {"view": "resize"}}, "view"),
    ({"train": {"epochs": 3}}, "epochs"),
    ({"train": {"augment": {"jpeg_probability": 0.5}}}, "jpeg_probability"),
    ({"train": {"model": {"widht": 8}}}, "widht"),
    ({"sources": {"simulate_steps": [0]}}, "simulate_steps must be whole numbers >= 1"),
    ({"source": {}}, "source"),
])
def test_config_errors_name_the_key(tmp_path, config, message):
    r = CliRunner().invoke(detect, ["train", "--print-config", "--config", _config(tmp_path, config)])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
