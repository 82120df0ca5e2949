"""``ganforge evaluate`` (folders and checkpoints) and the classifier training plumbing."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ganforge.checkpoint import save_checkpoint
from ganforge.cli.main import cli
from ganforge.data import GanDataset, load_dataset
from ganforge.media import save_image
from ganforge.metrics.digits import DigitsExtractor
from ganforge.metrics.train_classifier import accuracy, random_affine, save_classifier, train_classifier
from ganforge.models.dcgan import DCGANGenerator


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def _cache_in_tmp(monkeypatch, tmp_path):
    """Real-image features are cached under $GANFORGE_CACHE: keep them in the test's folder."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))


def _write_pngs(images: torch.Tensor, folder) -> None:
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        save_image(x.permute(1, 2, 0).numpy(), folder / f"{i:04d}.png")


def test_evaluate_two_folders(tmp_path, digits):
    _write_pngs(digits.data[::83][:60], tmp_path / "real")  # all classes (the set is sorted by label)
    _write_pngs(digits.data[digits.labels == 1][:60], tmp_path / "fake")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                                   "--metrics", "fd-digits,kd-digits,modes", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.strip().splitlines()]
    assert [r["metric"] for r in rows] == ["fd-digits", "kd-digits", "modes"]
    assert rows[0]["n_fake"] == 60 and rows[0]["n_real"] == 60
    assert rows[0]["extractor"]["extractor"] == "digits" and len(rows[0]["extractor"]["weights_sha256"]) == 64
    assert set(rows[1]["values"]) == {"kd-digits", "kd-digits/std", "kd-digits/subset_size", "kd-digits/subsets"}
    assert rows[2]["values"]["modes"] <= 3 and rows[2]["values"]["modes/kl"] > 1.5  # collapsed to ones
    fd = json.loads((out / "metric-fd-digits.jsonl").read_text())
    assert fd["values"]["fd-digits"] == rows[0]["values"]["fd-digits"]
    assert not (out / "metric-fid.jsonl").exists()


def test_evaluate_a_run_writes_metric_files_into_it(tmp_path):
    G = DCGANGenerator(z_dim=8, c_dim=0, resolution=28, channels=1, width=8)
    run = tmp_path / "00000-dcgan-digits"
    info = {"source": "digits", "kind": "builtin", "resize": "center-crop", "resolution": 28, "channels": 1}
    save_checkpoint(run / "checkpoints" / "ckpt-000000000064", {"G": G.eval()},
                    {"kind": "gan", "family": "dcgan", "dataset": info, "nimg": 64})
    res = CliRunner().invoke(cli, ["evaluate", str(run), "--metrics", "fd-digits,is-digits,modes", "--n", "64"])
    assert res.exit_code == 0, res.output
    assert "fd-digits" in res.output and "extractor digits" in res.output
    rec = json.loads((run / "metric-is-digits.jsonl").read_text())
    assert rec["extra"]["nimg"] == 64 and rec["n_fake"] == 64 and rec["real"] is None
    fd = json.loads((run / "metric-fd-digits.jsonl").read_text())
    assert fd["n_real"] == 64 and fd["values"]["fd-digits"] > 10  # an untrained generator is far from digits


def test_evaluate_usage_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["evaluate", "--metrics", "fid"])
    assert res.exit_code != 0 and "either RUN_OR_CKPT or --fake" in res.output
    res = runner.invoke(cli, ["evaluate", "--fake", str(tmp_path), "--metrics", "fid,nope"])
    assert res.exit_code != 0 and "unknown metric 'nope'" in str(res.exception or res.output)
    res = runner.invoke(cli, ["evaluate", "--fake", str(tmp_path), "--metrics", "fid", "--extractor", "digits"])
    assert res.exit_code != 0 and "--extractor digits does not apply: fid uses inception-v3" in res.output
    assert "fd-digits" in res.output


def test_classifier_training_saves_a_usable_extractor(tmp_path, digits):
    small = GanDataset("digits", digits.data[:256], digits.labels[:256], 10)
    net, record = train_classifier(small, epochs=2, batch_size=64, width=4, seed=0, progress=False)
    assert record["images"] == 256 and record["epochs"] == 2
    acc, per_class = accuracy(net, small)
    assert 0.0 <= acc <= 1.0 and len(per_class) == 10
    path = save_classifier(tmp_path / "clf", net, {**record, "test": {"accuracy": acc, "images": 256}})
    ex = DigitsExtractor("cpu", weights=path)
    assert ex.describe()["classifier_test_accuracy"] == acc and ex.feature_dim == 16
    feats = ex(digits.data[:5])
    with torch.no_grad():
        pooled, logits = net.double().features(digits.data[:5].double() / 127.5 - 1)
    assert torch.allclose(feats.logits, logits) and torch.allclose(feats.pool, pooled)


def test_random_affine_keeps_shape_and_background():
    x = -torch.ones(4, 1, 28, 28)
    y = random_affine(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.allclose(y, x)
