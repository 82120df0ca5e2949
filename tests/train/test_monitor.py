"""The training monitor: metric schedule, best values, the stopping rule, its state, and the diagnostics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.data import load_dataset
from ganforge.metrics import get_extractor
from ganforge.train.monitor import (
    MetricMonitor,
    StopRule,
    class_coverage,
    coverage_warning,
    grad_norm,
    heldout_split,
    overfit_signal,
    saturation_warning,
)


class ReplayG(nn.Module):
    """A stand-in generator returning dataset digits (a perfect G), optionally blended with noise (a worse one)."""

    def __init__(self, images: torch.Tensor, noise: float = 0.0, only: torch.Tensor | None = None) -> None:
        super().__init__()
        self.z_dim, self.c_dim = 16, 0
        self.images = images if only is None else images[only]
        self.noise = noise

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        idx = (z[:, 0].abs() * 1e6).long() % len(self.images)
        x = self.images[idx].float() / 127.5 - 1
        return ((1 - self.noise) * x + self.noise * torch.tanh(z[:, :1, None, None] * torch.ones_like(x))).clamp(-1, 1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def monitor(ds, **kw) -> MetricMonitor:
    args = dict(metrics=["fd-digits", "modes"], every_kimg=1.0, n=200, stop_when=None, patience=None, dataset=ds)
    args.update(kw)
    return MetricMonitor(**args)


@pytest.mark.parametrize("text,expected", [
    ("fid<12", StopRule("fid", "<", 12.0)),
    (" modes >= 10 ", StopRule("modes", ">=", 10.0)),
    ("pr/precision>0.7", StopRule("pr/precision", ">", 0.7)),
    ("kid<=1e-3", StopRule("kid", "<=", 1e-3)),
])
def test_stop_rules_parse(text, expected):
    assert StopRule.parse(text) == expected


@pytest.mark.parametrize("text", ["fid<", "fid=3", "fid<12 or 1", "__import__('os')<3", "<3", "fid<<3"])
def test_malformed_stop_rules_are_refused(text):
    with pytest.raises(ValueError, match="malformed"):
        StopRule.parse(text)


def test_rule_must_watch_a_requested_metric(digits):
    with pytest.raises(ValueError, match="add it to --metrics"):
        monitor(digits, metrics=["modes"], stop_when="fd-digits<10")
    with pytest.raises(ValueError, match="unknown metric"):
        monitor(digits, metrics=["fd-digits", "nope"])


def test_schedule_best_and_stop_when(digits):
    m = monitor(digits, stop_when="fd-digits<5")
    assert not m.due(999) and m.due(1000)
    good = m.run(ReplayG(digits.data), 1000)
    assert set(good) >= {"fd-digits", "modes", "modes/kl", "modes/any"}
    assert good["fd-digits"] < 5 and good["modes"] == 10
    assert m.is_best("fd-digits") and m.is_best("modes") and not m.is_best("modes/kl")
    assert not m.due(1999) and m.due(2000)
    stop, why = m.should_stop()
    assert stop and "fd-digits" in why and "fd-digits<5" in why


@pytest.mark.parametrize(("name", "lower"), [("fid", True), ("modes", False), ("modes/kl", True),
                                             ("modes/kl_channels", True), ("modes/kl_dependence", True),
                                             ("modes/any", False), ("kid/std", True), ("modes/hq", False)])
def test_sub_values_know_which_way_is_better(name, lower):
    assert MetricMonitor._lower_is_better(name) is lower


def test_patience_counts_evaluations_without_improvement(digits):
    m = monitor(digits, metrics=["fd-digits"], patience=2)
    m.run(ReplayG(digits.data, noise=0.5), 1000)
    assert m.should_stop() == (False, "")
    better = m.run(ReplayG(digits.data, noise=0.1), 2000)
    assert m.is_best("fd-digits") and m.should_stop()[0] is False
    m.run(ReplayG(digits.data, noise=0.8), 3000)
    assert not m.is_best("fd-digits") and not m.should_stop()[0]
    m.run(ReplayG(digits.data, noise=0.9), 4000)
    stop, why = m.should_stop()
    assert stop and "patience 2" in why and f"{better['fd-digits']:.6g}" in why


def test_state_round_trips_through_json(digits):
    m = monitor(digits, metrics=["fd-digits"], patience=3)
    m.run(ReplayG(digits.data, noise=0.3), 1000)
    m.run(ReplayG(digits.data, noise=0.6), 2000)
    restored = monitor(digits, metrics=["fd-digits"], patience=3)
    restored.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert restored.state_dict() == m.state_dict()
    assert restored.stale == 1 and restored.next_due == 3000 and not restored.due(2500)


def test_generator_mode_is_restored(digits):
    G = ReplayG(digits.data)
    G.train()
    monitor(digits, metrics=["fd-digits"]).run(G, 1000)
    assert G.training


def test_class_coverage_and_its_warning(digits):
    ex = get_extractor("digits")
    full = class_coverage(ReplayG(digits.data), ex, n=300)
    assert full.shape == (10,) and full.sum() == 300 and coverage_warning(full) is None
    ones = class_coverage(ReplayG(digits.data, only=digits.labels == 1), ex, n=300)
    assert ones.argmax() == 1
    warning = coverage_warning(ones)
    assert warning is not None and "class coverage collapsed" in warning
    assert int(warning.split("collapsed: ")[1].split("/")[0]) >= 7  # most classes missing


def test_overfitting_signal_separates_memorised_from_heldout(digits):
    train, held = heldout_split(digits, 100, seed=0)
    assert len(train) == 4900 and len(held) == 100 and held.info["split"] == "heldout"
    assert train.class_prior is None and held.class_prior is None  # none to carry for the digits
    seen = {bytes(x.numpy()) for x in train.data[:200]}

    class MemorisingD(nn.Module):
        def forward(self, img, c=None):
            u8 = ((img + 1) * 127.5).round().to(torch.uint8)
            return torch.tensor([1.0 if bytes(x.numpy()) in seen else -1.0 for x in u8])

    s = overfit_signal(MemorisingD(), train.batch(torch.arange(200)), held.batch(torch.arange(100)))
    assert s == {"D/sign_train": 1.0, "D/sign_heldout": -1.0, "D/overfit_gap": 2.0}


def test_heldout_split_keeps_the_population_prior():
    stacked = load_dataset("stacked-mnist", max_images=500)
    train, held = heldout_split(stacked, 50, seed=0)
    assert np.array_equal(train.class_prior, stacked.class_prior)
    assert np.array_equal(held.class_prior, stacked.class_prior)


def test_saturation_warning_and_grad_norm():
    assert saturation_warning(torch.full((8,), 6.0), torch.full((8,), -6.0)) is not None
    assert saturation_warning(torch.zeros(8), torch.zeros(8)) is None
    lin = nn.Linear(3, 1, bias=False)
    assert grad_norm(lin) == 0.0
    lin.weight.grad = torch.tensor([[3.0, 4.0, 0.0]])
    assert grad_norm(lin) == pytest.approx(5.0)


def test_toy_sets_are_monitored_by_modes_only():
    ring = load_dataset("ring8")

    class RingG(nn.Module):  # puts every sample on one of the first `k` modes
        def __init__(self, k: int) -> None:
            super().__init__()
            self.z_dim, self.c_dim, self.k = 4, 0, k
            self.centers = torch.tensor(ring.info["modes"], dtype=torch.float32)

        def forward(self, z, c=None):
            idx = (z[:, 0].abs() * 1e6).long() % self.k
            return (self.centers[idx] + 0.02 * z[:, 1:3]).view(-1, 2, 1, 1)

    m = MetricMonitor(["modes"], 1.0, 400, "modes>=8", None, ring)
    assert m.run(RingG(2), 1000)["modes"] == 2 and not m.should_stop()[0]
    assert m.run(RingG(8), 2000)["modes"] == 8 and m.should_stop()[0]
    with pytest.raises(ValueError, match="point set"):
        MetricMonitor(["fid"], 1.0, 100, None, None, ring)


def test_training_loop_logs_metrics_keeps_the_best_and_stops(tmp_path):
    from ganforge.train.config import TrainConfig
    from ganforge.train.loop import Trainer

    cfg = TrainConfig(model="dcgan", data="digits", max_images=256, z_dim=8, g_kwargs={"width": 8},
                      d_kwargs={"width": 8}, batch=16, kimg=0.256, grid_kimg=0.128, snapshot_kimg=0.128,
                      grid_size=4, log_every=2, outdir=str(tmp_path), ema_kimg=0.05, threads=1,
                      metrics=["fd-digits", "modes"], metrics_every_kimg=0.064, metrics_n=64, stop_when="fd-digits<1e9")
    run = Trainer.from_config(cfg, progress=False).run()
    fd = [json.loads(line) for line in (run / "metric-fd-digits.jsonl").read_text().splitlines()]
    assert len(fd) == 1 and fd[0]["nimg"] == 64 and fd[0]["fd-digits"] > 0  # stopped at the first evaluation
    modes = [json.loads(line) for line in (run / "metric-modes.jsonl").read_text().splitlines()]
    assert modes and all("reference" in r["notes"] for r in modes)  # what the KL was measured against
    assert "notes" not in fd[0]  # a metric that makes no choices writes none
    assert (run / "checkpoints" / "best-fd-digits" / "config.json").is_file()
