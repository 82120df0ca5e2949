"""Each classic loss equals its formula on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganforge.losses import Batch, build_loss
from ganforge.losses.classic import (
    d_loss_hinge,
    d_loss_logistic,
    d_loss_wasserstein,
    g_loss_minimax,
    g_loss_nonsaturating,
    gradient_penalty,
)

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


def test_logistic_d_is_goodfellow_value():
    want = -(mean([math.log(sig(r)) for r in REAL.tolist()]) + mean([math.log(1 - sig(f)) for f in FAKE.tolist()]))
    assert d_loss_logistic(REAL, FAKE).item() == pytest.approx(want, rel=1e-6)


def test_minimax_g_is_log_one_minus_d():
    want = mean([math.log(1 - sig(f)) for f in FAKE.tolist()])
    assert g_loss_minimax(FAKE).item() == pytest.approx(want, rel=1e-6)


def test_nonsaturating_g_is_minus_log_d():
    want = -mean([math.log(sig(f)) for f in FAKE.tolist()])
    assert g_loss_nonsaturating(FAKE).item() == pytest.approx(want, rel=1e-6)


def test_hinge():
    want = mean([max(0, 1 - r) for r in REAL.tolist()]) + mean([max(0, 1 + f) for f in FAKE.tolist()])
    assert d_loss_hinge(REAL, FAKE).item() == pytest.approx(want, rel=1e-6)


def test_wasserstein():
    assert d_loss_wasserstein(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item())


class Linear(nn.Module):
    """D(x) = <a, x>: its input gradient has norm ||a|| everywhere."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, x, c=None):
        return (x.flatten(1) * self.a).sum(1)


def test_gradient_penalty_closed_form():
    a = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||a|| = 5
    D = Linear(a)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert gradient_penalty(D, real, fake, None).item() == pytest.approx((5 - 1) ** 2, rel=1e-5)


def test_minimax_vs_nonsaturating_gradients_on_confident_d():
    """The saturation Goodfellow describes: when D(G(z)) ~ 0, minimax gives G a tiny gradient, NS a large one."""
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_loss_minimax(fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss_nonsaturating(fake), fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_d_steps_repeats_the_d_phase():
    G = nn.Linear(2, 4)
    loss = build_loss("minimax", {"G": G, "D": Linear(torch.ones(4))}, d_steps=3)
    assert [(p.name, p.repeat) for p in loss.phases] == [("Dmain", 3), ("Gmain", 1)]
    with pytest.raises(ValueError, match="d_steps"):
        build_loss("minimax", {"G": G, "D": Linear(torch.ones(4))}, d_steps=0)


def test_wgan_gp_phase_adds_penalty_and_drift():
    class G(nn.Module):
        def forward(self, z, c=None):
            return z.view(-1, 1, 2, 2)

    D = Linear(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    loss = build_loss("wgan-gp", {"G": G(), "D": D}, gp_weight=10.0, drift=0.001)
    real, z = torch.randn(5, 1, 2, 2), torch.randn(5, 4)
    stats = loss.accumulate_gradients("Dmain", Batch(real, None, z, None), 1.0)
    r, f = D(real), D(G()(z))
    want = (f.mean() - r.mean()).item() + 10 * 16 + 0.001 * r.square().mean().item()
    assert stats["loss/D"] == pytest.approx(want, rel=1e-5)
