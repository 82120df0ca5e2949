"""The UNIT objective (Liu, Breuel & Kautz 2017: VAE, GAN and cycle-consistency terms), as a D and a G phase.

For images ``x_a`` (domain A) and ``x_b`` (domain B), with ``h = E(x) + n``, ``n ~ N(0, I)`` (the reparameterised
latent sample of a unit-variance Gaussian):

- VAE: reconstruction ``||G_a(h_a) - x_a||_1`` and KL ``mean(E_a(x_a)^2)`` (the KL of ``N(mu, I)`` from
  ``N(0, I)`` is ``|mu|^2 / 2``; the authors' code uses the mean of ``mu^2``), likewise for B.
- GAN: ``x_ba = G_a(h_b)`` must fool ``D_a`` and ``x_ab = G_b(h_a)`` must fool ``D_b``. Least squares
  (Mao et al. 2017) as in the authors' code by default: D minimises ``(D(x) - 1)^2 + D(fake)^2``, G ``(D(fake) - 1)^2``,
  averaged over patches and summed over scales; ``gan="non-saturating"`` uses the logistic form instead.
  D trains on the translations the previous G phase made (as PyTorch-GAN's UNIT does; the authors' code makes them
  again), so a step runs the generators once, not twice; the first D phase, or one after a batch-size change, makes
  its own.
- Cycle consistency: ``x_aba = G_a(E_b(x_ab) + n)`` must reconstruct ``x_a`` (L1), with the KL of the
  re-encoded latent; likewise ``x_bab``.

``augment="diffaugment"`` passes every image a domain discriminator sees, real and translated, in both phases, through
:class:`~ganforge.augment.DiffAugment` (Zhao et al. 2020; strength ``augment_p``, policy ``augment_policy``), as
the classic losses do; off by default.

``identity_weight`` adds the identity-mapping term of CycleGAN (Zhu et al. 2017, section 5.2, after Taigman et
al. 2017): a domain B image given to the A -> B translator must come out unchanged, ``||G_b(h) - x_b||_1`` with
``h = E_a(x_b) + n``, likewise ``||G_a(E_b(x_a) + n) - x_a||_1``. It asks the two encoders to agree on the other
domain's images, a prior that the domains share their layout (digits of two datasets, photos of two seasons);
it needs both domains to have the same number of channels. ``identity_kimg=k`` lowers its weight linearly to 0 over
the first ``k`` thousand images (0: constant). Off (0) by default.

Default weights are the authors' released configuration: GAN 1, reconstruction 10, KL 0.01, cycle 10, cycle KL 0.01
(the paper's ``lambda_0..4 = 10, 0.1, 100, 0.1, 100`` scaled by 1/10; the ratios are identical).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.augment import DIFFAUGMENT_POLICY, make_diffaugment
from ganforge.losses.base import Batch, Loss, Phase, register_loss

GAN_KINDS = ("lsgan", "non-saturating")
MAX_KEPT = 64  # translations kept for D phases (one per micro-batch of the last G phase)


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
        identity_weight: float = 0.0,
        identity_kimg: float = 0.0,
        d_steps: int = 1,
        augment: str = "none",
        augment_p: float = 1.0,
        augment_policy: str = DIFFAUGMENT_POLICY,
    ) -> None:
        if gan not in GAN_KINDS:
            raise ValueError(f"gan must be one of {GAN_KINDS}, got {gan!r}")
        weights = {"gan_weight": gan_weight, "recon_weight": recon_weight, "kl_weight": kl_weight,
                   "cycle_weight": cycle_weight, "kl_cycle_weight": kl_cycle_weight,
                   "identity_weight": identity_weight}
        for name, w in weights.items():
            if not w >= 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
        if not identity_kimg >= 0:
            raise ValueError(f"identity_kimg must be >= 0, got {identity_kimg}")
        if d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {d_steps}")
        for name, net, needed in (("G", G, ("encode", "decode")), ("D", D, ("d_a", "d_b"))):
            if not all(hasattr(net, a) for a in needed):
                raise ValueError(f"the 'unit' loss needs a unit-g as G and a unit-d as D; "
                                 f"{name} is {type(net).__name__}")
        if identity_weight > 0 and G.channels["a"] != G.channels["b"]:
            raise ValueError(f"identity_weight needs domains with the same number of channels, got "
                             f"{G.channels['a']} (A) and {G.channels['b']} (B)")
        self.G, self.D, self.gan = G, D, gan
        self.augment = make_diffaugment(augment, augment_p, augment_policy)
        self.w = weights
        self.identity_kimg = float(identity_kimg)
        self._nimg = 0  # images shown so far (after_step keeps it; saved for resume): the identity weight's clock
        self._fakes: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x_ab, x_ba) per micro-batch, oldest first
        self.phases = [Phase("Dmain", "D", repeat=d_steps, counts_images=True), Phase("Gmain", "G")]

    def identity_weight_now(self) -> float:
        """The identity term's weight at the current image count: ``identity_weight``, falling linearly to 0 over
        ``identity_kimg`` thousand images when that is set."""
        w = self.w["identity_weight"]
        if self.identity_kimg > 0:
            w *= max(0.0, 1.0 - self._nimg / (self.identity_kimg * 1000))
        return w

    def _run_d(self, img: torch.Tensor, domain: str) -> list[torch.Tensor]:
        """Domain ``domain``'s patch logits per scale for ``img [N, C, H, W]``, augmented first if the loss augments."""
        return self.D(img if self.augment is None else self.augment(img), domain)

    @staticmethod
    def _domains(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if "real_b" not in batch.extra:
            raise ValueError("the 'unit' loss needs domain B images in batch.extra['real_b'] (a two-domain source)")
        x_a, x_b = batch.real, batch.extra["real_b"]  # [N, C_a, H, W], [N, C_b, H, W]
        if x_a.shape[0] != x_b.shape[0] or x_a.shape[2:] != x_b.shape[2:]:
            raise ValueError(f"the 'unit' loss needs as many domain A as domain B images, of one size; got "
                             f"{list(x_a.shape)} and {list(x_b.shape)}")
        return x_a, x_b

    def _translations(self, x_a: torch.Tensor, x_b: torch.Tensor, identity: bool = False) -> dict[str, torch.Tensor]:
        """Latent means, reconstructions and translations of both domains; with ``identity`` also each domain's
        images through the other domain's encoder and back to their own domain (``x_b_id = G_b(E_a(x_b) + n)``,
        ``x_a_id = G_a(E_b(x_a) + n)``).

        When ``G.per_sample`` (instance norm or none), the shared layers run once on all codes and each private
        generator once on all latents it decodes (``G_a(h_a)`` and ``G_a(h_b)`` in one call): the paper's four
        decodes with fewer, larger operations. With ``identity`` each private encoder likewise runs once, on both
        domains' images. With batch norm each branch gets its own batch.
        """
        G, n = self.G, x_a.shape[0]
        if not G.per_sample:  # batch norm: each branch on its own batch, as the paper's four decodes
            mu_a, mu_b = G.encode(x_a, "a"), G.encode(x_b, "b")
            h_a, h_b = mu_a + torch.randn_like(mu_a), mu_b + torch.randn_like(mu_b)
            out = {"mu_a": mu_a, "mu_b": mu_b, "x_aa": G.decode(h_a, "a"), "x_bb": G.decode(h_b, "b"),
                   "x_ab": G.decode(h_a, "b"), "x_ba": G.decode(h_b, "a")}
            if identity:
                mu_ba, mu_ab = G.encode(x_b, "a"), G.encode(x_a, "b")
                out["x_b_id"] = G.decode(mu_ba + torch.randn_like(mu_ba), "b")
                out["x_a_id"] = G.decode(mu_ab + torch.randn_like(mu_ab), "a")
            return out
        if identity:
            f_a, f_b = G.encode_private(torch.cat([x_a, x_b]), "a"), G.encode_private(torch.cat([x_b, x_a]), "b")
            codes = [f_a[:n], f_b[:n], f_a[n:], f_b[n:]]
        else:
            codes = [G.encode_private(x_a, "a"), G.encode_private(x_b, "b")]
        mu = G.encode_shared(torch.cat(codes))  # [2N or 4N, L, h, w]: h_a, h_b (then E_a(x_b), E_b(x_a))
        s = G.decode_shared(mu + torch.randn_like(mu))  # the codes through the shared generator layers
        to_a = G.decode_private(torch.cat([s[:2 * n], s[3 * n:]]) if identity else s, "a")  # [2N or 3N, C_a, H, W]
        to_b = G.decode_private(s[:3 * n] if identity else s, "b")  # [2N or 3N, C_b, H, W]
        out = {"mu_a": mu[:n], "mu_b": mu[n:2 * n], "x_aa": to_a[:n], "x_ba": to_a[n:2 * n], "x_ab": to_b[:n],
               "x_bb": to_b[n:2 * n]}
        if identity:
            out["x_b_id"], out["x_a_id"] = to_b[2 * n:], to_a[2 * n:]
        return out

    def _cycles(self, x_ab: torch.Tensor, x_ba: torch.Tensor) -> dict[str, torch.Tensor]:
        """Re-encoded latents of the translations and the cycled images ``x_aba``, ``x_bab``."""
        G, n = self.G, x_ab.shape[0]
        if not G.per_sample:
            mu_aba, mu_bab = G.encode(x_ab, "b"), G.encode(x_ba, "a")
            return {"mu_aba": mu_aba, "mu_bab": mu_bab, "x_aba": G.decode(mu_aba + torch.randn_like(mu_aba), "a"),
                    "x_bab": G.decode(mu_bab + torch.randn_like(mu_bab), "b")}
        mu = G.encode_shared(torch.cat([G.encode_private(x_ab, "b"), G.encode_private(x_ba, "a")]))
        s = G.decode_shared(mu + torch.randn_like(mu))
        return {"mu_aba": mu[:n], "mu_bab": mu[n:], "x_aba": G.decode_private(s[:n], "a"),
                "x_bab": G.decode_private(s[n:], "b")}

    def _fakes_for_d(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Translations ``(x_ab, x_ba)`` for the D phase: those the last G phase made (what PyTorch-GAN's UNIT trains D
        on; it saves a second generator pass), else made here."""
        if self._fakes and self._fakes[0][0].shape[0] == x_a.shape[0]:
            x_ab, x_ba = self._fakes.pop(0)
            return x_ab.to(x_a.device), x_ba.to(x_a.device)
        self._fakes.clear()
        with torch.no_grad():
            t = self._translations(x_a, x_b)
        return t["x_ab"], t["x_ba"]

    def _d_phase(self, x_a: torch.Tensor, x_b: torch.Tensor, gain: float) -> dict[str, float]:
        n = x_a.shape[0]
        x_ab, x_ba = self._fakes_for_d(x_a, x_b)
        if self.D.per_sample:  # reals and fakes in one call per domain
            out_a, out_b = self._run_d(torch.cat([x_a, x_ba]), "a"), self._run_d(torch.cat([x_b, x_ab]), "b")
            real_a, fake_a = [o[:n] for o in out_a], [o[n:] for o in out_a]
            real_b, fake_b = [o[:n] for o in out_b], [o[n:] for o in out_b]
        else:  # batch norm: reals and fakes in separate batches
            real_a, fake_a = self._run_d(x_a, "a"), self._run_d(x_ba, "a")
            real_b, fake_b = self._run_d(x_b, "b"), self._run_d(x_ab, "b")
        loss_a, loss_b = d_loss(real_a, fake_a, self.gan), d_loss(real_b, fake_b, self.gan)
        d = self.w["gan_weight"] * (loss_a + loss_b)
        (d * gain).backward()
        return {
            "loss/D": d.item(), "loss/D_a": loss_a.item(), "loss/D_b": loss_b.item(),
            "D/real": _mean_output(real_a + real_b), "D/fake": _mean_output(fake_a + fake_b),
        }

    def _g_phase(self, x_a: torch.Tensor, x_b: torch.Tensor, gain: float) -> dict[str, float]:
        w, w_identity = self.w, self.identity_weight_now()
        t = self._translations(x_a, x_b, identity=w_identity > 0)
        c = self._cycles(t["x_ab"], t["x_ba"])
        adv = g_loss(self._run_d(t["x_ba"], "a"), self.gan) + g_loss(self._run_d(t["x_ab"], "b"), self.gan)
        recon = F.l1_loss(t["x_aa"], x_a) + F.l1_loss(t["x_bb"], x_b)
        kl = kl_unit_gaussian(t["mu_a"]) + kl_unit_gaussian(t["mu_b"])
        cycle = F.l1_loss(c["x_aba"], x_a) + F.l1_loss(c["x_bab"], x_b)
        kl_cycle = kl_unit_gaussian(c["mu_aba"]) + kl_unit_gaussian(c["mu_bab"])
        g = (w["gan_weight"] * adv + w["recon_weight"] * recon + w["kl_weight"] * kl
             + w["cycle_weight"] * cycle + w["kl_cycle_weight"] * kl_cycle)
        stats: dict[str, float] = {}
        if "x_b_id" in t:
            identity = F.l1_loss(t["x_b_id"], x_b) + F.l1_loss(t["x_a_id"], x_a)
            g = g + w_identity * identity
            stats["loss/identity"] = identity.item()
        (g * gain).backward()
        self._fakes = (self._fakes + [(t["x_ab"].detach().clone(), t["x_ba"].detach().clone())])[-MAX_KEPT:]
        return {"loss/G": g.item(), "loss/G_adv": adv.item(), "loss/recon": recon.item(), "loss/kl": kl.item(),
                "loss/cycle": cycle.item(), "loss/kl_cycle": kl_cycle.item(), **stats}

    def accumulate_gradients(self, phase: str, batch: Batch, gain: float) -> dict[str, float]:
        x_a, x_b = self._domains(batch)
        if phase == "Dmain":
            return self._d_phase(x_a, x_b, gain)
        if phase == "Gmain":
            return self._g_phase(x_a, x_b, gain)
        raise ValueError(f"unknown phase {phase!r}; the 'unit' loss has Dmain and Gmain")

    def after_step(self, step: int, nimg: int) -> dict[str, float]:
        """Keeps the image count that sets the identity weight; logs that weight while the term is on."""
        self._nimg = nimg
        return {"loss/identity_weight": self.identity_weight_now()} if self.w["identity_weight"] > 0 else {}

    def state_dict(self) -> dict[str, Any]:
        """The translations kept for the next D phase, so a resumed run trains D on exactly the same images, and the
        image count of the identity weight."""
        return {"fakes_ab": [ab for ab, _ in self._fakes], "fakes_ba": [ba for _, ba in self._fakes],
                "nimg": self._nimg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:  # a checkpoint written before translations were kept: the next D phase makes its own
            self._fakes = []
            return
        keys = set(state) - {"nimg"}  # checkpoints written before the identity term have no image count
        if keys != {"fakes_ab", "fakes_ba"} or len(state["fakes_ab"]) != len(state["fakes_ba"]):
            raise ValueError(f"UNIT loss state must hold 'fakes_ab' and 'fakes_ba' lists of one length, got keys "
                             f"{sorted(state)}")
        self._fakes = list(zip(state["fakes_ab"], state["fakes_ba"], strict=True))
        self._nimg = int(state.get("nimg", 0))


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
