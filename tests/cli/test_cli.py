"""The CLI end to end on tiny settings: train, resume, sample, export (checked with onnxruntime), info, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.checkpoint import list_checkpoints
from ganforge.cli.main import cli

TINY = [
    "--max-images",
    "128",
    "--batch",
    "16",
    "--g-kwargs",
    '{"width": 8}',
    "--d-kwargs",
    '{"width": 8}',
    "--z-dim",
    "8",
    "--quiet",
    "--threads",
    "1",
]


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    res = run("train", *TINY, "--kimg", "0.064", "--grid-kimg", "0.032", "--outdir", str(out))
    assert res.exit_code == 0, res.output
    return next(out.iterdir())


def test_train_writes_run_directory(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "stats.jsonl", "checkpoints", "tensorboard", "fakes000000.png"} <= names
    assert list((trained / "tensorboard").iterdir())
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["train"]["model"] == "dcgan" and cfg["dataset"]["resize"] == "center-crop"


def test_dry_run_prints_resolved_config():
    res = run("train", "--dry-run", "--model", "gan", "--loss", "minimax", "--d-steps", "3")
    cfg = json.loads(res.output)
    assert cfg["model"] == "gan" and cfg["loss"] == "minimax" and cfg["d_steps"] == 3 and cfg["data"] == "digits"


def test_dcgan_family_defaults_apply():
    cfg = json.loads(run("train", "--dry-run").output)
    assert cfg["betas"] == [0.5, 0.999] and cfg["model"] == "dcgan"


@pytest.mark.parametrize("args,cond", [
    ([], True),  # the digits preset: no --data
    (["--no-cond"], False),
    (["--data", "digits"], False),  # naming the data leaves the choice to --cond, as for any dataset
    (["--data", "digits", "--cond"], True),
    (["--model", "gan"], False),  # the preset belongs to the DCGAN beginner run only
    (["--clusters", "10"], False),  # labels from k-means instead: the plain digits run, self-conditioned
])
def test_digits_preset_is_conditional_only_without_data(args, cond):
    cfg = json.loads(run("train", "--dry-run", *args).output)
    assert cfg["cond"] is cond and cfg["data"] == "digits"


def test_resume_extends_and_refuses_changes(trained):
    res = run("train", "--resume", str(trained), "--kimg", "0.096", "--quiet")
    assert res.exit_code == 0, res.output
    assert list_checkpoints(trained)[-1].name == f"ckpt-{96:012d}"
    res = CliRunner().invoke(cli, ["train", "--resume", str(trained), "--batch", "32"])
    assert res.exit_code != 0 and "only --kimg" in res.output


def test_resume_may_change_end_of_training_schedules(trained):
    ema = json.loads((list_checkpoints(trained)[-1] / "config.json").read_text())["train"]["ema_kimg"]
    assert ema > 0
    res = run("train", "--resume", str(trained), "--kimg", "0.128", "--ema-kimg", str(ema * 2),
              "--lr-rampdown", "0.25", "--ema-bn-images", "512", "--quiet")
    assert res.exit_code == 0, res.output
    saved = json.loads((list_checkpoints(trained)[-1] / "config.json").read_text())["train"]
    assert saved["kimg"] == 0.128 and saved["ema_kimg"] == ema * 2 and saved["lr_rampdown"] == 0.25
    assert saved["ema_bn_images"] == 512
    res = CliRunner().invoke(cli, ["train", "--resume", str(trained), "--ema-kimg", "0"])
    assert res.exit_code != 0 and "turn the G EMA off" in res.output


def test_sample_grid_and_folder(trained, tmp_path):
    assert run("sample", str(trained), "--n", "9", "--out", str(tmp_path / "g.png")).exit_code == 0
    assert Image.open(tmp_path / "g.png").size == (3 * 30 + 2, 3 * 30 + 2)
    assert run("sample", str(trained), "--seeds", "3-5", "--out", str(tmp_path / "imgs")).exit_code == 0
    files = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert files == ["seed000003.png", "seed000004.png", "seed000005.png"]
    # a seed gives the same image whatever else is asked
    assert run("sample", str(trained), "--seeds", "4", "--out", str(tmp_path / "one")).exit_code == 0
    a = np.asarray(Image.open(tmp_path / "imgs" / "seed000004.png"))
    b = np.asarray(Image.open(tmp_path / "one" / "seed000004.png"))
    assert np.array_equal(a, b)


def test_export_onnx_matches_pytorch(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    res = run("export", str(trained), "--onnx", str(tmp_path / "G.onnx"))
    assert res.exit_code == 0, res.output
    err = float(res.output.split("max abs difference")[1])
    assert err < 1e-4


def test_export_slim_samples_the_same_images_without_training_state(trained, tmp_path):
    res = run("export", str(trained), "--slim", str(tmp_path / "slim"))
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "slim" / "config.json").read_text())
    assert list(meta["networks"]) == ["G_ema"]
    assert "outdir" not in meta["train"] and meta["train"]["model"] == "dcgan"  # no exporter's folder shipped
    for name, model in (("run", trained), ("slim", tmp_path / "slim")):
        assert run("sample", str(model), "--seeds", "7", "--out", str(tmp_path / name)).exit_code == 0
    a, b = (np.asarray(Image.open(tmp_path / n / "seed000007.png")) for n in ("run", "slim"))
    assert np.array_equal(a, b)


def test_info_and_datasets(trained):
    out = run("info", str(trained)).output
    assert "dcgan-g" in out and "resumable" in out
    assert "digits" in run("datasets").output
    assert "5000" in run("info", "digits").output


def test_packaged_digits_sample_offline(tmp_path):
    res = run("sample", "digits", "--n", "16", "--out", str(tmp_path / "d.png"))
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "d.png").size[0] > 100


def test_bad_data_is_one_clear_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "ganforge", "train", "--data", str(tmp_path / "empty")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "no image files found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_option_values_rejected():
    res = CliRunner().invoke(cli, ["train", "--batch", "0"])
    assert res.exit_code != 0 and "--batch" in res.output
    res = CliRunner().invoke(cli, ["train", "--g-kwargs", "[1, 2]"])
    assert res.exit_code != 0 and "JSON object" in res.output


def test_clusters_option_resolves_and_refuses_labels_too():
    cfg = json.loads(run("train", "--dry-run", "--data", "stacked-mnist", "--clusters", "100").output)
    assert cfg["clusters"] == 100 and cfg["cond"] is False and cfg["loss"] == "relativistic"
    res = CliRunner().invoke(cli, ["train", "--dry-run", "--cond", "--clusters", "10"])
    assert res.exit_code != 0 and "exclude each other" in str(res.exception)
