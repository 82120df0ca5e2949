"""Exponential moving average of generator weights (Karras et al. 2018, sec. 4.1 footnote; StyleGAN2-ADA's G_ema).

The decay per step is ``0.5 ** (batch / (ema_kimg * 1000))``: the EMA's half-life is ``ema_kimg`` thousand images,
independent of the batch size. With ``rampup`` the half-life grows with training (``min(ema_kimg, nimg * rampup)``)
so early, fast-changing weights are not averaged over a stale past. Buffers (e.g. batch-norm statistics, w_avg)
are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, batch: int, nimg: int, ema_kimg: float, rampup: float | None) -> float:
    """Blend ``net`` into ``ema`` in place; returns the decay ``beta`` used."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(ema.parameters(), net.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)
    return beta
