"""The StyleGAN2 training loss (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), with
adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with Limited Data").

Phases, as in the reference training loop:

- ``Gmain``: non-saturating logistic loss ``softplus(-D(G(z)))`` (Goodfellow et al. 2014, sec. 3).
- ``Greg`` (every ``pl_interval`` = 4 steps): path-length regularisation (StyleGAN2 sec. 3.2, eq. 4):
  ``(||J_w^T y||_2 - a)^2`` with ``y`` Gaussian image-space noise scaled by ``1/sqrt(H W)`` and ``a`` an EMA of the
  lengths (decay 0.01), on half the batch.
- ``Dmain``: logistic loss ``softplus(D(G(z))) + softplus(-D(x))``.
- ``Dreg`` (every ``r1_interval`` = 16 steps): R1 penalty ``gamma / 2 * ||grad_x D(x)||^2`` on real images
  (Mescheder et al. 2018).

Lazy regularisation (StyleGAN2 sec. 3.1): a regulariser run every ``I`` steps is multiplied by ``I``, which the loop
passes as ``gain``; the loop also rescales the optimizer's lr and betas by ``I / (I + 1)`` (``Loss.reg_interval``).
Style-mixing regularisation (StyleGAN sec. 3.1): with probability 0.9 a batch's ws switch to those of a second z
after a random layer. With augmentation (``augment="ada"`` or ``"fixed"``) every image D sees, real or generated,
passes through the differentiable :class:`~ganforge.augment.AugmentPipe` first; with ``"ada"`` its
probability follows the r_t heuristic, updated in ``after_step`` and saved in ``state_dict``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.augment import AUGMENT_MODES, AdaController, AugmentPipe
from ganforge.losses.base import Batch, Loss, Phase, register_loss
from ganforge.models.stylegan import mix_styles


class StyleGAN2Loss(Loss):
    """Loss for the ``stylegan`` family (any G with ``mapping``/``synthesis``/``num_ws``; any D).

    Args:
        r1_gamma: R1 weight; ``None`` picks the reference's heuristic ``0.0002 * R^2 / batch`` from the first real
            batch (R the resolution). ``0`` disables the Dreg phase.
        r1_interval: steps between R1 evaluations (lazy regularisation; 1 = every step).
        pl_weight: path-length weight (2 in the paper; 0 disables the Greg phase).
        pl_interval, pl_batch_shrink, pl_decay: lazy interval, batch divisor and EMA decay of the path length.
        style_mixing_prob: probability that a batch uses two latents (0.9 in the paper).
        augment: ``"ada"`` (adaptive p), ``"fixed"`` (constant ``augment_p``) or ``"none"``.
        augment_p: initial (ada) or constant (fixed) augmentation probability.
        augment_ops: augmentation preset or list (see ``ganforge.augment``; default ``bgc``).
        ada_target, ada_interval, ada_kimg, p_max: r_t target (0.6), steps between p updates (4), thousands of
            images for p to move by 1 (500), and the upper bound of p (0.8).
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        r1_gamma: float | None = None,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        style_mixing_prob: float = 0.9,
        augment: str = "ada",
        augment_p: float = 0.0,
        augment_ops: str | list[str] = "bgc",
        ada_target: float = 0.6,
        ada_interval: int = 4,
        ada_kimg: float = 500.0,
        p_max: float = 0.8,
    ) -> None:
        for attr in ("mapping", "synthesis", "num_ws"):
            if not hasattr(G, attr):
                raise ValueError(f"the stylegan2 loss needs a style-based generator (with .{attr}); got "
                                 f"{type(G).__name__}")
        if r1_gamma is not None and r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0 (or None for the heuristic), got {r1_gamma}")
        if pl_weight < 0:
            raise ValueError(f"pl_weight must be >= 0, got {pl_weight}")
        if r1_interval < 1 or pl_interval < 1 or pl_batch_shrink < 1:
            raise ValueError(f"r1_interval, pl_interval and pl_batch_shrink must be >= 1, got {r1_interval}, "
                             f"{pl_interval}, {pl_batch_shrink}")
        if not 0.0 < pl_decay <= 1.0:
            raise ValueError(f"pl_decay must be in (0, 1], got {pl_decay}")
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {style_mixing_prob}")
        if augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {augment!r}")
        if augment == "none" and augment_p != 0.0:
            raise ValueError(f"augment='none' with augment_p={augment_p}: choose augment='fixed' or 'ada'")
        self.G, self.D = G, D
        self.r1_gamma, self.pl_weight = r1_gamma, pl_weight
        self.pl_batch_shrink, self.pl_decay = pl_batch_shrink, pl_decay
        self.style_mixing_prob = style_mixing_prob
        self.augment = augment
        self.pipe = AugmentPipe(augment_ops, p=augment_p) if augment != "none" else None
        self.ada = (
            AdaController(self.pipe, ada_target, ada_interval, ada_kimg, p_max) if augment == "ada" else None
        )
        self.pl_mean = torch.zeros([])
        self.phases = [Phase("Gmain", "G")]
        if pl_weight > 0:
            self.phases.append(Phase("Greg", "G", interval=pl_interval))
        self.phases.append(Phase("Dmain", "D", counts_images=True))
        if r1_gamma != 0:
            self.phases.append(Phase("Dreg", "D", interval=r1_interval))

    # ------------------------------------------------------------------ network calls
    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_w_avg: bool = False):
        """Generate with style mixing: ``img [N, C, H, W]`` and the ws ``[N, L, w_dim]`` that made it."""
        ws = self.G.mapping(z, c, update_w_avg=update_w_avg)
        if self.style_mixing_prob > 0 and float(torch.rand([])) < self.style_mixing_prob:
            cutoff = int(torch.randint(1, ws.shape[1], ()))
            ws2 = self.G.mapping(torch.randn_like(z), c)
            ws = mix_styles(ws, ws2, range(cutoff, ws.shape[1]))
        return self.G.synthesis(ws), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """D logits ``[N]`` of augmented images (the augmentation is differentiable)."""
        if self.pipe is not None:
            img = self.pipe(img)
        return self.D(img, c)

    # ------------------------------------------------------------------ phases
    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        if phase == "Gmain":
            img, _ = self.run_G(batch.z, batch.gen_c)
            logits = self.run_D(img, batch.gen_c)
            loss = F.softplus(-logits).mean()
            (loss * gain).backward()
            return {"loss/G": loss.item()}
        if phase == "Greg":
            return self._path_length(batch, gain)
        if phase == "Dmain":
            with torch.no_grad():
                fake, _ = self.run_G(batch.z, batch.gen_c, update_w_avg=True)
            fake_logits = self.run_D(fake, batch.gen_c)
            real_logits = self.run_D(batch.real.detach(), batch.real_c)
            loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
            (loss * gain).backward()
            if self.ada is not None:
                self.ada.accumulate(real_logits)
            return {
                "loss/D": loss.item(),
                "D/real": torch.sigmoid(real_logits.detach()).mean().item(),
                "D/fake": torch.sigmoid(fake_logits.detach()).mean().item(),
                "D/real_sign": real_logits.detach().sign().mean().item(),
            }
        if phase == "Dreg":
            return self._r1(batch, gain)
        raise ValueError(f"unknown phase {phase!r} for the stylegan2 loss (expected {[p.name for p in self.phases]})")

    def _path_length(self, batch: Batch, gain: float) -> dict[str, float]:
        n = max(1, batch.z.shape[0] // self.pl_batch_shrink)
        c = None if batch.gen_c is None else batch.gen_c[:n]
        img, ws = self.run_G(batch.z[:n], c)  # [n, C, H, W], [n, L, w_dim]
        y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)  # [n, L, w_dim]
        lengths = _fp32_or_wider(grad).square().sum(dim=2).mean(dim=1).sqrt()  # [n]
        self.pl_mean = self.pl_mean.to(lengths.device, lengths.dtype)
        self.pl_mean = self.pl_mean.lerp(lengths.detach().mean(), self.pl_decay)
        penalty = (lengths - self.pl_mean).square().mean()
        (penalty * self.pl_weight * gain).backward()
        return {"loss/pl_penalty": penalty.item(), "loss/pl_mean": self.pl_mean.item()}

    def _r1(self, batch: Batch, gain: float) -> dict[str, float]:
        real = batch.real.detach().requires_grad_(True)
        logits = self.run_D(real, batch.real_c)
        penalty = r1_penalty(logits, real).mean()
        gamma = self.gamma(real)
        (penalty * (gamma / 2) * gain).backward()
        return {"loss/r1_penalty": penalty.item(), "loss/r1_gamma": gamma}

    def gamma(self, real: torch.Tensor) -> float:
        """The R1 weight: as configured, or ``0.0002 * R^2 / batch`` (StyleGAN2-ADA's heuristic), fixed at first use.

        ``batch`` is the real batch this call sees: with gradient accumulation (``--batch-gpu``) that is the
        micro-batch, so set ``r1_gamma`` explicitly there to match the reference's per-global-batch value.
        """
        if self.r1_gamma is None:
            self.r1_gamma = 0.0002 * real.shape[-1] ** 2 / real.shape[0]
        return float(self.r1_gamma)

    # ------------------------------------------------------------------ per-step hook and state
    def after_step(self, step: int, nimg: int) -> dict[str, float]:
        if self.ada is not None:
            return self.ada.step(nimg)
        if self.pipe is not None:
            return {"augment/p": self.pipe.p}
        return {}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"pl_mean": self.pl_mean.detach().cpu().clone(), "r1_gamma": self.r1_gamma}
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
        elif self.pipe is not None:
            state["augment_p"] = self.pipe.p
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"stylegan2 loss state has keys {sorted(state)}, expected {sorted(expected)} "
                             f"(was the run trained with a different augment mode?)")
        self.pl_mean = state["pl_mean"].clone().float()
        self.r1_gamma = state["r1_gamma"]
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
        elif self.pipe is not None:
            self.pipe.p = state["augment_p"]


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``||grad_x D(x)||^2`` per sample ``[N]`` (Mescheder et al. 2018, eq. 9), differentiable w.r.t. D's weights.

    ``real`` must require grad and ``logits [N]`` be ``D(real)``.
    """
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)  # [N, C, H, W]
    return _fp32_or_wider(grad).square().sum(dim=[1, 2, 3])


def _fp32_or_wider(x: torch.Tensor) -> torch.Tensor:
    """Sums of squares in at least fp32 (bf16 autocast gradients are widened; fp64 stays fp64 for checks)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


@register_loss("stylegan2")
def build_stylegan2(networks: dict[str, nn.Module], **kwargs: Any) -> Loss:
    """StyleGAN2 loss (non-saturating logistic, lazy R1 and path-length regularisation, style mixing, ADA)."""
    return StyleGAN2Loss(networks["G"], networks["D"], **kwargs)
