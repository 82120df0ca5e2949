"""Generating images from a checkpoint: the one place that turns seeds into samples.

Image ``i`` of a request comes from seed ``seeds[i]`` alone (its own ``torch.Generator``), so a seed gives the same
image whatever the batch size or position; this is what makes ``ganforge sample --seed`` reproducible. A conditional
model given no class draws class ``seed % classes`` (so seeds 0-9 of a digits model are the digits 0-9); a
self-conditioned one (``ganforge train --clusters K``) draws its cluster from the clusters' frequencies, with a
generator of its own seeded by the seed, so it samples like the unconditional model it stands for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.checkpoint import load_networks, read_config, resolve_checkpoint
from ganforge.data.clusters import CLASS_PRIOR, cluster_prior


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The EMA generator of a checkpoint/run/packaged model if it has one, else ``G``; plus its config.json."""
    ckpt = resolve_checkpoint(path)
    meta = read_config(ckpt)
    name = "G_ema" if "G_ema" in meta["networks"] else "G"
    if name not in meta["networks"]:
        raise ValueError(f"{ckpt}: no generator in this checkpoint (networks: {sorted(meta['networks'])})")
    if meta.get("family") == "unit":
        raise ValueError(f"{ckpt}: a UNIT translation model does not sample from noise; use `ganforge translate`")
    G = load_networks(ckpt, [name], device=device)[name]
    if not hasattr(G, "z_dim"):
        raise ValueError(
            f"{ckpt}: {type(G).__name__} is not a noise-to-image generator (family {meta.get('family')!r})"
        )
    prior = cluster_prior(meta.get("dataset") or {})
    if prior is not None:
        setattr(G, CLASS_PRIOR, prior)
    return G.eval().requires_grad_(False), meta


def latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]`` standard-normal latents, one generator per seed."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def class_vectors(
    classes: list[int] | int | None, n: int, c_dim: int, seeds: list[int] | None = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """One-hot ``[n, c_dim]`` for a class (or per-image classes); ``None`` for unconditional models. Without
    ``classes``, a conditional model gets, per seed when ``seeds`` are given, a class drawn from ``prior [c_dim]``
    (the cluster frequencies of a self-conditioned model) or else class ``seed % c_dim``."""
    if c_dim == 0:
        if classes is not None:
            raise ValueError("this model is unconditional; do not pass a class")
        return None
    if classes is None and seeds is not None:
        classes = [int(s) % c_dim for s in seeds] if prior is None else [prior_class(prior, s) for s in seeds]
    if classes is None:
        raise ValueError(f"this model is conditional on {c_dim} classes; pass a class in [0, {c_dim})")
    idx = torch.tensor([classes] * n if isinstance(classes, int) else classes)
    if len(idx) != n or int(idx.min()) < 0 or int(idx.max()) >= c_dim:
        raise ValueError(f"classes must be {n} values in [0, {c_dim}), got {classes}")
    return nn.functional.one_hot(idx, c_dim).float()


def generator_classes(
    G: nn.Module, classes: list[int] | int | None, n: int, seeds: list[int] | None = None
) -> torch.Tensor | None:
    """:func:`class_vectors` for the generator ``G``: its ``c_dim`` and, when self-conditioned, its cluster prior."""
    return class_vectors(classes, n, int(getattr(G, "c_dim", 0)), seeds, getattr(G, CLASS_PRIOR, None))


PRIOR_STREAM = 0x9E3779B9  # offset of the class stream's seeds from the latents' (any fixed value apart from 0)


def prior_class(prior: torch.Tensor, seed: int) -> int:
    """The class ``seed`` draws from ``prior [c_dim]``, on a stream apart from its latent's (``latents``)."""
    gen = torch.Generator().manual_seed(int(seed) + PRIOR_STREAM)
    return int(torch.multinomial(prior.double(), 1, generator=gen))


@torch.no_grad()
def generate(
    G: nn.Module,
    seeds: list[int],
    classes: list[int] | int | None = None,
    truncation_psi: float = 1.0,
    batch: int = 64,
    device: str | torch.device = "cpu",
    noise_mode: str | None = None,
) -> torch.Tensor:
    """Images ``[len(seeds), C, H, W]`` in [-1, 1] from ``G`` for ``seeds`` (CPU tensor)."""
    z = latents(seeds, int(G.z_dim))
    c = generator_classes(G, classes, len(seeds), seeds)
    kwargs: dict[str, Any] = {}
    if getattr(G, "supports_truncation", False):
        # style-based: constant noise by default (as StyleGAN2-ADA's generate.py), so a seed is one picture
        kwargs = {"truncation_psi": truncation_psi, "noise_mode": noise_mode or "const"}
    elif truncation_psi != 1.0:
        raise ValueError(f"{type(G).__name__} has no truncation trick; use a style-based model for --trunc")
    out = []
    for i in range(0, len(seeds), batch):
        zi = z[i : i + batch].to(device)
        ci = None if c is None else c[i : i + batch].to(device)
        out.append(G(zi, ci, **kwargs).float().cpu())
    return torch.cat(out)


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = (
                    part.split("-", 1)
                    if not part.startswith("-")
                    else ("-" + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1])
                )
                seeds += list(range(int(a), int(b) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"bad seed list {text!r}: expected integers and ranges like 0-7,12") from None
    if not seeds:
        raise ValueError(f"bad seed list {text!r}: no seeds")
    return seeds
