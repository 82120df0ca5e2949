"""Building blocks of the style-based generator and residual discriminator.

Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (StyleGAN2), in pure PyTorch with no
custom ops, so the same code runs on CPU, CUDA and MPS, under autocast and ``torch.compile``:

- :class:`MappingNetwork` (sec. 2 of the original StyleGAN paper): z (+ class embedding) -> w through an MLP whose
  learning rate is multiplied by 0.01; it tracks ``w_avg`` for the truncation trick.
- :func:`modulated_conv2d` (StyleGAN2 sec. 2.2, eq. 1-3): weight modulation and demodulation, computed as
  "scale the input, shared convolution, scale the output" so every sample shares one ordinary ``conv2d`` (fast,
  channels_last friendly) instead of a grouped convolution with per-sample weights.
- :class:`StyleConv` (modulated 3x3 convolution + per-pixel noise with learned strength + bias + leaky ReLU),
  :class:`ToRGB` (modulated 1x1, no demodulation) and :class:`SynthesisBlock` (StyleGAN2 fig. 7, "skip" generator).
- :class:`DiscriminatorBlock` (StyleGAN2 fig. 7, "residual" discriminator) and :class:`DiscriminatorEpilogue`.

Resampling uses the paper's [1, 3, 3, 1] binomial filter: 2x upsampling is bilinear interpolation (identical to that
filter in the interior; borders replicate instead of zero-padding) and 2x downsampling is a depthwise blur with
stride 2 (zero-padded borders, as in the reference).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.layers import EqualizedConv2d, EqualizedLinear, MinibatchStddev

SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) with gain sqrt(2), keeping activations at unit variance (equalized-lr convention)."""
    return F.leaky_relu(x, 0.2) * SQRT2


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of ``x [N, D]`` to unit mean square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, 2H, 2W]`` with the [1, 3, 3, 1] filter (bilinear, half-pixel centres)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class Downsample2x(nn.Module):
    """``[N, C, H, W] -> [N, C, H/2, W/2]``: depthwise blur with the 4x4 binomial [1, 3, 3, 1] filter, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        self.register_buffer("kernel", (torch.outer(k, k) / 64.0)[None, None], persistent=False)  # [1, 1, 4, 4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        w = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        return F.conv2d(x, w, stride=2, padding=1, groups=c)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True
) -> torch.Tensor:
    """Modulated convolution, StyleGAN2 eq. 1-3, with 'same' padding.

    ``x [N, I, H, W]``, ``weight [O, I, k, k]``, ``styles [N, I]`` -> ``[N, O, H, W]``. Modulating the weight by
    ``styles`` equals scaling the input channels; demodulating it (dividing each output filter by its L2 norm,
    eq. 3) equals scaling the output channels. Both scalings are per sample, so one shared ``conv2d`` serves the batch.
    """
    y = F.conv2d(x * styles.to(x.dtype)[:, :, None, None], weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:
        # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2 + eps), in fp32 even under bf16 autocast (which would run the
        # matmul in bf16).
        with torch.autocast(x.device.type, enabled=False):
            w2 = weight.float().square().sum(dim=[2, 3])  # [O, I]
            dcoefs = (styles.float().square() @ w2.t() + 1e-8).rsqrt()  # [N, O]
        y = y * dcoefs.to(y.dtype)[:, :, None, None]
    return y


class MappingNetwork(nn.Module):
    """``z [N, z_dim]`` (+ ``c [N, c_dim]``) -> ``w`` broadcast to ``[N, num_ws, w_dim]`` (or ``[N, w_dim]``).

    z and the class embedding are each normalised to unit mean square and concatenated, then pass ``num_layers``
    equalized fully connected layers with learning-rate multiplier ``lr_mul`` (0.01 in the paper). With
    ``w_avg_beta`` set, ``w_avg`` tracks the running mean of w (updated only when asked, by the training loss)
    and ``truncation_psi < 1`` pulls the first ``truncation_cutoff`` ws towards it (the truncation trick).
    ``z_dim = 0`` gives the discriminator's label mapping (c only).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        if z_dim + c_dim <= 0:
            raise ValueError(f"mapping network needs z_dim or c_dim > 0, got z_dim={z_dim}, c_dim={c_dim}")
        if num_layers < 1:
            raise ValueError(f"mapping network needs num_layers >= 1, got {num_layers}")
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, c_dim, w_dim, num_ws, w_avg_beta
        self.embed = EqualizedLinear(c_dim, w_dim) if c_dim > 0 else None
        dims = [(z_dim if z_dim > 0 else 0) + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.float()))  # [N, z_dim]
        if self.embed is not None:
            parts.append(normalize_2nd_moment(self.embed(c.float())))  # [N, w_dim]
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = lrelu(layer(x))  # [N, w_dim]
        if update_w_avg:
            if self.w_avg_beta is None:
                raise ValueError("this mapping network does not track w_avg (w_avg_beta=None)")
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        ws = x.unsqueeze(1).expand(-1, self.num_ws, -1)  # [N, num_ws, w_dim]
        if truncation_psi != 1.0:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs w_avg, which this mapping network does not track")
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            if not 0 <= cut <= self.num_ws:
                raise ValueError(f"truncation_cutoff must be in [0, {self.num_ws}], got {truncation_cutoff}")
            trunc = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], truncation_psi)
            ws = torch.cat([trunc, ws[:, cut:]], dim=1)
        return ws


