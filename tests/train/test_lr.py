"""The learning-rate ramp-down: a half cosine over the final fraction of training, on every optimiser, continued
exactly across a resume, and off by default."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.checkpoint import list_checkpoints
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer
from ganforge.train.lr import rampdown_factor, scale_learning_rates
from tests.train.test_loop import _StopAfter
from tests.train.test_resume import tiny, weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_factor_is_one_then_a_half_cosine_to_zero():
    assert rampdown_factor(500, 1000, 0.0) == 1.0
    assert rampdown_factor(500, 1000, 0.5) == 1.0
    assert rampdown_factor(750, 1000, 0.5) == pytest.approx(0.5)
    assert rampdown_factor(500 + 125, 1000, 0.5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert rampdown_factor(1000, 1000, 0.5) == pytest.approx(0.0)
    assert rampdown_factor(2000, 1000, 0.5) == pytest.approx(0.0)  # past the end (a run extended by resume)
    assert rampdown_factor(0, 1000, 1.0) == 1.0


def test_scaling_keeps_the_built_learning_rate():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.01)
    scale_learning_rates({"G": opt}, 0.5)
    scale_learning_rates({"G": opt}, 0.25)  # relative to the built lr, not compounded
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0025) and opt.param_groups[0]["initial_lr"] == 0.01


def test_a_run_ends_at_zero_learning_rate_and_off_leaves_it_alone(tmp_path):
    t = Trainer.from_config(tiny(tmp_path / "on", lr_rampdown=0.5, snapshot_kimg=10.0), progress=False)
    t.run()
    last = rampdown_factor(t.nimg - 16, 128, 0.5)  # the factor of the last step, taken before its images counted
    assert all(g["lr"] == pytest.approx(g["initial_lr"] * last) for o in t.opts.values() for g in o.param_groups)
    off = Trainer.from_config(tiny(tmp_path / "off", snapshot_kimg=10.0), progress=False)
    off.run()
    assert all(g["lr"] == 2e-4 for o in off.opts.values() for g in o.param_groups)


def test_a_stopped_and_resumed_run_follows_the_same_curve_bitwise(tmp_path):
    full = Trainer.from_config(tiny(tmp_path / "full", lr_rampdown=0.75), progress=False).run()
    t = Trainer.from_config(tiny(tmp_path / "half", lr_rampdown=0.75, snapshot_kimg=10.0), progress=False)
    t.events.insert(0, _StopAfter(64))  # stops halfway into the ramp; the snapshot event saves the stopped state
    half = t.run()
    resumed = Trainer.from_config(tiny(tmp_path / "half", lr_rampdown=0.75), resume=half, progress=False).run()
    a, b = list_checkpoints(full)[-1], list_checkpoints(resumed)[-1]
    assert a.name == b.name
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[n][k], wb[n][k]) for n in wa for k in wa[n])


def test_the_fraction_is_checked():
    with pytest.raises(ValueError, match="lr_rampdown"):
        TrainConfig(lr_rampdown=1.5)


def test_a_finished_run_lengthened_with_a_ramp_equals_the_straight_run_with_that_ramp(tmp_path):
    # how BENCHMARKS' Stacked MNIST ramps were measured: a run ends without a ramp, is resumed to a longer length
    # with one that starts after its end, and is then the run that the longer length and the ramp give from scratch
    straight = Trainer.from_config(tiny(tmp_path / "straight", kimg=0.256, lr_rampdown=0.5), progress=False).run()
    short = Trainer.from_config(tiny(tmp_path / "short", kimg=0.128), progress=False).run()
    longer = Trainer.from_config(tiny(tmp_path / "short", kimg=0.256, lr_rampdown=0.5), resume=short,
                                 progress=False).run()
    a, b = list_checkpoints(straight)[-1], list_checkpoints(longer)[-1]
    assert a.name == b.name
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[n][k], wb[n][k]) for n in wa for k in wa[n])
