"""ProGAN: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018.

Both networks are built for the target resolution at construction, block by block from 4x4 up ("level" ``L`` works
at ``4 * 2**L`` pixels), so a checkpoint always holds the same parameters whatever stage training has reached. The
stage ``(level, alpha)`` lives in two persistent buffers, ``stage_level`` and ``stage_alpha``, and so is saved in the
safetensors file; ``set_stage`` changes only those buffers (growing keeps every existing weight). At level ``L`` the
generator returns ``4 * 2**L`` pixel images and the discriminator expects them. While ``alpha < 1`` the newest block
is faded in (paper sec. 2, fig. 2): G outputs ``lerp(upsample(toRGB_{L-1}(h_{L-1})), toRGB_L(block_L(h_{L-1})),
alpha)`` and D mixes ``fromRGB_{L-1}(downsample(x))`` with ``block_L(fromRGB_L(x))`` the same way, so at
``alpha = 0`` both are exactly the previous stage.

Other ingredients: equalized learning rate (sec. 4.1) through ``EqualizedLinear``/``EqualizedConv2d``, whose He
gain ``sqrt(2)`` is applied after the leaky ReLU; pixel-wise feature normalisation after every G convolution and on
the latent (sec. 4.2); minibatch standard deviation before D's last block (sec. 3); linear G output (images are
clamped to [-1, 1] only for display). Conditional variants concatenate the one-hot class to the normalised latent in
G and add a projection term (Miyato & Koyama 2018) in D; the paper's own conditional runs used an auxiliary
classifier instead. Trained with WGAN-GP plus the drift term ``eps * D(x)^2`` (paper appendix A.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network
from ganforge.models.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    PixelNorm,
    downsample2x,
    upsample2x,
)

_ACT_GAIN = math.sqrt(2.0)  # He gain of the leaky ReLU, applied to its output (equalized learning rate)


def num_levels(resolution: int) -> int:
    """Number of growth levels above 4x4 for ``resolution`` (``log2(resolution) - 2``); power of two >= 8 only."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(
            f"ProGAN resolution must be a power of two >= 8 (8, 16, 32, 64, ...), got {resolution!r}; "
            "for 28x28 digits use --resolution 32 --resize pad"
        )
    return int(math.log2(resolution)) - 2


def level_channels(level: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps of the blocks at level ``level`` (``4 * 2**level`` pixels): ``fmap_base / 2**(level+1)``, capped.

    With the paper's ``fmap_base=8192, fmap_max=512``: 512 up to 32x32, then 256, 128, 64, 32, 16 at 1024x1024.
    """
    return max(1, min(fmap_base // 2 ** (level + 1), fmap_max))


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * _ACT_GAIN


class _ConvAct(nn.Module):
    """``EqualizedConv2d`` then gained leaky ReLU, then pixel norm if ``pixel_norm`` (G) or not (D)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pixel_norm: bool) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, kernel_size)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_act(self.conv(x)))


def _two_convs(c_in: int, c_mid: int, c_out: int, pixel_norm: bool) -> nn.Sequential:
    """The body of one resolution's block: two 3x3 conv + activation layers ``c_in -> c_mid -> c_out``."""
    return nn.Sequential(_ConvAct(c_in, c_mid, 3, pixel_norm), _ConvAct(c_mid, c_out, 3, pixel_norm))


class _Growing(Network):
    """Shared stage state of the growing generator and discriminator (persistent buffers, saved in checkpoints)."""

    resolution: int
    max_level: int

    def _init_stage(self) -> None:
        # Fresh networks start at the full resolution, so they satisfy the plain contract out of the box; the
        # schedule moves them to level 0 when training starts.
        self.register_buffer("stage_level", torch.tensor(self.max_level, dtype=torch.int64))
        self.register_buffer("stage_alpha", torch.tensor(1.0, dtype=torch.float32))

    def set_stage(self, level: int, alpha: float) -> None:
        """Move to ``level`` (current resolution ``4 * 2**level``) with the newest block faded in by ``alpha``.

        Only the two stage buffers change; every weight is kept. At level 0 there is nothing to fade: alpha must be 1.
        """
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= self.max_level:
            raise ValueError(
                f"level must be an int in [0, {self.max_level}] for resolution {self.resolution}, got {level!r}"
            )
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if level == 0 and alpha != 1.0:
            raise ValueError(f"at level 0 (4x4) there is no block to fade in: alpha must be 1, got {alpha}")
        self.stage_level.fill_(level)
        self.stage_alpha.fill_(alpha)

    @property
    def stage(self) -> tuple[int, float]:
        """The current ``(level, alpha)``."""
        return int(self.stage_level), float(self.stage_alpha)

    @property
    def current_resolution(self) -> int:
        return 4 * 2 ** int(self.stage_level)


