"""Perceptual path length: Karras et al. 2019, "A Style-Based Generator Architecture for GANs", sec. 4.2 (eq. 2-3).

How much the image changes, perceptually, per unit step along a latent interpolation:

    l = E[ d(G(lerp(w0, w1, t)), G(lerp(w0, w1, t + eps))) / eps^2 ]        (w space, linear interpolation)
    l = E[ d(G(slerp(z0, z1, t)), G(slerp(z0, z1, t + eps))) / eps^2 ]      (z space, spherical interpolation)

with ``eps = 1e-4``, ``t ~ U(0, 1)`` ("full" sampling) or ``t = 0`` ("end": path endpoints only), and ``d`` a
perceptual distance. As in the reference, the noise inputs are held constant and path lengths outside the 1st-99th
percentile are discarded before averaging. Stages: :func:`path_lengths` (generator -> per-pair lengths) then
:func:`ppl_from_lengths` (lengths -> number).

The distance is one of :mod:`ganforge.metrics.perceptual` (``digits`` or ``inception-v3`` LPIPS-like features, or
``pixel``); the VGG LPIPS weights of the paper are not available offline, so values are comparable only between
results that name the same distance, which every result records. z-space PPL works for any generator
(``G(z, c)``); w-space PPL needs a style-based one (``mapping``/``synthesis``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganforge.data.clusters import CLASS_PRIOR
from ganforge.metrics.base import register_metric

SPACES = ("z", "w")
SAMPLINGS = ("full", "end")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between ``a [N, D]`` and ``b [N, D]`` at ``t [N]`` (the angle between their
    directions is interpolated; lengths are interpolated linearly). Nearly parallel pairs fall back to lerp."""
    t = t[:, None]
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na, b / nb
    cos = (ua * ub).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    so = torch.where(safe, so, torch.ones_like(so))
    wa = torch.where(safe, torch.sin((1 - t) * omega) / so, 1 - t)
    wb = torch.where(safe, torch.sin(t * omega) / so, t)
    direction = wa * ua + wb * ub
    return direction * torch.lerp(na, nb, t)


def _random_classes(n: int, c_dim: int, gen: torch.Generator, prior: torch.Tensor | None = None) -> torch.Tensor | None:
    """One-hot ``[n, c_dim]`` classes, uniform or drawn from ``prior [c_dim]`` (a self-conditioned G's clusters)."""
    if c_dim == 0:
        return None
    idx = (torch.randint(0, c_dim, (n,), generator=gen) if prior is None
           else torch.multinomial(prior.double(), n, replacement=True, generator=gen))
    return nn.functional.one_hot(idx, c_dim).float()


