"""The loss contract: loss objects own the maths, the training loop owns the schedule.

A loss lists its ``phases`` (which network each one optimises, how often it runs, how many times in a row) and
``accumulate_gradients(phase, batch, gain)`` computes that phase's loss for one batch and calls ``backward`` on it,
returning scalar statistics for logging. The loop zeroes gradients, steps the phase's optimizer and handles
distribution, so a loss is a few lines of maths (after NVlabs/stylegan3 ``training/loss.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ganforge.registry import Registry


@dataclass(frozen=True)
class Phase:
    """One optimisation phase.

    ``network``: key of the network (and its optimizer) this phase updates, e.g. ``"G"`` or ``"D"``.
    ``interval``: run every ``interval`` steps (lazy regularisation uses 4 or 16; the loss then multiplies its
    penalty by ``gain = interval``). ``repeat``: consecutive runs per step, each on a fresh batch (Goodfellow's k).
    ``counts_images``: each run of this phase adds its real batch to the images shown to D (``nimg``, the unit of
    training length); a loss with no counting phase advances ``nimg`` by one batch per step.
    """

    name: str
    network: str
    interval: int = 1
    repeat: int = 1
    counts_images: bool = False


@dataclass
class Batch:
    """What one phase sees: real samples ``[B, C, H, W]`` in [-1, 1], their labels, latents and generator labels.

    ``extra`` carries family-specific inputs (e.g. a second domain for translation models).
    """

    real: torch.Tensor
    real_c: torch.Tensor | None
    z: torch.Tensor
    gen_c: torch.Tensor | None
    extra: dict[str, Any] = field(default_factory=dict)


class Loss:
    """Base class. Subclasses set ``phases`` and implement ``accumulate_gradients``.

    ``state_dict``/``load_state_dict`` hold any state that must survive a resume (e.g. the ADA probability);
    ``after_step`` lets a loss adapt once per training step (e.g. ADA's p update) and returns stats to log.
    """

    phases: list[Phase]

    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        raise NotImplementedError

    def after_step(self, step: int, nimg: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state to restore, got keys {sorted(state)}")

    def reg_interval(self, network: str) -> int | None:
        """Interval of the lazy regularisation phase of ``network`` (for the optimizer's lr/beta rescaling)."""
        intervals = [p.interval for p in self.phases if p.network == network and p.interval > 1]
        return max(intervals) if intervals else None


# Factory signature: (networks: dict[str, nn.Module], **kwargs) -> Loss
LOSSES: Registry[Callable[..., Loss]] = Registry("loss")


def register_loss(name: str) -> Callable[[Callable[..., Loss]], Callable[..., Loss]]:
    """Decorator registering a loss factory ``(networks, **kwargs) -> Loss`` under ``name``."""
    return LOSSES.register(name)
