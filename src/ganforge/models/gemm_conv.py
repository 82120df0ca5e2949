"""A convolution that runs as one matrix product when its output map is small.

oneDNN's CPU convolution is slow to differentiate when a wide layer's output map has only a few positions: UNIT's
patch discriminator at 32 px ends in a 256 -> 512 4x4 convolution on a 4x4 map (2x2 out), whose forward and backward
passes took 13-15 ms at batch 16 on two cores, where the same product written as im2col + GEMM takes about 5
(BENCHMARKS.md, forty-ninth session). :class:`GemmConv2d` computes exactly that convolution (same parameters, state
dict and initialisation as ``nn.Conv2d``) as ``F.unfold`` followed by ``F.linear`` when the output has at most
``max_positions`` positions per image on a CPU, and takes the ordinary path otherwise: on larger maps oneDNN is the
faster one, and on GPUs the GEMM path was not measured.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GemmConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding, no dilation, one group) whose small output maps on a CPU are computed as one GEMM.

    ``x [N, C, H, W] -> [N, O, H_out, W_out]``; with ``H_out * W_out <= max_positions`` the patches are unfolded to
    ``[N * H_out * W_out, C * kh * kw]`` and multiplied by the weight viewed as ``[O, C * kh * kw]`` (in the
    weight's own memory order, so a channels_last weight is not copied). The result is the same convolution up to
    floating-point summation order; its memory is channels_last-ordered.
    """

    def __init__(self, *args, max_positions: int = 4, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("GemmConv2d supports one group, no dilation and integer zero padding only; got groups="
                             f"{self.groups}, dilation={self.dilation}, padding={self.padding!r} ({self.padding_mode})")
        if max_positions < 0:
            raise ValueError(f"max_positions must be >= 0, got {max_positions}")
        self.max_positions = max_positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.device.type != "cpu":  # unbatched input, or a GPU (where it was not measured)
            return super().forward(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if h_out * w_out > self.max_positions or h_out < 1 or w_out < 1 or c != self.in_channels:
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # [N, C*kh*kw, L]
        weight, out = self.weight, self.out_channels
        if weight.is_contiguous():  # [O, C, kh, kw]: columns in (C, kh, kw) order, as unfold gives them
            a, w2 = cols.transpose(1, 2).reshape(-1, c * kh * kw), weight.view(out, -1)
        else:  # a channels_last weight is stored (O, kh, kw, C): reorder the columns instead of the weight
            a = cols.view(n, c, kh * kw, -1).permute(0, 3, 2, 1).reshape(-1, c * kh * kw)
            w2 = weight.permute(0, 2, 3, 1).reshape(out, -1)
        y = F.linear(a, w2, self.bias)  # [N * L, O]
        return y.view(n, h_out, w_out, out).permute(0, 3, 1, 2)