@torch.no_grad()
def path_lengths(
    G: nn.Module,
    distance: nn.Module,
    num_samples: int = 10_000,
    space: str = "w",
    sampling: str = "end",
    epsilon: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """Per-pair path lengths ``d / eps^2`` (float64 ``[num_samples]``).

    Latents, classes and interpolation points come from a generator seeded with ``seed`` in fixed-size chunks, so
    the result does not depend on ``batch_size``.
    """
    if space not in SPACES:
        raise ValueError(f"PPL space must be one of {SPACES}, got {space!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"PPL sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if not 0 < epsilon < 1:
        raise ValueError(f"PPL epsilon must be in (0, 1), got {epsilon}")
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
    style = all(hasattr(G, a) for a in ("mapping", "synthesis"))
    if space == "w" and not style:
        raise ValueError(f"w-space PPL needs a style-based generator; {type(G).__name__} has no mapping network "
                         f"(use space='z')")
    z_dim, c_dim, prior = int(G.z_dim), int(getattr(G, "c_dim", 0)), getattr(G, CLASS_PRIOR, None)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in tqdm(range(0, num_samples, batch_size), desc=f"ppl-{space}", disable=not progress, unit="batch"):
        chunk = []
        for _ in range(min(batch_size, num_samples - i)):  # pairs drawn one by one: independent of batch_size
            z = torch.randn(2, z_dim, generator=gen)
            t = torch.rand(1, generator=gen) * (1.0 if sampling == "full" else 0.0)
            chunk.append((z, t, _random_classes(1, c_dim, gen, prior)))
        z0 = torch.stack([z[0] for z, _, _ in chunk]).to(device)  # [B, z_dim]
        z1 = torch.stack([z[1] for z, _, _ in chunk]).to(device)
        t = torch.cat([t for _, t, _ in chunk]).to(device)  # [B]
        c = None if c_dim == 0 else torch.cat([c for _, _, c in chunk]).to(device)
        img0, img1 = _endpoint_images(G, style, space, z0, z1, t, epsilon, c)
        d = distance(img0.float(), img1.float())  # [B]
        out.append((d.double() / epsilon**2).cpu())
    return torch.cat(out)


def _endpoint_images(G, style: bool, space: str, z0, z1, t, eps: float, c):
    """Images at ``t`` and ``t + eps`` along the interpolation path, each ``[B, C, H, W]``."""
    if space == "z":
        za, zb = slerp(z0, z1, t), slerp(z0, z1, t + eps)
        if not style:
            return G(za, c), G(zb, c)
        ws = G.mapping(torch.cat([za, zb]), None if c is None else torch.cat([c, c]))
    else:
        w0, w1 = G.mapping(z0, c), G.mapping(z1, c)  # [B, L, w_dim]
        tt = t[:, None, None]
        ws = torch.cat([torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + eps)])
    img = G.synthesis(ws, noise_mode="const")
    return img.chunk(2)


def ppl_from_lengths(lengths: torch.Tensor) -> float:
    """Mean of the path lengths within the [1st, 99th] percentile (the reference's outlier rule)."""
    d = lengths.double().numpy()
    lo = np.percentile(d, 1, method="lower")
    hi = np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def perceptual_path_length(
    G: nn.Module,
    distance: nn.Module,
    num_samples: int = 10_000,
    space: str = "w",
    sampling: str = "end",
    epsilon: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """PPL of ``G`` with its provenance: value, space, sampling, epsilon, sample count and distance name."""
    lengths = path_lengths(G, distance, num_samples, space, sampling, epsilon, batch_size, seed, device, progress)
    return {
        "ppl": ppl_from_lengths(lengths),
        "space": space,
        "sampling": sampling,
        "epsilon": epsilon,
        "num_samples": num_samples,
        "distance": getattr(distance, "name", type(distance).__name__),
    }


def distance_for_context(ctx: Any) -> nn.Module:
    """The distance a metric run uses: LPIPS-like features of the context's extractor when it is ``digits`` or
    ``inception-v3`` (its already loaded network is reused), else the pixel distance."""
    from ganforge.metrics.perceptual import PyramidDistance, digits_distance, inception_distance

    ex = ctx.extractor
    net = getattr(ex, "net", None)
    if ex.name == "digits" and net is not None:
        return digits_distance(net)
    if ex.name == "inception-v3" and net is not None:
        return inception_distance(net)
    return PyramidDistance()


def _register(name: str, space: str, sampling: str) -> None:
    def compute(ctx: Any, epsilon: float = 1e-4) -> dict[str, float]:
        G = ctx.generator
        if space == "w" and not hasattr(G, "mapping"):
            raise ValueError(f"metric {name!r} needs a style-based generator; use ppl-z-{sampling} for "
                             f"{type(G).__name__}")
        dist = distance_for_context(ctx)
        res = perceptual_path_length(G, dist, ctx.num_gen, space, sampling, epsilon, ctx.batch_size, ctx.seed,
                                     ctx.device, ctx.progress)
        return {name.replace("-", "_"): res["ppl"]}

    compute.__doc__ = f"PPL in {space} space with {sampling} sampling (distance: see distance_for_context)."
    register_metric(
        name,
        f"perceptual path length, {space} space, {sampling}-point sampling, eps 1e-4 (Karras et al. 2019); "
        "distance from the extractor's features (digits/inception-v3, LPIPS-like) or pixels",
        needs_real=False,
        needs_generator=True,
    )(compute)


for _space in SPACES:
    for _sampling in SAMPLINGS:
        _register(f"ppl-{_space}-{_sampling}", _space, _sampling)
_register("ppl", "w", "end")  # StyleGAN2's headline variant
