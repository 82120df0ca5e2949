"""The UNIT objective (Liu, Breuel & Kautz 2017: VAE, GAN and cycle-consistency terms), as a D and a G phase.

For images ``x_a`` (domain A) and ``x_b`` (domain B), with ``h = E(x) + n``, ``n ~ N(0, I)`` (the reparameterised
latent sample of a unit-variance Gaussian):

- VAE: reconstruction ``||G_a(h_a) - x_a||_1`` and KL ``mean(E_a(x_a)^2)`` (the KL of ``N(mu, I)`` from
  ``N(0, I)`` is ``|mu|^2 / 2``; the authors' code uses the mean of ``mu^2``), likewise for B.
- GAN: ``x_ba = G_a(h_b)`` must fool ``D_a`` and ``x_ab = G_b(h_a)`` must fool ``D_b``. Least squares
  (Mao et al. 2017) as in the authors' code by default: D minimises ``(D(x) - 1)^2 + D(fake)^2``, G ``(D(fake) - 1)^2``,
  averaged over patches and summed over scales; ``gan="non-saturating"`` uses the logistic form instead.
- Cycle consistency: ``x_aba = G_a(E_b(x_ab) + n)`` must reconstruct ``x_a`` (L1), with the KL of the
  re-encoded latent; likewise ``x_bab``.

Default weights are the authors' released configuration: GAN 1, reconstruction 10, KL 0.01, cycle 10, cycle KL 0.01
(the paper's ``lambda_0..4 = 10, 0.1, 100, 0.1, 100`` scaled by 1/10; the ratios are identical).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.losses.base import Batch, Loss, Phase, register_loss

GAN_KINDS = ("lsgan", "non-saturating")


def kl_unit_gaussian(mu: torch.Tensor) -> torch.Tensor:
    """UNIT's KL term for ``q = N(mu, I)`` against ``N(0, I)``: ``mean(mu^2)`` (twice the KL per element)."""
    return mu.square().mean()


