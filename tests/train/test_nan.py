"""A NaN/inf loss stops the step and rolls back to the last good checkpoint with a clear message."""

from __future__ import annotations

import pytest
import torch

from ganforge.losses.classic import AdversarialLoss
from ganforge.train.loop import NonFiniteError, Trainer
from tests.train.test_resume import tiny


class FlakyLoss(AdversarialLoss):
    def __init__(self, base: AdversarialLoss, bad_calls: set[int]) -> None:
        self.__dict__.update(base.__dict__)
        self.calls, self.bad = 0, bad_calls

    def accumulate_gradients(self, phase, batch, gain):
        self.calls += 1
        stats = super().accumulate_gradients(phase, batch, gain)
        if self.calls in self.bad:
            stats["loss/D" if phase == "Dmain" else "loss/G"] = float("nan")
        return stats


def test_rollback_then_continue(tmp_path, capsys):
    t = Trainer(tiny(tmp_path), progress=False)
    t.loss = FlakyLoss(t.loss, {5})
    before = {k: v.clone() for k, v in t.nets["G"].state_dict().items()}
    run = t.run()
    assert t.nimg >= 128 and t.rollbacks == 1
    assert "Rolling back to" in capsys.readouterr().err
    assert any(not torch.equal(before[k], v) for k, v in t.nets["G"].state_dict().items())
    assert (run / "checkpoints").is_dir()


def test_persistent_nan_stops_with_advice(tmp_path):
    t = Trainer(tiny(tmp_path), progress=False)
    t.loss = FlakyLoss(t.loss, set(range(3, 1000)))
    with pytest.raises(NonFiniteError, match="Lower the learning rates"):
        t.run()