class StyleConv(nn.Module):
    """Modulated 3x3 convolution (optionally after 2x upsampling), noise injection, bias, leaky ReLU.

    ``x [N, I, H, W], w [N, w_dim] -> [N, O, R, R]`` with ``R = resolution``. The noise image (one channel,
    broadcast over features) is scaled by a learned strength that starts at 0 (StyleGAN sec. 3.2).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.up, self.resolution = up, resolution
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.up:
            x = upsample2x(x)  # [N, I, R, R]
        x = modulated_conv2d(x, self.weight, self.affine(w))  # [N, O, R, R]
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[:, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, no demodulation, linear output: ``[N, I, R, R] -> [N, C, R, R]``."""

    def __init__(self, in_channels: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [N, I]
        y = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return y + self.bias.to(y.dtype)[:, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the skip-architecture generator (StyleGAN2 fig. 7b).

    The 4x4 block starts from a learned constant and has one StyleConv; later blocks upsample with the first of
    two StyleConvs. Every block adds its ToRGB output to the upsampled image of the previous block. The block
    consumes ``num_conv + 1`` consecutive ws; its ToRGB w is the next block's first (hence ``num_ws = 2 log2 R - 2``).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.convs = nn.ModuleList([StyleConv(out_channels, out_channels, w_dim, 4)])
        else:
            self.const = None
            self.convs = nn.ModuleList(
                [
                    StyleConv(in_channels, out_channels, w_dim, resolution, up=True),
                    StyleConv(out_channels, out_channels, w_dim, resolution),
                ]
            )
        self.torgb = ToRGB(out_channels, channels, w_dim)
        self.num_conv = len(self.convs)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws [N, num_conv + 1, w_dim]``; returns features ``[N, O, R, R]`` and image ``[N, C, R, R]``."""
        if self.const is not None:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # [N, O, 4, 4]
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])  # [N, C, R, R]
        img = y if img is None else upsample2x(img).to(y.dtype) + y
        return x, img


class DiscriminatorBlock(nn.Module):
    """Residual block (StyleGAN2 fig. 7c): two 3x3 convs, the second after blur-downsampling, plus a downsampled
    1x1 skip; the sum is scaled by sqrt(1/2) to keep the variance. ``[N, I, R, R] -> [N, O, R/2, R/2]``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False)
        self.down = Downsample2x()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(self.down(x))
        x = lrelu(self.conv0(x))
        x = lrelu(self.conv1(self.down(x)))
        return (x + y) * math.sqrt(0.5)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, 3x3 conv, fully connected, output ``[N, out_dim]`` (1 logit or a projection)."""

    def __init__(self, in_channels: int, out_dim: int, mbstd_group: int, mbstd_channels: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStddev(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(in_channels + mbstd_channels, in_channels, 3)
        self.fc = EqualizedLinear(in_channels * 16, in_channels)
        self.out = EqualizedLinear(in_channels, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)  # [N, I + F, 4, 4]
        x = lrelu(self.conv(x))  # [N, I, 4, 4]
        x = lrelu(self.fc(x.flatten(1)))  # [N, I]
        return self.out(x)  # [N, out_dim]
