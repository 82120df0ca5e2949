"""Real-image features cached on disk by content (ganforge.metrics.feature_cache) and ``evaluate --clear-cache``."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ganforge.cli.main import cli
from ganforge.data import DataError, load_dataset
from ganforge.media import save_image
from ganforge.metrics.digits import DigitsExtractor
from ganforge.metrics.feature_cache import FeatureCache, content_key
from ganforge.metrics.features import FeatureExtractor, Features


class Dummy(FeatureExtractor):
    name, weights_sha256, resize, feature_dim = "dummy", "0" * 64, "none", 2


def _batches(x: torch.Tensor, size: int = 3):
    return [x[i : i + size] for i in range(0, len(x), size)]


def test_round_trip_is_exact_and_compact(tmp_path):
    cache = FeatureCache(tmp_path)
    f32 = torch.randn(5, 4).double()  # float32 values held in float64 (Inception's case): stored as float32
    f64 = torch.randn(5, 4, dtype=torch.float64)
    cache.save("a", Features(f32, f64), {"description": "test"})
    back = cache.load("a", 5)
    assert torch.equal(back.pool, f32) and torch.equal(back.logits, f64) and back.pool.dtype == torch.float64
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temporary file left behind
    assert cache.load("absent", 5) is None
    with pytest.raises(DataError, match="expected 6 rows.*--clear-cache"):
        cache.load("a", 6)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="bad.safetensors: unreadable"):
        cache.load("bad", 5)
    assert cache.clear() == 2 and not any(tmp_path.iterdir())


def test_the_key_follows_pixels_order_preprocessing_and_extractor():
    x = torch.randint(0, 256, (7, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    prep = {"resolution": 4, "channels": 1, "resize": "center-crop"}
    key, n = content_key(_batches(x), prep, Dummy())
    assert n == 7 and key == content_key(_batches(x, 7), prep, Dummy())[0]  # batching does not matter
    changed = x.clone()
    changed[3, 0, 1, 1] ^= 1
    other = Dummy()
    other.weights_sha256 = "1" * 64
    for variant in (content_key(_batches(changed), prep, Dummy()), content_key(_batches(x.flip(0)), prep, Dummy()),
                    content_key(_batches(x), {**prep, "resize": "stretch"}, Dummy()),
                    content_key(_batches(x), prep, other)):
        assert variant[0] != key


def test_second_evaluation_reads_the_reals_from_the_cache_and_clear_cache_empties_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    digits = load_dataset("digits")
    for name, images in (("real", digits.data[:40]), ("fake", digits.data[2000:2030])):
        (tmp_path / name).mkdir()
        for i, x in enumerate(images):
            save_image(x.permute(1, 2, 0).numpy(), tmp_path / name / f"{i:03d}.png")
    seen: list[int] = []
    original = DigitsExtractor.extract
    monkeypatch.setattr(DigitsExtractor, "extract", lambda self, x: (seen.append(len(x)), original(self, x))[1])
    args = ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
            "--metrics", "fd-digits,pr-digits", "--json"]
    runner = CliRunner()
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert sum(seen) == 60  # 30 reals drawn (n_real = the fakes' count) and 30 fakes
    entries = list((tmp_path / "cache" / "real-features").glob("*.safetensors"))
    assert len(entries) == 1
    seen.clear()
    second = runner.invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert sum(seen) == 30  # only the fakes
    assert [json.loads(r)["values"] for r in second.output.splitlines()] == \
        [json.loads(r)["values"] for r in first.output.splitlines()]
    cleared = runner.invoke(cli, ["evaluate", "--clear-cache"])
    assert cleared.exit_code == 0 and "removed 1 cached real-feature set" in cleared.output
    assert not list((tmp_path / "cache" / "real-features").glob("*"))
    seen.clear()
    assert runner.invoke(cli, args).exit_code == 0 and sum(seen) == 60
    seen.clear()  # another real subset (more images) is another entry
    assert runner.invoke(cli, [*args, "--n-real", "35"]).exit_code == 0 and sum(seen) == 65
