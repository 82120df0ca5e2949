"""A NaN/inf loss or gradient stops the step and rolls back to the last good checkpoint with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import load_state
from ganforge.losses.classic import AdversarialLoss
from ganforge.train.loop import NonFiniteError, Trainer
from tests.train.test_resume import tiny


class FlakyLoss(AdversarialLoss):
    """Reports a NaN loss on the given calls (the gradients stay finite)."""

    def __init__(self, base: AdversarialLoss, bad_calls: set[int]) -> None:
        self.__dict__.update(base.__dict__)
        self.calls, self.bad = 0, bad_calls

    def accumulate_gradients(self, phase, batch, gain):
        self.calls += 1
        stats = super().accumulate_gradients(phase, batch, gain)
        if self.calls in self.bad:
            stats["loss/D" if phase == "Dmain" else "loss/G"] = float("nan")
        return stats


def poison_gradient(param: torch.nn.Parameter, bad_calls: set[int]) -> dict[str, int]:
    """Make ``param``'s gradient NaN during backward on the given backward passes (counted from 1); the loss values
    stay finite, so only the gradient check can see it. Returns the live call counter."""
    calls = {"n": 0}

    def hook(grad: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return torch.full_like(grad, float("nan")) if calls["n"] in bad_calls else grad

    param.register_hook(hook)
    return calls


def spy_restores(t: Trainer) -> list[tuple[int, Path]]:
    """Record ``(nimg when restoring, checkpoint)`` for every rollback."""
    seen: list[tuple[int, Path]] = []
    restore = t._restore

    def spy(path):
        seen.append((t.nimg, Path(path)))
        restore(path)

    t._restore = spy
    return seen


def test_rollback_then_continue(tmp_path, capsys):
    t = Trainer.from_config(tiny(tmp_path), progress=False)
    t.loss = FlakyLoss(t.loss, {5})
    before = {k: v.clone() for k, v in t.nets["G"].state_dict().items()}
    run = t.run()
    assert t.nimg >= 128 and t.rollbacks == 1
    assert "Rolling back to" in capsys.readouterr().err
    assert any(not torch.equal(before[k], v) for k, v in t.nets["G"].state_dict().items())
    assert (run / "checkpoints").is_dir()


def test_nan_gradient_rolls_back_to_the_last_good_checkpoint(tmp_path, capsys):
    # batch 16, a checkpoint every 64 images: D's 6th backward pass is in the step at 80 images, after ckpt-64
    t = Trainer.from_config(tiny(tmp_path), progress=False)
    D = t.nets["D"]
    weight = next(D.parameters())
    calls = poison_gradient(weight, {6})
    restores = spy_restores(t)
    run = t.run()
    assert calls["n"] > 6, "the poisoned backward pass ran"
    assert t.rollbacks == 1 and len(restores) == 1
    nimg_at_nan, ckpt = restores[0]
    assert nimg_at_nan == 80, "caught in the step whose gradient was NaN, before any optimiser step applied it"
    assert ckpt.name == f"ckpt-{64:012d}" and load_state(ckpt)["nimg"] == 64  # went back 16 images
    err = capsys.readouterr().err
    assert "phase Dmain: non-finite loss or gradient" in err and f"Rolling back to {ckpt}" in err
    assert t.nimg == 128 and (run / "checkpoints" / f"ckpt-{128:012d}").is_dir()  # and finished the run
    for name, net in t.nets.items():
        assert all(bool(torch.isfinite(p).all()) for p in net.parameters()), f"{name} took a NaN step"


def test_persistent_nan_stops_with_advice(tmp_path):
    t = Trainer.from_config(tiny(tmp_path), progress=False)
    t.loss = FlakyLoss(t.loss, set(range(3, 1000)))
    with pytest.raises(NonFiniteError, match="Lower the learning rates"):
        t.run()


def test_persistent_nan_gradient_stops_with_advice(tmp_path):
    t = Trainer.from_config(tiny(tmp_path), progress=False)
    poison_gradient(next(t.nets["G"].parameters()), set(range(2, 1000)))
    restores = spy_restores(t)
    with pytest.raises(NonFiniteError, match="phase Gmain: non-finite loss or gradient.*Lower the learning rates"):
        t.run()
    assert len(restores) == 3  # MAX_ROLLBACKS attempts, then the error


def test_a_huge_finite_gradient_is_not_called_non_finite(tmp_path):
    # 1e30 squared overflows float32, so the gradient norm is inf although every element is finite: the element-wise
    # check must tell the two apart instead of rolling back a healthy step
    t = Trainer.from_config(tiny(tmp_path), progress=False)
    weight = next(t.nets["D"].parameters())
    weight.register_hook(lambda g: torch.full_like(g, 1e30))
    stats = t.train_step()
    assert stats["grad_norm/D"] == float("inf") and t.rollbacks == 0
    assert all(bool(torch.isfinite(p).all()) for p in t.nets["D"].parameters())
