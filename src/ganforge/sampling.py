"""Generating images from a checkpoint: the one place that turns seeds into samples.

Image ``i`` of a request comes from seed ``seeds[i]`` alone (its own ``torch.Generator``), so a seed gives the same
image whatever the batch size or position; this is what makes ``ganforge sample --seed`` reproducible. A conditional
model given no class draws class ``seed % classes`` (so seeds 0-9 of a digits model are the digits 0-9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.checkpoint import load_networks, read_config, resolve_checkpoint


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
    return G.eval().requires_grad_(False), meta


def latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]`` standard-normal latents, one generator per seed."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def class_vectors(
    classes: list[int] | int | None, n: int, c_dim: int, seeds: list[int] | None = None
) -> torch.Tensor | None:
    """One-hot ``[n, c_dim]`` for a class (or per-image classes); ``None`` for unconditional models. Without
    ``classes``, a conditional model gets class ``seed % c_dim`` per seed when ``seeds`` are given."""
    if c_dim == 0:
        if classes is not None:
            raise ValueError("this model is unconditional; do not pass a class")
        return None
    if classes is None and seeds is not None:
        classes = [int(s) % c_dim for s in seeds]
    if classes is None:
        raise ValueError(f"this model is conditional on {c_dim} classes; pass a class in [0, {c_dim})")
    idx = torch.tensor([classes] * n if isinstance(classes, int) else classes)
    if len(idx) != n or int(idx.min()) < 0 or int(idx.max()) >= c_dim:
        raise ValueError(f"classes must be {n} values in [0, {c_dim}), got {classes}")
    return nn.functional.one_hot(idx, c_dim).float()


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
    z_dim, c_dim = int(G.z_dim), int(getattr(G, "c_dim", 0))
    z = latents(seeds, z_dim)
    c = class_vectors(classes, len(seeds), c_dim, seeds)
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