@register_network("progan-g")
class ProGANGenerator(_Growing):
    """``z [N, z_dim] (+ c [N, c_dim]) -> img [N, channels, r, r]``, ``r`` the current stage resolution.

    ``fmap_base``/``fmap_max`` set the widths (see ``level_channels``); the paper's are 8192/512, tiny CPU models use
    e.g. 256/64. ``normalize_latent`` applies pixel norm to z first (paper sec. 4.2).
    """

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        resolution: int = 64,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        normalize_latent: bool = True,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, resolution, channels
        self.max_level = num_levels(resolution)
        nf = [level_channels(i, fmap_base, fmap_max) for i in range(self.max_level + 1)]
        self.nf0 = nf[0]
        self.latent_norm = PixelNorm() if normalize_latent else nn.Identity()
        self.dense = EqualizedLinear(z_dim + c_dim, nf[0] * 16)  # the paper's 4x4 "transposed conv" on a 1x1 input
        self.norm0 = PixelNorm()
        # blocks[0] is the 3x3 conv of the 4x4 block; blocks[L] (L >= 1) upsample then two 3x3 convs.
        self.blocks = nn.ModuleList(
            [_ConvAct(nf[0], nf[0], 3, pixel_norm=True)]
            + [_two_convs(nf[lv - 1], nf[lv], nf[lv], pixel_norm=True) for lv in range(1, self.max_level + 1)]
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(nf[lv], channels, 1) for lv in range(self.max_level + 1))
        self._init_stage()

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, full_resolution: bool = False) -> torch.Tensor:
        """Images at the current stage resolution, or nearest-upsampled to the target if ``full_resolution``."""
        c = check_conditioning(c, self.c_dim, z.shape[0])
        level, alpha = self.stage
        h = self.latent_norm(z)  # [N, z_dim]
        if c is not None:
            h = torch.cat([h, c.to(h.dtype)], dim=1)  # [N, z_dim + c_dim]
        h = self.norm0(_act(self.dense(h)).view(-1, self.nf0, 4, 4))  # [N, nf0, 4, 4]
        h = self.blocks[0](h)
        prev = h
        for lv in range(1, level + 1):
            prev = h
            h = self.blocks[lv](upsample2x(h))  # [N, nf_lv, 4*2^lv, 4*2^lv]
        img = self.to_rgb[level](h)  # [N, C, r, r]
        if level > 0 and alpha < 1.0:
            low = upsample2x(self.to_rgb[level - 1](prev))  # [N, C, r, r]: the previous stage's output
            img = torch.lerp(low, img, alpha)
        if full_resolution and level < self.max_level:
            img = F.interpolate(img, scale_factor=2 ** (self.max_level - level), mode="nearest")
        return img


@register_network("progan-d")
class ProGANDiscriminator(_Growing):
    """``img [N, channels, r, r] (+ c) -> logit [N]``, ``r`` the current stage resolution; mirror of the generator.

    ``mbstd_group`` is the minibatch-stddev group size (paper: 4; the whole batch when smaller or not divisible).
    """

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 64,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        mbstd_group: int = 4,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if mbstd_group < 1:
            raise ValueError(f"mbstd_group must be >= 1, got {mbstd_group}")
        self.c_dim, self.resolution, self.channels = c_dim, resolution, channels
        self.max_level = num_levels(resolution)
        nf = [level_channels(i, fmap_base, fmap_max) for i in range(self.max_level + 1)]
        levels = range(self.max_level + 1)
        self.from_rgb = nn.ModuleList(_ConvAct(channels, nf[lv], 1, pixel_norm=False) for lv in levels)
        # blocks[L] (L >= 1): two 3x3 convs, nf_L -> nf_L -> nf_{L-1}, then 2x2 box downsampling in forward.
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [_two_convs(nf[lv], nf[lv], nf[lv - 1], pixel_norm=False) for lv in levels[1:]]
        )
        self.mbstd = MinibatchStddev(group_size=mbstd_group, num_channels=1)
        self.conv0 = _ConvAct(nf[0] + 1, nf[0], 3, pixel_norm=False)
        self.dense0 = EqualizedLinear(nf[0] * 16, nf[0])
        self.out = EqualizedLinear(nf[0], 1)
        self.embed = EqualizedLinear(c_dim, nf[0], bias=False) if c_dim > 0 else None
        self._init_stage()

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, img.shape[0])
        level, alpha = self.stage
        r = 4 * 2**level
        if img.ndim != 4 or tuple(img.shape[1:]) != (self.channels, r, r):
            raise ValueError(
                f"ProGAN discriminator at level {level} expects images [N, {self.channels}, {r}, {r}], "
                f"got {list(img.shape)}"
            )
        x = self.from_rgb[level](img)  # [N, nf_level, r, r]
        if level > 0:
            x = downsample2x(self.blocks[level](x))  # [N, nf_{level-1}, r/2, r/2]
            if alpha < 1.0:
                low = self.from_rgb[level - 1](downsample2x(img))  # the previous stage's input path
                x = torch.lerp(low, x, alpha)
            for lv in range(level - 1, 0, -1):
                x = downsample2x(self.blocks[lv](x))
        x = self.conv0(self.mbstd(x))  # [N, nf0, 4, 4]
        h = _act(self.dense0(x.flatten(1)))  # [N, nf0]
        logit = self.out(h).squeeze(1)  # [N]
        if self.embed is not None and c is not None:
            logit = logit + (self.embed(c.to(h.dtype)) * h).sum(dim=1)  # projection discriminator term
        return logit
