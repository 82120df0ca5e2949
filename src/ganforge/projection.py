"""Projecting an image into a style-based generator's latent space (Karras et al. 2020, StyleGAN2 sec. 5).

Find the ``w`` (one vector for every layer, "w") or per-layer ``ws`` ("w+", Abdal et al. 2019, Image2StyleGAN)
whose image is closest to a target under a perceptual distance:

- start from the mean ``w_avg`` of ``w_avg_samples`` mapped latents; ``w_std`` is their RMS distance from it;
- optimise with Adam; the learning rate ramps up over the first 5% and down (cosine) over the last 25% of steps;
- add Gaussian noise of scale ``w_std * initial_noise * max(0, 1 - t / noise_ramp)^2`` to w during the first
  75% of steps, which helps escape poor local minima.

The reference projector also optimises the per-layer noise maps with a regulariser; here the noise inputs stay at
their constant values (``noise_mode="const"``), so all of the image must be explained by w.
The distance is one of :mod:`ganforge.metrics.perceptual` and is recorded in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganforge.media import to_uint8

SPACES = ("w", "w+")


@dataclass
class Projection:
    """Result: ``ws [1, num_ws, w_dim]`` (all rows equal in "w" space), the image ``[1, C, H, W]``, the final
    distance, the distance's name, the distance per step and progress frames (uint8 ``[H, 2W, C]``: target | now)."""

    ws: torch.Tensor
    image: torch.Tensor
    distance: float
    distance_name: str
    space: str
    history: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


def project(
    G: nn.Module,
    target: torch.Tensor,
    distance: nn.Module,
    steps: int = 500,
    space: str = "w",
    c: torch.Tensor | None = None,
    lr: float = 0.1,
    w_avg_samples: int = 2000,
    initial_noise: float = 0.05,
    noise_ramp: float = 0.75,
    lr_rampup: float = 0.05,
    lr_rampdown: float = 0.25,
    frame_every: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> Projection:
    """Project ``target`` (``[C, H, W]`` or ``[1, C, H, W]`` in [-1, 1], G's shape) into G's w or w+ space.

    ``distance(a, b) -> [N]`` compares images (see :func:`ganforge.metrics.perceptual.build_distance`);
    ``frame_every > 0`` records a progress frame every that many steps (and the last).
    """
    for attr in ("mapping", "synthesis", "num_ws"):
        if not hasattr(G, attr):
            raise ValueError(f"projection needs a style-based generator (with .{attr}); got {type(G).__name__}")
    if space not in SPACES:
        raise ValueError(f"projection space must be one of {SPACES}, got {space!r}")
    if steps < 1 or w_avg_samples < 1:
        raise ValueError(f"steps and w_avg_samples must be >= 1, got {steps} and {w_avg_samples}")
    if target.ndim == 3:
        target = target.unsqueeze(0)
    expected = (1, int(G.channels), int(G.resolution), int(G.resolution))
    if tuple(target.shape) != expected:
        raise ValueError(f"target must have shape {list(expected)} (the generator's), got {list(target.shape)}")
    device = next(G.parameters()).device
    target = target.to(device, torch.float32)
    was_training, flags = G.training, [p.requires_grad for p in G.parameters()]
    G.eval().requires_grad_(False)
    try:
        return _optimise(G, target, distance, steps, space, c, lr, w_avg_samples, initial_noise, noise_ramp,
                         lr_rampup, lr_rampdown, frame_every, seed, progress, device)
    finally:  # leave G as it was given
        G.train(was_training)
        for p, flag in zip(G.parameters(), flags):
            p.requires_grad_(flag)


def _optimise(G, target, distance, steps, space, c, lr, w_avg_samples, initial_noise, noise_ramp, lr_rampup,
              lr_rampdown, frame_every, seed, progress, device) -> Projection:
    gen = torch.Generator().manual_seed(seed)

    with torch.no_grad():
        z = torch.randn(w_avg_samples, int(G.z_dim), generator=gen).to(device)
        cs = None if c is None else c.to(device).expand(w_avg_samples, -1)
        w = G.mapping(z, cs)[:, 0]  # [S, w_dim]
        w_avg = w.mean(0, keepdim=True)  # [1, w_dim]
        w_std = float((w - w_avg).square().sum(1).mean().sqrt())
        target_feats = distance.features(target) if hasattr(distance, "features") else None

    rows = 1 if space == "w" else int(G.num_ws)
    w_opt = w_avg[:, None, :].repeat(1, rows, 1).clone().requires_grad_(True)  # [1, rows, w_dim]
    opt = torch.optim.Adam([w_opt], lr=lr, betas=(0.9, 0.999))
    history: list[float] = []
    frames: list[np.ndarray] = []
    target_u8 = to_uint8(target)[0]
    for step in tqdm(range(steps), desc="project", disable=not progress, unit="step"):
        t = step / steps
        noise_scale = w_std * initial_noise * max(0.0, 1.0 - t / noise_ramp) ** 2
        ramp = min(1.0, (1.0 - t) / lr_rampdown)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / lr_rampup)
        for group in opt.param_groups:
            group["lr"] = lr * ramp
        noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + noise).expand(-1, int(G.num_ws), -1)  # [1, num_ws, w_dim]
        img = G.synthesis(ws, noise_mode="const")
        if target_feats is not None:
            d = distance.distance(distance.features(img), target_feats)
        else:
            d = distance(img, target)
        loss = d.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if frame_every > 0 and (step % frame_every == 0 or step == steps - 1):
            frames.append(np.concatenate([target_u8, to_uint8(img.detach())[0]], axis=1))

    with torch.no_grad():
        ws = w_opt.detach().expand(-1, int(G.num_ws), -1).clone()
        img = G.synthesis(ws, noise_mode="const")
        final = float(distance(img, target).sum())
    return Projection(ws.cpu(), img.cpu(), final, getattr(distance, "name", type(distance).__name__), space,
                      history, frames)


def load_target(path: str | Path, channels: int, resolution: int) -> torch.Tensor:
    """Read an image file as a projection target ``[1, channels, R, R]`` in [-1, 1].

    Channels are converted (luminance or RGB) and the image is scaled and centre-cropped to ``R`` (the data layer's
    ``center-crop`` policy); unreadable files raise ``DataError`` naming them.
    """
    from ganforge.data.formats import decode_image
    from ganforge.data.transforms import prepare

    arr = decode_image(Path(path), str(path))
    data, _, _ = prepare([arr], resolution, channels, "center-crop", [str(path)])  # [1, C, R, R] uint8
    return torch.from_numpy(np.ascontiguousarray(data)).float() / 127.5 - 1.0