def d_loss(real: list[torch.Tensor], fake: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Discriminator loss summed over scales; each scale's patch logits ``[N, 1, h, w]`` are averaged."""
    total = real[0].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        if kind == "lsgan":
            total = total + (r - 1).square().mean() + f.square().mean()
        else:
            total = total + F.softplus(-r).mean() + F.softplus(f).mean()
    return total


def g_loss(fake: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Generator adversarial loss summed over scales."""
    total = fake[0].new_zeros(())
    for f in fake:
        total = total + ((f - 1).square().mean() if kind == "lsgan" else F.softplus(-f).mean())
    return total


class UnitLoss(Loss):
    """Phases: ``Dmain`` updates ``D`` (both domain discriminators), ``Gmain`` updates ``G`` (both encoders and
    generators, shared layers included). The batch carries domain A in ``real`` and domain B in ``extra["real_b"]``.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        gan: str = "lsgan",
        gan_weight: float = 1.0,
        recon_weight: float = 10.0,
        kl_weight: float = 0.01,
        cycle_weight: float = 10.0,
        kl_cycle_weight: float = 0.01,
        d_steps: int = 1,
    ) -> None:
        if gan not in GAN_KINDS:
            raise ValueError(f"gan must be one of {GAN_KINDS}, got {gan!r}")
        weights = {"gan_weight": gan_weight, "recon_weight": recon_weight, "kl_weight": kl_weight,
                   "cycle_weight": cycle_weight, "kl_cycle_weight": kl_cycle_weight}
        for name, w in weights.items():
            if not w >= 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
        if d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {d_steps}")
        for name, net, needed in (("G", G, ("encode", "decode")), ("D", D, ("d_a", "d_b"))):
            if not all(hasattr(net, a) for a in needed):
                raise ValueError(f"the 'unit' loss needs a unit-g as G and a unit-d as D; "
                                 f"{name} is {type(net).__name__}")
        self.G, self.D, self.gan = G, D, gan
        self.w = weights
        self.phases = [Phase("Dmain", "D", repeat=d_steps, counts_images=True), Phase("Gmain", "G")]

    @staticmethod
    def _domains(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if "real_b" not in batch.extra:
            raise ValueError("the 'unit' loss needs domain B images in batch.extra['real_b'] (a two-domain source)")
        return batch.real, batch.extra["real_b"]  # [N, C_a, H, W], [N, C_b, H, W]

    def _translations(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything one UNIT step needs: latent means, reconstructions, translations and cycles."""
        G = self.G
        mu_a, mu_b = G.encode(x_a, "a"), G.encode(x_b, "b")  # [N, L, h, w]
        h_a, h_b = mu_a + torch.randn_like(mu_a), mu_b + torch.randn_like(mu_b)
        out = {"mu_a": mu_a, "mu_b": mu_b}
        out["x_aa"], out["x_bb"] = G.decode(h_a, "a"), G.decode(h_b, "b")
        out["x_ab"], out["x_ba"] = G.decode(h_a, "b"), G.decode(h_b, "a")
        return out

    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        x_a, x_b = self._domains(batch)
        if phase == "Dmain":
            with torch.no_grad():
                mu_a, mu_b = self.G.encode(x_a, "a"), self.G.encode(x_b, "b")
                x_ab = self.G.decode(mu_a + torch.randn_like(mu_a), "b")
                x_ba = self.G.decode(mu_b + torch.randn_like(mu_b), "a")
            real_a, fake_a = self.D(x_a, "a"), self.D(x_ba, "a")
            real_b, fake_b = self.D(x_b, "b"), self.D(x_ab, "b")
            loss_a, loss_b = d_loss(real_a, fake_a, self.gan), d_loss(real_b, fake_b, self.gan)
            d = self.w["gan_weight"] * (loss_a + loss_b)
            (d * gain).backward()
            return {
                "loss/D": d.item(), "loss/D_a": loss_a.item(), "loss/D_b": loss_b.item(),
                "D/real": _mean_output(real_a + real_b), "D/fake": _mean_output(fake_a + fake_b),
            }
        if phase == "Gmain":
            t = self._translations(x_a, x_b)
            mu_aba, mu_bab = self.G.encode(t["x_ab"], "b"), self.G.encode(t["x_ba"], "a")  # re-encoded latents
            x_aba = self.G.decode(mu_aba + torch.randn_like(mu_aba), "a")
            x_bab = self.G.decode(mu_bab + torch.randn_like(mu_bab), "b")
            adv = g_loss(self.D(t["x_ba"], "a"), self.gan) + g_loss(self.D(t["x_ab"], "b"), self.gan)
            recon = F.l1_loss(t["x_aa"], x_a) + F.l1_loss(t["x_bb"], x_b)
            kl = kl_unit_gaussian(t["mu_a"]) + kl_unit_gaussian(t["mu_b"])
            cycle = F.l1_loss(x_aba, x_a) + F.l1_loss(x_bab, x_b)
            kl_cycle = kl_unit_gaussian(mu_aba) + kl_unit_gaussian(mu_bab)
            w = self.w
            g = (w["gan_weight"] * adv + w["recon_weight"] * recon + w["kl_weight"] * kl
                 + w["cycle_weight"] * cycle + w["kl_cycle_weight"] * kl_cycle)
            (g * gain).backward()
            return {"loss/G": g.item(), "loss/G_adv": adv.item(), "loss/recon": recon.item(), "loss/kl": kl.item(),
                    "loss/cycle": cycle.item(), "loss/kl_cycle": kl_cycle.item()}
        raise ValueError(f"unknown phase {phase!r}; the 'unit' loss has Dmain and Gmain")


def _mean_output(outputs: list[torch.Tensor]) -> float:
    """Mean raw discriminator output over all patches and scales (LSGAN targets: 1 real, 0 fake)."""
    return float(torch.stack([o.detach().mean() for o in outputs]).mean())


@torch.no_grad()
def cycle_error(G: nn.Module, x: torch.Tensor, domain: str) -> float:
    """Mean absolute error of the deterministic cycle ``x -> other domain -> x`` (``a2b2a`` for domain ``a``)."""
    there, back = ("a2b", "b2a") if domain == "a" else ("b2a", "a2b")
    return float((G.translate(G.translate(x, there), back) - x).abs().mean())


@register_loss("unit")
def build_unit_loss(networks: dict[str, nn.Module], **kwargs) -> UnitLoss:
    """Factory for ``register_loss('unit')``: ``networks['G']`` a unit-g, ``networks['D']`` a unit-d."""
    return UnitLoss(networks["G"], networks["D"], **kwargs)
