"""The FastGAN training loss (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot
Image Synthesis", sec. 3.2 and eq. 2-4): hinge adversarial loss plus the discriminator's self-supervised
reconstruction term, with DiffAugment (Zhao et al. 2020) on every image D sees.

- ``Dmain``: ``relu(1 - D(T(x))) + relu(1 + D(T(G(z)))) + recon_weight * sum_k L(dec_k(f_k(T(x))), t_k(T(x)))``, the
  reconstruction on real images only; ``L`` is a plain L1 (or L2) distance because the paper's LPIPS weights cannot
  be had offline. ``T`` is DiffAugment: the decoders reconstruct the augmented real, as in the paper's code.
  With ``recon_interval`` k > 1 the term is computed on every k-th step only, weighted k times (lazy, as StyleGAN2
  computes R1 every 16 steps). At 64 px on one CPU core k = 4 gave 1.13x the images/s and a worse FID per image,
  even to slightly ahead per hour over two pairs of runs (BENCHMARKS.md, twenty-first session): an option.
- ``Gmain``: ``-D(T(G(z)))``.

Needs a discriminator with ``reconstruct(img, c) -> (logits, [(reconstruction, target), ...])``
(``ganforge.models.fastgan.FastGANDiscriminator``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.losses.base import Batch, Loss, Phase, register_loss
from ganforge.losses.classic import AdversarialLoss, d_loss_hinge, g_loss_wasserstein

RECON_DISTANCES = ("l1", "l2")


class FastGANLoss(AdversarialLoss):
    """Hinge loss + D's reconstruction term, with DiffAugment by default.

    Args:
        recon_weight: weight of the reconstruction term in D's loss (1 in the paper; 0 drops the decoders).
        recon: ``"l1"`` or ``"l2"`` distance between reconstruction and target.
        recon_interval: compute the reconstruction on every ``recon_interval``-th training step, ``recon_interval``
            times heavier (1: every step, as in the paper).
        augment, augment_p, augment_policy: as :class:`~ganforge.losses.classic.AdversarialLoss`, but
            ``"diffaugment"`` at full strength by default.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        recon_weight: float = 1.0,
        recon: str = "l1",
        recon_interval: int = 1,
        augment: str = "diffaugment",
        augment_p: float = 1.0,
        augment_policy: str = "color,translation,cutout",
    ) -> None:
        if recon_weight < 0:
            raise ValueError(f"recon_weight must be >= 0, got {recon_weight}")
        if recon not in RECON_DISTANCES:
            raise ValueError(f"recon must be one of {RECON_DISTANCES}, got {recon!r}")
        if isinstance(recon_interval, bool) or not isinstance(recon_interval, int) or recon_interval < 1:
            raise ValueError(f"recon_interval must be an integer >= 1, got {recon_interval!r}")
        if recon_weight > 0 and not callable(getattr(D, "reconstruct", None)):
            raise ValueError(f"the fastgan loss needs a discriminator with .reconstruct(); got {type(D).__name__}")
        super().__init__(G, D, kind="hinge", augment=augment, augment_p=augment_p, augment_policy=augment_policy)
        self.recon_weight, self.recon, self.recon_interval = float(recon_weight), recon, recon_interval
        self.step = 0  # the training step being run (after_step keeps it; saved for resume)
        self.phases = [Phase("Dmain", "D", counts_images=True), Phase("Gmain", "G")]

    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        if phase == "Gmain":
            g = g_loss_wasserstein(self.run_D(self.G(batch.z, batch.gen_c), batch.gen_c))
            (g * gain).backward()
            return {"loss/G": g.item()}
        if phase != "Dmain":
            raise ValueError(f"unknown phase {phase!r}")
        with torch.no_grad():
            fake = self.G(batch.z, batch.gen_c)
        real = batch.real if self.augment is None else self.augment(batch.real)
        stats: dict[str, float] = {}
        weight = self.recon_weight * self.recon_interval if self.step % self.recon_interval == 0 else 0.0
        if weight > 0:
            real_logits, pairs = self.D.reconstruct(real, batch.real_c)
            rec = sum(self.distance(r, t) for r, t in pairs)
            stats["loss/recon"] = rec.item()
        else:
            real_logits, rec = self.D(real, batch.real_c), torch.zeros([])
        fake_logits = self.run_D(fake, batch.gen_c)
        d = d_loss_hinge(real_logits, fake_logits) + weight * rec
        (d * gain).backward()
        stats.update({"loss/D": d.item(), "D/real": torch.sigmoid(real_logits.detach()).mean().item(),
                      "D/fake": torch.sigmoid(fake_logits.detach()).mean().item(),
                      "D/real_sign": real_logits.detach().sign().mean().item()})
        return stats

    def after_step(self, step: int, nimg: int) -> dict[str, float]:
        self.step = step + 1
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the step count; a checkpoint from before ``recon_interval`` existed holds ``{}``."""
        unknown = set(state) - {"step"}
        if unknown:
            raise ValueError(f"FastGANLoss state has unknown keys {sorted(unknown)}")
        self.step = int(state.get("step", 0))

    def distance(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean L1 or L2 distance of ``[N, C, H, W]`` images; the target carries no gradient."""
        fn = F.l1_loss if self.recon == "l1" else F.mse_loss
        return fn(reconstruction, target.detach())


@register_loss("fastgan")
def _fastgan(networks: dict[str, nn.Module], **kwargs) -> Loss:
    return FastGANLoss(networks["G"], networks["D"], **kwargs)
