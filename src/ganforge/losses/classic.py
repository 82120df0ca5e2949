"""Classic adversarial losses on logits ``l = D(x)``:

- ``minimax`` (Goodfellow et al. 2014, algorithm 1): D maximises ``log D(x) + log(1 - D(G(z)))``; G *minimises*
  ``log(1 - D(G(z)))`` (saturating: weak gradients when D wins early).
- ``non-saturating`` (same paper, sec. 3): G maximises ``log D(G(z))`` instead.
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D ``relu(1 - l_real) + relu(1 + l_fake)``, G ``-l_fake``.
- ``wgan-gp`` (Gulrajani et al. 2017): D ``l_fake - l_real + lambda (||grad D(x_hat)|| - 1)^2`` plus ProGAN's drift
  ``eps * l_real^2``; G ``-l_fake``.
- ``relativistic`` (the relativistic pairing GAN, RpGAN: Jolicoeur-Martineau, "The relativistic discriminator",
  ICLR 2019; as R3GAN uses it with R1 + R2, Huang et al., "The GAN is dead; long live the GAN!", NeurIPS 2024):
  each real is paired with one fake of the batch, D ``softplus(l_fake - l_real)``, G ``softplus(l_real - l_fake)``
  with ``l_real`` fixed. D judges whether the real is more real than its fake, not where a sample lies, which the
  R3GAN paper shows removes mode dropping that the logistic loss keeps. The G phase therefore also runs D on reals.

Any of them takes ``r1_gamma``: the zero-centred gradient penalty on reals, ``gamma / 2 * E ||grad_x D(x)||^2``
(R1, Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do actually Converge?", ICML 2018), computed in
the D phase of every step. For a packed D (PacGAN) the gradient is that of each pack's logit, so the penalty is the
squared norm over the whole pack, averaged over packs. ``r2_gamma`` is the same penalty on generated images (R2,
Mescheder et al. 2018; R3GAN keeps both, ``gamma`` equal). With ``reg_interval`` I > 1 both penalties leave the D
phase for their own phase, ``Dreg``, run every I steps on a fresh batch with weight I (lazy regularisation, StyleGAN2
sec. 3.1; the loop rescales D's lr and betas by I / (I + 1)): the double backward they need costs about as much as
the rest of the step, so I = 16 makes a step much cheaper.

With ``sigmoid(l) = D``: ``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)``.

``augment="diffaugment"`` (Zhao et al. 2020) passes every image D sees, real and generated, in both phases, through
:class:`~ganforge.augment.DiffAugment` (strength ``augment_p``, policy ``augment_policy``), so any classic family
can train data-efficiently (the train command's ``--augment diffaugment``); the gradient penalty stays on plain
images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.augment import DIFFAUGMENT_POLICY, make_diffaugment
from ganforge.losses.base import Batch, Loss, Phase


def d_loss_logistic(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``-(log D(x) + log(1 - D(G(z))))`` averaged; used by minimax and non-saturating alike."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_minimax(fake: torch.Tensor) -> torch.Tensor:
    """``log(1 - D(G(z)))`` (to be minimised)."""
    return -F.softplus(fake).mean()


def g_loss_nonsaturating(fake: torch.Tensor) -> torch.Tensor:
    """``-log D(G(z))``."""
    return F.softplus(-fake).mean()


def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def d_loss_wasserstein(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def g_loss_wasserstein(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_loss_relativistic(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """RpGAN's D: ``-log sigmoid(l_real - l_fake)`` averaged over the pairs (``real``, ``fake`` both ``[N]``)."""
    return F.softplus(fake - _paired(real, fake)).mean()


