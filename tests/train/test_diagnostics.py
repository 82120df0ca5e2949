"""Live diagnostics: written with every grid, warnings start and clear once, held-out reals feed the overfit signal."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.data import load_dataset
from ganforge.train.diagnostics import Diagnostics
from ganforge.train.loop import Trainer
from ganforge.train.monitor import saturation_message
from tests.train.test_monitor import ReplayG
from tests.train.test_resume import tiny


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_training_writes_diagnostics_with_heldout_split(tmp_path):
    run = Trainer.from_config(tiny(tmp_path, heldout=64, max_images=320), progress=False).run()
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["images"] == 256 and config["train"]["heldout"] == 64  # 320 - 64 held out
    records = [json.loads(line) for line in (run / "diagnostics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records][:1] == [0] and len(records) >= 3  # one per grid
    for r in records:
        assert len(r["coverage"]) == 10 and sum(r["coverage"]) == 1000
        assert -1.0 <= r["D/sign_train"] <= 1.0 and -1.0 <= r["D/sign_heldout"] <= 1.0
        assert r["D/overfit_gap"] == pytest.approx(r["D/sign_train"] - r["D/sign_heldout"])
        assert isinstance(r["warnings"], list)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"diagnostics/coverage/0", "diagnostics/coverage/classes", "diagnostics/D/overfit_gap"} <= tags


def test_no_diagnostics_and_bad_heldout(tmp_path):
    run = Trainer.from_config(tiny(tmp_path, diagnostics=False), progress=False).run()
    assert not (run / "diagnostics.jsonl").exists()
    with pytest.raises(ValueError, match="heldout"):
        tiny(tmp_path, heldout=-1)
    with pytest.raises(ValueError, match="leaves no training data"):
        Trainer.from_config(tiny(tmp_path, heldout=256), progress=False)


def test_warnings_start_once_and_clear(digits):
    diag = Diagnostics(digits, None, "non-saturating", torch.device("cpu"), n=300)
    collapsed = ReplayG(digits.data, only=digits.labels == 1)
    values, messages = diag.run(collapsed, None, {"D/real": 0.99, "D/fake": 0.01}, warn=False)  # kimg 0
    assert messages == [] and values["warnings"] == [] and values["coverage/classes"] <= 3
    values, messages = diag.run(collapsed, None, {"D/real": 0.99, "D/fake": 0.01})
    assert values["coverage"][1] > 200 and values["coverage/classes"] <= 3
    assert len(messages) == 2 and all(m.startswith("warning: ") for m in messages)
    assert any("coverage collapsed" in m for m in messages) and any("D saturates" in m for m in messages)
    assert len(values["warnings"]) == 2
    _, again = diag.run(collapsed, None, {"D/real": 0.99, "D/fake": 0.01})
    assert again == []  # still in force: not repeated
    values, cleared = diag.run(ReplayG(digits.data), None, {"D/real": 0.6, "D/fake": 0.4})
    assert values["warnings"] == [] and values["coverage/classes"] == 10
    assert cleared == ["cleared: coverage warning no longer holds", "cleared: saturation warning no longer holds"]


def test_saturation_only_judged_for_logistic_losses(digits):
    diag = Diagnostics(digits, None, "wgan-gp", torch.device("cpu"), n=100)
    _, messages = diag.run(ReplayG(digits.data), None, {"D/real": 0.99, "D/fake": 0.01})
    assert not any("saturates" in m for m in messages)
    assert saturation_message(0.99, 0.01) is not None and saturation_message(0.7, 0.3) is None


def test_coverage_skipped_where_the_digit_classifier_does_not_apply():
    faces_like = load_dataset("digits", resolution=32)
    diag = Diagnostics(faces_like, None, "non-saturating", torch.device("cpu"))
    values, _ = diag.run(ReplayG(faces_like.data), None, {})
    assert "coverage" not in values
