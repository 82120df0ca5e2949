"""The feature-extractor contract and the helpers every extractor shares.

An extractor maps uint8 images ``[N, C, H, W]`` (0..255) to :class:`Features`: a pooled feature vector per image (for
FID, KID, precision/recall) and, when the network has a classifier head, class logits (for IS and mode counts). It
declares what a result must record: its name, the sha256 of its weights and its resize policy.

Generated images are quantised to uint8 exactly like saved pictures (``ganforge.media.to_uint8``: clamp to [-1, 1],
scale to [0, 255], round), so a metric on generated tensors equals the metric on the PNGs written from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Features:
    """``pool``: ``[N, D]`` float64 features. ``logits``: ``[N, K]`` class logits, ``[N, C, K]`` for per-channel
    classifiers (Stacked MNIST), or None when the extractor has no classifier head."""

    pool: torch.Tensor
    logits: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.pool.shape[0])

    @staticmethod
    def concat(parts: list[Features]) -> Features:
        if not parts:
            raise ValueError("no features to concatenate (no images?)")
        logits = None if parts[0].logits is None else torch.cat([p.logits for p in parts])  # type: ignore[misc]
        return Features(torch.cat([p.pool for p in parts]), logits)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Model-space images in [-1, 1] -> uint8 ``[N, C, H, W]``; uint8 input is returned as is.

    Same rounding as :func:`ganforge.media.to_uint8`: ``round((clamp(x, -1, 1) + 1) * 127.5)``.
    """
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point in [-1, 1], got dtype {images.dtype}")
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def check_images(images: torch.Tensor, who: str) -> None:
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(f"{who}: expected uint8 images [N, C, H, W], got {images.dtype} {list(images.shape)}")


class FeatureExtractor:
    """Base class: subclasses set the attributes below and implement :meth:`extract` on one batch.

    ``name``: registry name. ``weights_sha256``: sha256 of the weights file actually loaded (recorded in every result).
    ``weights_source``: where the weights came from (path or package resource). ``resize``: the preprocessing policy
    in words. ``feature_dim``: D. ``num_classes``: K of the logits (0 = no classifier head).
    """

    name: str = ""
    weights_sha256: str = ""
    weights_source: str = ""
    resize: str = ""
    feature_dim: int = 0
    num_classes: int = 0

    def extract(self, images: torch.Tensor) -> Features:
        """uint8 ``[B, C, H, W]`` -> :class:`Features` of the batch (float64 on the CPU)."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> Features:
        images = quantize(images)
        check_images(images, self.name)
        return self.extract(images)

    def describe(self) -> dict[str, Any]:
        """What every metric result records about the extractor."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source,
            "resize": self.resize,
            "feature_dim": self.feature_dim,
        }
