"""Learning-rate ramp-down: both learning rates fall to zero along a half cosine over the last part of training.

A GAN's samples keep jittering at a fixed learning rate because G and D chase each other; letting the step size go
to zero at the end settles G. The curve is the cosine annealing of SGDR (Loshchilov & Hutter 2017) without restarts,
applied to the final part of training only. ``TrainConfig.lr_rampdown`` is the fraction of ``kimg`` it spans (0: off,
1: all of training). The factor depends only on the images shown, so a resumed run continues on the same curve.
"""

from __future__ import annotations

import math

import torch


def rampdown_factor(nimg: int, total_nimg: int, fraction: float) -> float:
    """1 until ``(1 - fraction) * total_nimg`` images, then a half cosine down to 0 at ``total_nimg``."""
    if fraction <= 0 or total_nimg <= 0:
        return 1.0
    start = (1.0 - fraction) * total_nimg
    if nimg <= start:
        return 1.0
    t = min(1.0, (nimg - start) / (fraction * total_nimg))
    return 0.5 * (1.0 + math.cos(math.pi * t))


def scale_learning_rates(opts: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Set every parameter group's lr to ``factor`` times the lr it was built with (kept as ``initial_lr``, which
    the optimiser's state dict carries across a resume)."""
    for opt in opts.values():
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
