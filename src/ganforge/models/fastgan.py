"""A FastGAN-style lightweight family: Liu, Zhu, Song & Elgammal 2021, "Towards Faster and Stabilized GAN Training
for High-fidelity Few-shot Image Synthesis" (ICLR 2021), narrowed for CPUs at 32, 64 and 128 pixels.

Generator (paper sec. 3.1, fig. 3): ``z`` -> 4x4 by a transposed convolution, then up-sampling blocks (nearest x2,
3x3 convolution, batch norm, GLU) to the output size, and **skip-layer excitation** (SLE): a low-resolution feature
map is pooled to 4x4, squeezed to one gate per channel (4x4 convolution, Swish, 1x1 convolution, sigmoid), and
multiplies the channels of a feature map 8 times larger. The paper pairs sizes 16x apart (8->128, ..., 32->512) at
1024 pixels; at 32-128 pixels this family pairs 4->32, 8->64, 16->128 so every output size from 32 up has one
excitation. Noise injection is left out (deterministic ``forward``).

Discriminator (paper sec. 3.2, fig. 4): down-sampling blocks, each the mean of a strided 4x4 + 3x3 convolution path
and an average-pool + 1x1 convolution path, spectral norm on every convolution, down to 8x8, then a 4x4 convolution
giving a 5x5 map of logits, averaged. **Self-supervision**: two small decoders (nearest x2 + 3x3 convolution + batch
norm + GLU, twice) turn the 8x8 features into a 32x32 reconstruction of the whole image and a random quadrant of the
16x16 features into a 32x32 reconstruction of that quarter of the image (:meth:`FastGANDiscriminator.reconstruct`).
The loss (``ganforge.losses.fastgan``) compares them with a plain L1 distance on real images only (the paper uses
LPIPS, whose weights cannot be had offline).

Conditional variants (``c_dim > 0``) concatenate the one-hot class to ``z`` in G and add a projection term (Miyato &
Koyama 2018) on D's pooled features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network

RESOLUTIONS = (32, 64, 128)
RECON_SIZE = 32  # decoders' output size
SLE_RATIO = 8  # a feature map at size s excites the one at size 8 s


def _check_resolution(resolution: int) -> int:
    """Number of x2 steps from 4 to ``resolution``; only 32, 64 and 128 are supported."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"FastGAN resolution must be one of {RESOLUTIONS}, got {resolution}")
    return int(math.log2(resolution)) - 2