def g_loss_relativistic(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """RpGAN's G: ``-log sigmoid(l_fake - l_real)``; ``real`` is treated as a constant."""
    return F.softplus(_paired(real, fake).detach() - fake).mean()


def _paired(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``real`` unchanged once it is checked to pair one-to-one with ``fake``."""
    if real.shape != fake.shape:
        raise ValueError(f"the relativistic loss pairs each real with one generated image, got logits of shapes "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}: give D as many of each per batch")
    return real


def gradient_penalty(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor | None, target: float = 1.0
) -> torch.Tensor:
    """``mean((||grad_x D(x_hat)||_2 - target)^2)`` at random interpolates ``x_hat`` of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    out = D(x_hat, c)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - target).square().mean()


def r1_penalty(
    D: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], real: torch.Tensor, c: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``E ||grad_x D(x)||^2`` over D's outputs (one per sample, or per pack), and the logits ``D(real)`` it took.

    ``real [N, C, H, W]``; returns ``(penalty [], logits [N / pack])`` with the graph kept for ``backward``.
    """
    x = real.detach().requires_grad_(True)
    logits = D(x, c)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.square().sum() / logits.shape[0], logits


def is_penalty_weight(value: object) -> bool:
    """Whether ``value`` can weight a gradient penalty (``r1_gamma``, ``r2_gamma``): a number >= 0, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def reg_interval_problem(reg_interval: object, r1_gamma: object, r2_gamma: object) -> str | None:
    """What is wrong with ``reg_interval`` beside these penalty weights, or None: it must be an integer >= 1, and above
    1 only when a penalty is on (it spaces them out)."""
    if isinstance(reg_interval, bool) or not isinstance(reg_interval, int) or reg_interval < 1:
        return f"reg_interval must be an integer >= 1 (steps between R1/R2 evaluations), got {reg_interval!r}"
    if reg_interval > 1 and not (r1_gamma or r2_gamma):
        return (f"reg_interval {reg_interval} spaces out the R1/R2 penalties, but r1_gamma and r2_gamma are both 0: "
                "set one, or use reg_interval 1 (--reg-interval 1)")
    return None


KINDS = ("minimax", "non-saturating", "hinge", "wgan-gp", "relativistic")
D_LOSSES = {
    "minimax": d_loss_logistic,
    "non-saturating": d_loss_logistic,
    "hinge": d_loss_hinge,
    "wgan-gp": d_loss_wasserstein,
    "relativistic": d_loss_relativistic,
}
G_LOSSES = {
    "minimax": g_loss_minimax,
    "non-saturating": g_loss_nonsaturating,
    "hinge": g_loss_wasserstein,
    "wgan-gp": g_loss_wasserstein,
}


class AdversarialLoss(Loss):
    """Loss for the classic families: ``k`` D phases then one G phase per training step."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        kind: str = "non-saturating",
        d_steps: int = 1,
        gp_weight: float = 10.0,
        drift: float = 0.001,
        augment: str = "none",
        augment_p: float = 1.0,
        augment_policy: str = DIFFAUGMENT_POLICY,
        r1_gamma: float = 0.0,
        r2_gamma: float = 0.0,
        reg_interval: int = 1,
    ) -> None:
        self.augment = make_diffaugment(augment, augment_p, augment_policy)
        if kind not in KINDS:
            raise ValueError(f"unknown loss kind {kind!r}; expected one of {KINDS}")
        if d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {d_steps}")
        for name, gamma in (("r1_gamma", r1_gamma), ("r2_gamma", r2_gamma)):
            if not is_penalty_weight(gamma):
                raise ValueError(f"{name} must be a number >= 0, got {gamma!r}")
        if problem := reg_interval_problem(reg_interval, r1_gamma, r2_gamma):
            raise ValueError(problem)
        self.G, self.D, self.kind = G, D, kind
        self.gp_weight, self.drift = gp_weight, drift
        self.r1_gamma, self.r2_gamma = float(r1_gamma), float(r2_gamma)
        self.lazy = reg_interval > 1
        self.phases = [Phase("Dmain", "D", repeat=d_steps, counts_images=True)]
        if self.lazy:
            self.phases.append(Phase("Dreg", "D", interval=reg_interval))
        self.phases.append(Phase("Gmain", "G"))

    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        if phase == "Gmain":
            fake_logits = self.run_D(self.G(batch.z, batch.gen_c), batch.gen_c)
            if self.kind == "relativistic":
                with torch.no_grad():
                    real_logits = self.run_D(batch.real, batch.real_c)
                g = g_loss_relativistic(fake_logits, real_logits)
            else:
                g = G_LOSSES[self.kind](fake_logits)
            (g * gain).backward()
            return {"loss/G": g.item()}
        if phase == "Dmain":
            return self._d_main(batch, gain)
        if phase == "Dreg":
            with torch.no_grad():
                fake = self.G(batch.z, batch.gen_c)
            real_logits, fake_logits, terms, stats = self._penalised_logits(batch, fake, self.r1_gamma, self.r2_gamma)
            reg = 0 * (real_logits.sum() + fake_logits.sum())  # weight 0: every D parameter gets a gradient
            for term in terms:
                reg = reg + term
            (reg * gain).backward()
            return stats
        raise ValueError(f"unknown phase {phase!r}")

    def _d_main(self, batch: Batch, gain: float) -> dict[str, float]:
        """The D loss on a real and a generated batch, with the R1/R2 penalties unless they are lazy."""
        with torch.no_grad():
            fake = self.G(batch.z, batch.gen_c)
        gammas = (0.0, 0.0) if self.lazy else (self.r1_gamma, self.r2_gamma)
        real_logits, fake_logits, terms, stats = self._penalised_logits(batch, fake, *gammas)
        d = D_LOSSES[self.kind](real_logits, fake_logits)
        if self.kind == "wgan-gp":
            gp = gradient_penalty(self.D, batch.real, fake, batch.real_c)
            stats["loss/gp"] = gp.item()
            d = d + self.gp_weight * gp + self.drift * real_logits.square().mean()
        for term in terms:
            d = d + term
        (d * gain).backward()
        stats.update(_logit_stats(d, real_logits, fake_logits))
        return stats

    def _penalised_logits(
        self, batch: Batch, fake: torch.Tensor, r1_gamma: float, r2_gamma: float
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], dict[str, float]]:
        """D logits of the reals and of ``fake``, the penalty terms ``gamma / 2 * R1`` and ``gamma / 2 * R2`` (those
        whose gamma is > 0) and their stats."""
        stats, terms = {}, []
        real_logits, r1 = self.logits_and_penalty(batch.real, batch.real_c, r1_gamma)
        fake_logits, r2 = self.logits_and_penalty(fake, batch.gen_c, r2_gamma)
        for name, gamma, penalty in (("loss/r1", r1_gamma, r1), ("loss/r2", r2_gamma, r2)):
            if penalty is not None:
                stats[name] = penalty.item()
                terms.append(0.5 * gamma * penalty)
        return real_logits, fake_logits, terms, stats

    def logits_and_penalty(
        self, img: torch.Tensor, c: torch.Tensor | None, gamma: float
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D logits of ``img``, and the zero-centred gradient penalty on it when ``gamma > 0`` (else ``None``)."""
        if gamma > 0:
            penalty, logits = r1_penalty(self.run_D, img, c)
            return logits, penalty
        return self.run_D(img, c), None

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """D logits ``[N]`` of ``img [N, C, H, W]``, augmented first when the loss augments."""
        return self.D(img if self.augment is None else self.augment(img), c)


def _logit_stats(d: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """D loss, mean D(x) and D(G(z)) as probabilities, and sign(D(x)) (ADA's r_t overfitting signal)."""
    return {
        "loss/D": d.item(),
        "D/real": torch.sigmoid(real.detach()).mean().item(),
        "D/fake": torch.sigmoid(fake.detach()).mean().item(),
        "D/real_sign": real.detach().sign().mean().item(),
    }
