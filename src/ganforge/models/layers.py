"""Layers shared by the progressive (ProGAN) and style-based (StyleGAN2) families.

- Equalized learning rate (Karras et al., "Progressive Growing of GANs", ICLR 2018, sec. 4.1): weights are stored as
  N(0, 1) / lr_mul and scaled at run time by ``lr_mul / sqrt(fan_in)`` so every layer learns at the same speed
  under Adam.
- Pixel-wise feature normalisation (ProGAN sec. 4.2) and minibatch standard deviation (ProGAN sec. 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate: ``x [N, in] -> [N, out]``."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        return F.linear(x, w, b)


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate and 'same' padding: ``[N, in, H, W] -> [N, out, H, W]``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, lr_mul: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias_gain = lr_mul
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        return F.conv2d(x, w, b, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit average square: ``x / sqrt(mean_c(x^2) + eps)``."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStddev(nn.Module):
    """Append the average per-group standard deviation as extra feature maps: ``[N, C, H, W] -> [N, C+F, H, W]``.

    Groups of ``group_size`` samples (or the whole batch when smaller / not divisible) share one statistic per
    channel split ``num_channels`` (ProGAN sec. 3; StyleGAN2 uses group 4, 1 channel).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:
            g = n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, M, F, C/F, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, F, C/F, H, W]
        y = y.mean(dim=[2, 3, 4])  # [M, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling ``[N, C, H, W] -> [N, C, 2H, 2W]``."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 box-filter downsampling ``[N, C, H, W] -> [N, C, H/2, W/2]``."""
    return F.avg_pool2d(x, 2)
