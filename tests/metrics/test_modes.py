"""Mode counts: class histograms, KL, the toy-set protocol and its scatter plot, Stacked MNIST labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_dataset
from ganforge.data.stacked import stack_digits
from ganforge.metrics import get_extractor
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.evaluate import format_table, run_metrics
from ganforge.metrics.modes import channel_kl_parts, kl_divergence, mode_counts, predicted_classes
from ganforge.metrics.toy import save_scatter, toy_modes


def test_per_channel_logits_read_as_one_base_k_number():
    logits = torch.zeros(2, 3, 10)
    logits[0, 0, 1], logits[0, 1, 2], logits[0, 2, 3] = 1, 1, 1  # digits 1, 2, 3 -> class 123
    logits[1, :, 9] = 1  # 999
    classes, k = predicted_classes(logits)
    assert classes.tolist() == [123, 999] and k == 1000
    assert predicted_classes(torch.eye(4))[0].tolist() == [0, 1, 2, 3]


def test_kl_divergence_values():
    assert kl_divergence(np.ones(10), np.ones(10)) == 0.0
    assert kl_divergence([1, 0, 0, 0], np.ones(4)) == pytest.approx(math.log(4))  # all mass on one of 4 modes
    assert kl_divergence([1, 1], [1, 0]) == math.inf


def test_mode_counts_threshold_ignores_stray_samples():
    counts = np.array([990, 3, 2, 5, 0, 0, 0, 0, 0, 0])  # a one-digit generator with classifier noise
    r = mode_counts(counts, np.ones(10))
    assert r["modes"] == 1 and r["modes/any"] == 4 and r["modes/total"] == 10
    r = mode_counts(np.full(10, 100), np.ones(10))
    assert r["modes"] == 10 and r["modes/kl"] == pytest.approx(0.0)
    # min_fraction=0 is the papers' "at least one sample" count
    assert mode_counts(counts, np.ones(10), min_fraction=0.0)["modes"] == 4


def test_toy_protocol_on_real_and_collapsed_samples():
    ds = load_dataset("ring8")
    real = toy_modes(ds.data[:4000], ds.info)
    assert real["modes"] == 8 and real["modes/total"] == 8
    assert real["modes/hq"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # P(|N(0, I_2)| <= 3)
    assert real["modes/kl"] < 0.01
    collapsed = ds.data[ds.labels == 3][:2000]
    r = toy_modes(collapsed, ds.info)
    assert r["modes"] == 1 and r["modes/kl"] == pytest.approx(math.log(8), rel=1e-6)
    far = torch.full((100, 2, 1, 1), 50.0)
    assert toy_modes(far, ds.info)["modes/hq"] == 0.0


def test_modes_metric_on_toy_sets_needs_no_extractor():
    for name, total in (("grid25", 25), ("gauss1d", 1)):
        ds = load_dataset(name)
        ctx = EvalContext(SampleSet.from_dataset(ds, 3000, seed=1), SampleSet.from_dataset(ds, 3000, seed=2))
        (result,) = run_metrics(["modes"], ctx)
        assert result.values["modes"] == total and result.extractor is None
        assert result.notes == {"reference": "nearest-centre protocol on the point set's known modes"}


def test_scatter_plots_are_written(tmp_path):
    ds = load_dataset("grid25")
    path = save_scatter(ds.data[:500].flatten(1), ds, tmp_path / "scatter.png", size=256)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (256, 256, 3)
    assert ((img[..., 2] > 150) & (img[..., 0] < 100)).sum() > 200  # blue sample dots
    assert ((img[..., 0] > 150) & (img[..., 1] < 100)).sum() > 100  # red mode circles
    one_d = load_dataset("gauss1d")
    assert Image.open(save_scatter(one_d.data[:500].flatten(1), one_d.info, tmp_path / "hist.png")).size == (512, 512)


def test_stacked_labels_match_the_per_channel_classifier():
    digits = load_dataset("digits")
    images, labels = stack_digits(digits.data.permute(0, 2, 3, 1).numpy(), digits.labels.numpy(), 300, seed=5)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # [300, 3, 28, 28]
    feats = get_extractor("digits")(x)
    assert feats.pool.shape == (300, 3 * get_extractor("digits").feature_dim) and feats.logits.shape == (300, 3, 10)
    classes, k = predicted_classes(feats.logits)
    assert k == 1000
    assert (classes.numpy() == labels).mean() > 0.95  # training digits: near-perfect per channel


def test_modes_metric_on_stacked_mnist():
    stacked = load_dataset("stacked-mnist")
    assert stacked.num_classes == 1000 and stacked.channels == 3
    ctx = EvalContext(SampleSet.from_tensor(stacked.data[:1].repeat(100, 1, 1, 1), "one image, 100 times"),
                      SampleSet.from_dataset(stacked, 2000, seed=0), "digits")
    (result,) = run_metrics(["modes"], ctx)
    values = result.values
    assert values["modes"] == 1 and values["modes/total"] == 1000
    # the result says which reference it was measured against (the metric needs no real set, so ``real`` is empty)
    assert result.real is None and result.notes["reference"].startswith("the population the real labels are drawn")
    assert "reference: the population" in format_table([result])
    assert result.to_dict()["notes"] == result.notes
    # all mass on one class; measured against the population (uniform), not the 60,000 labels' noisy histogram
    assert values["modes/kl"] == pytest.approx(math.log(1000), abs=1e-9)
    # one triple: every bit of it is digit shares, none is dependence between the channels
    assert values["modes/kl_channels"] == pytest.approx(values["modes/kl"], abs=1e-9)
    assert values["modes/kl_dependence"] == pytest.approx(0.0, abs=1e-12)


def test_the_channel_split_adds_up_to_the_kl_and_names_where_it_comes_from():
    rng = np.random.default_rng(3)
    shares = rng.dirichlet(np.ones(10), size=3)  # [3, 10] data digit shares per channel
    prior = np.einsum("i,j,k->ijk", *shares).reshape(1000)
    counts = rng.multinomial(5000, rng.dirichlet(np.ones(1000)))  # an arbitrary generator
    parts = channel_kl_parts(counts, prior, 3, 10)
    assert parts["modes/kl_channels"] + parts["modes/kl_dependence"] == pytest.approx(
        mode_counts(counts, prior)["modes/kl"], rel=1e-9)
    # independent channels drawing skewed digits: all digit shares, no dependence
    skewed = np.einsum("i,j,k->ijk", [0.5] + [0.5 / 9] * 9, np.full(10, 0.1), np.full(10, 0.1)).reshape(1000)
    parts = channel_kl_parts(skewed, np.ones(1000), 3, 10)
    assert parts["modes/kl_dependence"] == pytest.approx(0.0, abs=1e-12) and parts["modes/kl_channels"] > 0.3
    # the same digit in all three channels: perfect shares, pure dependence (10 of 1000 classes at 1/10 each)
    diagonal = np.zeros((10, 10, 10))
    diagonal[np.arange(10), np.arange(10), np.arange(10)] = 1
    parts = channel_kl_parts(diagonal.reshape(1000), np.ones(1000), 3, 10)
    assert parts["modes/kl_channels"] == pytest.approx(0.0, abs=1e-12)
    assert parts["modes/kl_dependence"] == pytest.approx(math.log(100), rel=1e-9)


def test_no_channel_split_when_the_reference_is_not_a_product_of_channel_shares():
    counts = np.arange(1, 101)
    reference = np.ones(100)
    reference[:10] = 5.0  # first digit 0 five times as likely whatever the second: still a product
    assert channel_kl_parts(counts, reference, 2, 10) != {}
    reference[0] = 50.0  # class 00 alone heavier: no longer a product
    assert channel_kl_parts(counts, reference, 2, 10) == {}


def test_without_a_real_set_the_reference_is_uniform_and_a_second_metric_does_not_inherit_the_note():
    digits = load_dataset("digits")
    ctx = EvalContext(SampleSet.from_dataset(digits, 200, seed=0), None, "digits")
    modes, inception_score = run_metrics(["modes", "is-digits"], ctx)
    assert modes.notes == {"reference": "uniform"}
    assert "modes/kl_channels" not in modes.values  # one channel: nothing to split
    assert inception_score.notes == {}


def test_a_sampler_of_the_population_scores_the_floor_against_the_prior_and_more_against_the_histogram():
    stacked = load_dataset("stacked-mnist")
    rng = np.random.default_rng(0)
    draws = [rng.multinomial(26_000, stacked.class_prior) for _ in range(8)]
    to_prior = np.mean([mode_counts(c, stacked.class_prior)["modes/kl"] for c in draws])
    to_histogram = np.mean([mode_counts(c, stacked.class_counts())["modes/kl"] for c in draws])
    assert to_prior == pytest.approx(999 / (2 * 26_000), rel=0.1)  # (K - 1) / 2N: the sampling floor
    assert to_histogram > to_prior + 0.005  # the 60,000 labels' own noise adds to it
    parts = [channel_kl_parts(c, stacked.class_prior, 3, 10) for c in draws]
    assert np.mean([p["modes/kl_channels"] for p in parts]) == pytest.approx(27 / (2 * 26_000), rel=0.3)
    assert np.mean([p["modes/kl_dependence"] for p in parts]) == pytest.approx(972 / (2 * 26_000), rel=0.1)
