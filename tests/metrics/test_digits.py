"""Digits metrics on real MNIST test digits (../shared/data/mnist): the acceptance checks of the metrics issue."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import load_dataset
from ganforge.metrics import get_extractor
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.digits import packaged_classifier
from ganforge.metrics.evaluate import run_metrics
from ganforge.metrics.train_classifier import accuracy
from tests.conftest import shared_path

ALL = ["fd-digits", "kd-digits", "is-digits", "pr-digits", "modes"]  # the digit classifier's numbers


@pytest.fixture(scope="module")
def mnist_test():
    return load_dataset(shared_path("mnist", "t10k-images-idx3-ubyte.gz"))


@pytest.fixture(scope="module")
def extractor():
    return get_extractor("digits")


def _values(fake: SampleSet, real: SampleSet, extractor, names=ALL, batch_size: int = 250) -> dict[str, float]:
    ctx = EvalContext(fake, real, extractor, batch_size=batch_size)
    return {k: v for r in run_metrics(names, ctx) for k, v in r.values.items()}


def test_packaged_classifier_records_its_mnist_test_accuracy(mnist_test, extractor):
    import json

    meta = json.loads((packaged_classifier() / "config.json").read_text())
    assert meta["kind"] == "digits-classifier" and meta["test"]["images"] == 10_000
    assert meta["test"]["accuracy"] >= 0.97
    assert meta["test"]["confident_share_0.9"] >= 0.9  # real digits pass the time-to-quality confidence bar
    sub = SampleSet.from_dataset(mnist_test, 2000, seed=0)
    acc, _ = accuracy(extractor.net.float(), load_subset(mnist_test, sub))
    extractor.net.double()
    assert acc == pytest.approx(meta["test"]["accuracy"], abs=0.015)


def load_subset(ds, sub: SampleSet):
    from ganforge.data import GanDataset

    return GanDataset(ds.name, sub.make(0, sub.count), sub.labels, ds.num_classes)


def test_real_split_is_close_and_one_digit_set_is_far(mnist_test, extractor):
    real_a = SampleSet.from_dataset(mnist_test, 1000, seed=1)
    rest = torch.ones(len(mnist_test), dtype=torch.bool)
    rest[torch.randperm(len(mnist_test), generator=torch.Generator().manual_seed(1))[:1000]] = False
    real_b = SampleSet.from_tensor(mnist_test.data[rest][:1000], "other real digits")
    ones = SampleSet.from_tensor(mnist_test.data[mnist_test.labels == 1][:600], "only ones")
    near = _values(real_b, real_a, extractor)
    far = _values(ones, real_a, extractor)
    assert near["fd-digits"] < 1.0 and far["fd-digits"] > 20 * near["fd-digits"]
    assert far["kd-digits"] > 50 * max(near["kd-digits"], 1e-4)
    assert near["pr-digits/recall"] > 0.8 and far["pr-digits/recall"] < 0.4
    assert near["is-digits"] > 8.5 and far["is-digits"] < 1.5
    # the modes metric: 10/10 on real MNIST, 1/10 on a one-digit set
    assert near["modes"] == 10 and near["modes/kl"] < 0.02
    assert far["modes"] == 1 and far["modes/kl"] > 2.0


def test_batch_size_does_not_change_any_metric(mnist_test, extractor):
    real = SampleSet.from_dataset(mnist_test, 200, seed=2)
    fake = SampleSet.from_dataset(mnist_test, 200, seed=3)
    small = _values(fake, real, extractor, batch_size=7)
    large = _values(fake, real, extractor, batch_size=200)
    assert small.keys() == large.keys()
    for k in small:
        assert small[k] == pytest.approx(large[k], rel=1e-6, abs=1e-12), k


def test_digits_extractor_refuses_other_sizes(extractor):
    with pytest.raises(ValueError, match="28x28"):
        extractor(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