def _width(size: int, width: int, max_width: int) -> int:
    """Channels at spatial ``size``: ``width * 128 / size``, capped at ``max_width``, at least 8."""
    return max(8, min(max_width, width * 128 // size))


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class UpBlock(nn.Module):
    """``[N, a, s, s] -> [N, b, 2s, 2s]``: nearest x2, 3x3 conv to ``2b``, batch norm, GLU."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(a, 2 * b, 3, 1, 1, bias=False)
        self.norm = nn.BatchNorm2d(2 * b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))), dim=1)


class SkipExcitation(nn.Module):
    """Skip-layer excitation: ``gate(low [N, a, s, s]) * high [N, b, S, S]`` with one sigmoid gate per channel."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(a, b, 4, 1, 0, bias=False), nn.SiLU(),
            nn.Conv2d(b, b, 1, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.squeeze(low)  # [N, b, S, S] * [N, b, 1, 1]


@register_network("fastgan-g")
class FastGANGenerator(Network):
    """``z [N, z_dim] (+ c [N, c_dim]) -> img [N, channels, R, R]`` in [-1, 1], R in 32, 64, 128.

    Args:
        width: channels at size s are ``width * 128 / s`` (capped at ``max_width``): with 8, 128 at 8x8, 16 at 64x64.
        max_width: channel cap.
    """

    def __init__(
        self,
        z_dim: int = 100,
        c_dim: int = 0,
        resolution: int = 64,
        channels: int = 3,
        width: int = 8,
        max_width: int = 256,
    ) -> None:
        super().__init__()
        n = _check_resolution(resolution)
        if width < 1 or max_width < 1:
            raise ValueError(f"width and max_width must be >= 1, got {width}, {max_width}")
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, resolution, channels
        sizes = [4 * 2**i for i in range(n + 1)]  # 4, 8, ..., R
        chans = {s: _width(s, width, max_width) for s in sizes}
        self.init = nn.Sequential(
            nn.ConvTranspose2d(z_dim + c_dim, 2 * chans[4], 4, 1, 0, bias=False), nn.BatchNorm2d(2 * chans[4]),
            nn.GLU(1),
        )
        self.ups = nn.ModuleDict({str(s): UpBlock(chans[s // 2], chans[s]) for s in sizes[1:]})
        self.sle = nn.ModuleDict(
            {str(s): SkipExcitation(chans[s // SLE_RATIO], chans[s]) for s in sizes if s // SLE_RATIO in chans}
        )
        self.to_rgb = nn.Conv2d(chans[resolution], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, z.shape[0])
        h = z if c is None else torch.cat([z, c], dim=1)  # [N, z_dim + c_dim]
        x = self.init(h[:, :, None, None])  # [N, ch4, 4, 4]
        feats = {4: x}
        for key, up in self.ups.items():
            size = int(key)
            x = up(x)  # [N, ch_s, s, s]
            if key in self.sle:
                x = self.sle[key](feats[size // SLE_RATIO], x)
            feats[size] = x
        return torch.tanh(self.to_rgb(x))  # [N, C, R, R]


class DownBlock(nn.Module):
    """``[N, a, s, s] -> [N, b, s/2, s/2]``: mean of a conv path (4x4 stride 2, 3x3) and a pool + 1x1 path."""

    def __init__(self, a: int, b: int, spectral: bool) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _sn(nn.Conv2d(a, b, 4, 2, 1, bias=False), spectral), nn.BatchNorm2d(b), nn.LeakyReLU(0.2),
            _sn(nn.Conv2d(b, b, 3, 1, 1, bias=False), spectral), nn.BatchNorm2d(b), nn.LeakyReLU(0.2),
        )
        self.direct = nn.Sequential(
            nn.AvgPool2d(2), _sn(nn.Conv2d(a, b, 1, 1, 0, bias=False), spectral), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """``[N, a, 8, 8] -> [N, channels, 32, 32]`` in [-1, 1]: two (nearest x2, 3x3 conv, batch norm, GLU) steps."""

    def __init__(self, a: int, channels: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(UpBlock(a, 2 * width), UpBlock(2 * width, width), nn.Conv2d(width, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


@register_network("fastgan-d")
class FastGANDiscriminator(Network):
    """``img [N, channels, R, R] (+ c) -> logit [N]``, with decoders for the self-supervised reconstruction.

    Args:
        width: channels at size s are ``width * 128 / s`` (capped at ``max_width``), as in G.
        max_width: channel cap.
        decoder_width: channels of the decoders' last block (twice that in their first).
        spectral: spectral norm on D's convolutions (the paper's choice).
    """

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 64,
        channels: int = 3,
        width: int = 8,
        max_width: int = 256,
        decoder_width: int = 16,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        n = _check_resolution(resolution)
        if min(width, max_width, decoder_width) < 1:
            raise ValueError(f"width, max_width and decoder_width must be >= 1, got {width}, {max_width}, "
                             f"{decoder_width}")
        self.c_dim, self.resolution, self.channels = c_dim, resolution, channels
        sizes = [resolution // 2**i for i in range(n)]  # R, R/2, ..., 8
        chans = {s: _width(s, width, max_width) for s in sizes}
        self.stem = nn.Sequential(
            _sn(nn.Conv2d(channels, chans[resolution // 2], 4, 2, 1, bias=False), spectral), nn.LeakyReLU(0.2)
        )  # [N, ch, R/2, R/2]
        self.downs = nn.ModuleDict(
            {str(s // 2): DownBlock(chans[s], chans[s // 2], spectral) for s in sizes[1:] if s > 8}
        )
        self.head = nn.Sequential(
            _sn(nn.Conv2d(chans[8], chans[8], 1, 1, 0, bias=False), spectral), nn.BatchNorm2d(chans[8]),
            nn.LeakyReLU(0.2), _sn(nn.Conv2d(chans[8], 1, 4, 1, 0), spectral),
        )  # [N, 1, 5, 5]
        self.embed = _sn(nn.Linear(c_dim, chans[8], bias=False), spectral) if c_dim > 0 else None
        self.decode_whole = Decoder(chans[8], channels, decoder_width)
        self.decode_part = Decoder(chans[16], channels, decoder_width)

    def features(self, img: torch.Tensor) -> dict[int, torch.Tensor]:
        """Feature maps by spatial size: ``{R/2: [N, ch, R/2, R/2], ..., 8: [N, ch8, 8, 8]}``."""
        if img.ndim != 4 or img.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(f"expected images [N, {self.channels}, {self.resolution}, {self.resolution}], got "
                             f"{list(img.shape)}")
        x = self.stem(img)
        feats = {self.resolution // 2: x}
        for key, down in self.downs.items():
            x = down(x)
            feats[int(key)] = x
        return feats

    def logits(self, feat8: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Logits ``[N]`` from the 8x8 features ``[N, ch8, 8, 8]`` (mean of the 5x5 map, + projection term)."""
        logit = self.head(feat8).mean(dim=(1, 2, 3))  # [N]
        if self.embed is not None and c is not None:
            logit = logit + (self.embed(c) * feat8.mean(dim=(2, 3))).sum(dim=1)
        return logit

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, part: int | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Logits ``[N]``; with a quadrant ``part``, also the reconstruction pairs (see :meth:`reconstruct`).

        Both passes go through ``forward`` because ``torch.compile`` (``--compile``) compiles ``forward`` only: an
        eager reconstruction pass beside a compiled logits pass updates the same batch-norm buffers two ways, which
        autograd refuses ("modified by an inplace operation").
        """
        c = check_conditioning(c, self.c_dim, img.shape[0])
        if part is not None and not 0 <= part <= 3:
            raise ValueError(f"part must be 0, 1, 2 or 3 (a quadrant), got {part}")
        feats = self.features(img)
        if part is None:
            return self.logits(feats[8], c)
        row, col = divmod(part, 2)
        f16 = feats[16][:, :, row * 8 : row * 8 + 8, col * 8 : col * 8 + 8]  # [N, ch16, 8, 8]
        half = self.resolution // 2
        quarter = img[:, :, row * half : (row + 1) * half, col * half : (col + 1) * half]  # [N, C, R/2, R/2]
        pairs = [
            (self.decode_whole(feats[8]), _resize(img, RECON_SIZE)),
            (self.decode_part(f16), _resize(quarter, RECON_SIZE)),
        ]
        return self.logits(feats[8], c), pairs

    def reconstruct(
        self, img: torch.Tensor, c: torch.Tensor | None = None, part: int | None = None
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Logits ``[N]`` and the self-supervised ``(reconstruction, target)`` pairs, each ``[N, C, 32, 32]``.

        The whole image is reconstructed from the 8x8 features; quadrant ``part`` (0-3, row-major; ``None`` draws
        one for the batch from the global RNG) of the image from the same quadrant of the 16x16 features. Targets
        are the input resized to 32x32 (area-averaged down, bilinear up).
        """
        if part is None:
            part = int(torch.randint(0, 4, ()))
        return self(img, c, part)


def _resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, size, size]``: area average when shrinking, bilinear when enlarging."""
    if img.shape[-1] == size:
        return img
    if img.shape[-1] > size:
        return F.adaptive_avg_pool2d(img, size)
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
