"""Latent-space tools for trained generators: style-mixing grids and interpolation walks.

- :func:`mixing_grid` (StyleGAN, Karras et al. 2019, sec. 3.1 and fig. 3): every cell takes the ws of its row seed and
  copies the chosen style layers from its column seed; the grid's first row and column show the sources.
- :func:`walk` (latent interpolation videos): ``z-slerp`` interpolates z on the sphere (works for every family:
  it only calls ``G(z, c)``); ``w-lerp`` interpolates linearly in w (style-based generators), where the paper
  shows interpolation to be perceptually smoother (sec. 4.2).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ganforge.metrics.ppl import slerp
from ganforge.models.stylegan import mix_styles, style_layer_groups
from ganforge.sampling import latents

WALK_MODES = ("z-slerp", "w-lerp")


def is_style_based(G: nn.Module) -> bool:
    return all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws"))


def parse_style_layers(text: str, num_ws: int) -> list[int]:
    """``coarse``, ``middle``, ``fine``, indices and ranges (``0-3,6``), or a comma mix of them -> sorted layers."""
    groups = style_layer_groups(num_ws)
    layers: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in groups:
            if not groups[part]:
                raise ValueError(f"this {num_ws}-layer generator has no {part!r} layers; groups are {groups}")
            layers.update(groups[part])
            continue
        try:
            a, _, b = part.partition("-")
            layers.update(range(int(a), int(b or a) + 1))
        except ValueError:
            raise ValueError(f"bad style layers {text!r}: expected coarse, middle, fine or indices like 0-3,6"
                             ) from None
    if not layers:
        raise ValueError(f"bad style layers {text!r}: no layers")
    bad = sorted(i for i in layers if not 0 <= i < num_ws)
    if bad:
        raise ValueError(f"style layers {bad} out of range: this generator has layers 0-{num_ws - 1}")
    return sorted(layers)


def _require_style(G: nn.Module, what: str) -> None:
    if not is_style_based(G):
        raise ValueError(f"{what} needs a style-based generator (mapping network + synthesis); "
                         f"{type(G).__name__} is not one")


@torch.no_grad()
def mixing_grid(
    G: nn.Module,
    row_seeds: list[int],
    col_seeds: list[int],
    layers: list[int],
    c: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Images ``[(R+1) * (C+1), ch, H, W]`` in [-1, 1], row-major: a blank corner, the column sources, then each row
    source followed by its mixes. ``c`` is one class vector ``[1, c_dim]`` for conditional models."""
    _require_style(G, "style mixing")
    seeds = row_seeds + col_seeds
    z = latents(seeds, int(G.z_dim)).to(device)
    cc = None if c is None else c.to(device).expand(len(seeds), -1)
    ws = G.mapping(z, cc, truncation_psi=truncation_psi)  # [S, L, w_dim]
    row_ws, col_ws = ws[: len(row_seeds)], ws[len(row_seeds) :]
    sources = G.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1)  # [S, ch, H, W]
    row_img, col_img = sources[: len(row_seeds)], sources[len(row_seeds) :]
    blank = torch.ones_like(sources[:1])  # white corner
    cells = [blank, col_img]
    for i in range(len(row_seeds)):
        mixed = mix_styles(row_ws[i : i + 1].expand(len(col_seeds), -1, -1), col_ws, layers)
        cells += [row_img[i : i + 1], G.synthesis(mixed, noise_mode=noise_mode).clamp(-1, 1)]
    return torch.cat(cells).cpu()


@torch.no_grad()
def walk(
    G: nn.Module,
    seeds: list[int],
    frames_per_segment: int,
    mode: str = "z-slerp",
    loop: bool = False,
    c: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> Iterator[torch.Tensor]:
    """Yield batches of frames ``[B, ch, H, W]`` in [-1, 1] walking from seed to seed (and back to the first with
    ``loop``); each segment has ``frames_per_segment`` frames, the last seed's image closes the walk.

    ``c``: one class vector ``[1, c_dim]`` for the whole walk, or one per seed ``[len(seeds), c_dim]``, blended
    linearly between key frames (a conditional model then morphs from class to class)."""
    if mode not in WALK_MODES:
        raise ValueError(f"walk mode must be one of {WALK_MODES}, got {mode!r}")
    if len(seeds) < 2:
        raise ValueError(f"a walk needs at least 2 seeds, got {seeds}")
    if frames_per_segment < 1:
        raise ValueError(f"frames per segment must be >= 1, got {frames_per_segment}")
    style = is_style_based(G)
    if mode == "w-lerp":
        _require_style(G, "w-lerp")
    kwargs = {"truncation_psi": truncation_psi} if truncation_psi != 1.0 else {}
    if kwargs and not getattr(G, "supports_truncation", False):
        raise ValueError(f"{type(G).__name__} has no truncation trick; use a style-based model for --trunc")
    path = seeds + [seeds[0]] if loop else seeds
    z = latents(path, int(G.z_dim)).to(device)  # [P, z_dim]
    if c is not None:
        c = c.to(device)
        if c.shape[0] == len(seeds) and len(seeds) > 1:
            c = torch.cat([c, c[:1]]) if loop else c  # [P, c_dim]: one per key frame
        elif c.shape[0] == 1:
            c = c.expand(len(path), -1)
        else:
            raise ValueError(f"c must be [1, c_dim] or one row per seed ({len(seeds)}), got {list(c.shape)}")
    # (segment index, t) for every frame, then the closing key frame
    ts = [(s, f / frames_per_segment) for s in range(len(path) - 1) for f in range(frames_per_segment)]
    ts.append((len(path) - 2, 1.0))
    keys_w = G.mapping(z, c, **kwargs) if style else None
    for i in range(0, len(ts), batch_size):
        chunk = ts[i : i + batch_size]
        seg = torch.tensor([s for s, _ in chunk], device=device)
        t = torch.tensor([t for _, t in chunk], device=device, dtype=z.dtype)
        cc = None if c is None else torch.lerp(c[seg], c[seg + 1], t[:, None].to(c.dtype))
        if mode == "w-lerp":
            ws = torch.lerp(keys_w[seg], keys_w[seg + 1], t[:, None, None])
            yield G.synthesis(ws, noise_mode="const").clamp(-1, 1).cpu()
            continue
        zt = slerp(z[seg], z[seg + 1], t)
        if style:
            ws = G.mapping(zt, cc, **kwargs)
            yield G.synthesis(ws, noise_mode="const").clamp(-1, 1).cpu()
        else:
            yield G(zt, cc).clamp(-1, 1).float().cpu()
