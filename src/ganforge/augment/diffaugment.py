"""DiffAugment: Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training".

The same random, differentiable transformations are applied to every image the discriminator sees, real and
generated, in both D's and G's updates (paper sec. 3, fig. 4), so D cannot memorise the few real images while G
still receives gradients through the augmentation. The three policies of the paper (sec. 3, "translation + cutout +
color"), on images in [-1, 1]:

- ``color``: ``brightness`` adds ``U(-0.5, 0.5)``; ``saturation`` scales each pixel's distance to its channel mean by
  ``U(0, 2)``; ``contrast`` scales each image's distance to its mean by ``U(0.5, 1.5)``.
- ``translation``: an integer shift of up to 1/8 of the image in each direction, the uncovered border filled with
  zeros.
- ``cutout``: a square of half the image's size at a random centre (it may overhang the border) set to zero.

``p`` is the strength: each operation is applied to each sample with probability ``p`` (1 = the paper, every
operation on every image; 0 = the identity, the input returned unchanged). Random draws come from an optional
``torch.Generator`` (on the CPU), so a seeded generator gives the same augmentation on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

POLICIES: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
}
DEFAULT_POLICY = "color,translation,cutout"


def _uniform(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``[n, 1, 1, 1]`` uniform draws in [0, 1), drawn on the CPU then moved to ``x``'s device and dtype."""
    return torch.rand(n, 1, 1, 1, generator=generator).to(device=x.device, dtype=x.dtype)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + U(-0.5, 0.5)`` per sample; ``x`` is ``[N, C, H, W]``."""
    return x + (_uniform(x.shape[0], x, generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Distance to the per-pixel channel mean scaled by ``U(0, 2)`` per sample (a no-op on one channel)."""
    mean = x.mean(dim=1, keepdim=True)  # [N, 1, H, W]
    return (x - mean) * (_uniform(x.shape[0], x, generator) * 2) + mean


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Distance to the per-image mean scaled by ``U(0.5, 1.5)`` per sample."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [N, 1, 1, 1]
    return (x - mean) * (_uniform(x.shape[0], x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Integer shift by up to ``ratio`` of the size along each axis, per sample, zero padding. ``[N, C, H, W]``."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=generator).to(x.device)  # [N, 1, 1]
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=generator).to(x.device)
    # Source row/column of each output pixel, in a copy padded with one zero row/column on every side: positions
    # that fall outside the image read the padding (index 0 or size + 1), which is zero padding.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - dy + 1).clamp(0, h + 1)  # [N, H, 1]
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - dx + 1).clamp(0, w + 1)  # [N, 1, W]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # [N, H+2, W+2, C]
    return padded[batch, rows, cols].permute(0, 3, 1, 2)  # [N, C, H, W]


def cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size at a random centre per sample (clipped at the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=generator).to(x.device)  # box centre, [N, 1, 1]
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=generator).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch) & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)  # [N, C, H, W]


OPS: dict[str, Callable[..., torch.Tensor]] = {
    "brightness": brightness,
    "saturation": saturation,
    "contrast": contrast,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """Operation names of a policy: comma-separated policy names (``color,translation,cutout``) or op names."""
    names = [p.strip() for p in policy.split(",") if p.strip()] if isinstance(policy, str) else list(policy)
    ops: list[str] = []
    for name in names:
        if name in POLICIES:
            ops += POLICIES[name]
        elif name in OPS:
            ops.append(name)
        else:
            raise ValueError(f"unknown DiffAugment policy or operation {name!r}: expected policies "
                             f"{sorted(POLICIES)} or operations {sorted(OPS)}")
    if not ops:
        raise ValueError(f"empty DiffAugment policy {policy!r}")
    return tuple(ops)


class DiffAugment:
    """Random differentiable augmentation ``[N, C, H, W] -> [N, C, H, W]`` applied to real and fake before D.

    Args:
        policy: policies and/or operations, comma-separated (default ``color,translation,cutout``, the paper's).
        p: strength, in [0, 1]: each operation is applied to each sample with probability ``p``; 0 = identity.
    """

    def __init__(self, policy: str | Sequence[str] = DEFAULT_POLICY, p: float = 1.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"DiffAugment p must be in [0, 1], got {p}")
        self.ops = parse_policy(policy)
        self.p = float(p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"DiffAugment expects images [N, C, H, W], got shape {list(x.shape)}")
        if self.p == 0.0:
            return x
        for name in self.ops:
            out = OPS[name](x, generator)
            if self.p < 1.0:
                keep = _uniform(x.shape[0], x, generator) >= self.p  # [N, 1, 1, 1]: samples left as they were
                out = torch.where(keep, x, out)
            x = out
        return x

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.ops)!r}, p={self.p})"


AUGMENT_CHOICES = ("none", "diffaugment")


def make_diffaugment(augment: str, p: float = 1.0, policy: str = DEFAULT_POLICY) -> DiffAugment | None:
    """A loss's ``augment`` option resolved: ``"diffaugment"`` -> :class:`DiffAugment`, ``"none"`` -> ``None``."""
    if augment not in AUGMENT_CHOICES:
        raise ValueError(f"augment must be one of {AUGMENT_CHOICES}, got {augment!r}")
    return DiffAugment(policy, p) if augment == "diffaugment" else None
