"""Bilinear resizing exactly as TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)`` computes it.

The FID Inception network was evaluated in TF1 on images resized by this op, which differs from PyTorch's
``F.interpolate(mode="bilinear")``: output pixel ``i`` samples the input at ``i * in / out`` (no half-pixel centre
offset), and the last row/column is repeated at the border. torch-fidelity's ``inception-v3-compat`` extractor uses the
same rule; this implementation performs the same float32 operations in the same order, so its output is bit-identical
on the CPU (the test compares with torch-fidelity's function).
"""

from __future__ import annotations

import torch


def _taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (low, high) and the fractional weight of the high one, for each output position."""
    pos = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(
        in_size / out_size, dtype=torch.float32, device=device
    )
    lo = pos.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, pos - lo.float()


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float32 ``[N, C, H, W]`` to ``[N, C, size[0], size[1]]`` like TF1's bilinear resize."""
    if images.ndim != 4 or images.dtype != torch.float32:
        raise ValueError(f"expected float32 images [N, C, H, W], got {images.dtype} {list(images.shape)}")
    out_h, out_w = size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {size}")
    y_lo, y_hi, dy = _taps(images.shape[2], out_h, images.device)
    x_lo, x_hi, dx = _taps(images.shape[3], out_w, images.device)
    # Interpolate along x on the input rows, then gather the rows: the very float operations TF1 performs per output
    # pixel (so still bit-identical), on H input rows instead of out_h gathered ones (~7x faster from 64 to 299 px).
    left = images[..., x_lo]  # [N, C, H, out_w]
    rows = left + (images[..., x_hi] - left) * dx.view(1, 1, 1, out_w)
    top, bottom = rows[:, :, y_lo], rows[:, :, y_hi]  # [N, C, out_h, out_w]
    return top + (bottom - top) * dy.view(1, 1, out_h, 1)
