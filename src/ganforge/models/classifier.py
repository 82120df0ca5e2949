"""A small convolutional digit classifier: the ``digits`` feature extractor of ``ganforge.metrics``.

LeCun et al., "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE 1998, in a modern form: five 3x3
convolutions with batch norm and ReLU (two of them stride 2: 28 -> 14 -> 7), global average pooling to a ``width*4``
feature vector, one linear layer to the class logits. The pooled vector is the feature space of digits-FID/KID and
precision/recall; the logits give the Inception Score and the mode counts. About 70k parameters (~280 KB).

It is a plain ganforge network (config captured, saved with ``save_checkpoint``); training lives in
:mod:`ganforge.metrics.train_classifier`, not here.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.models.base import Network, register_network


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


@register_network("digits-classifier")
class DigitsClassifier(Network):
    """``img [N, channels, R, R]`` in [-1, 1] -> logits ``[N, num_classes]``; :meth:`features` also returns the
    pooled ``[N, 4 * width]`` features."""

    def __init__(self, channels: int = 1, resolution: int = 28, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        if resolution % 4 != 0:
            raise ValueError(f"classifier resolution must be divisible by 4 (two stride-2 layers), got {resolution}")
        self.channels, self.resolution, self.num_classes = channels, resolution, num_classes
        self.feature_dim = 4 * width
        self.body = nn.Sequential(
            *_block(channels, width, 1),
            *_block(width, 2 * width, 2),  # R/2
            *_block(2 * width, 2 * width, 1),
            *_block(2 * width, 4 * width, 2),  # R/4
            *_block(4 * width, 4 * width, 1),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled [N, 4*width], logits [N, num_classes])``."""
        if img.ndim != 4 or img.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(
                f"classifier expects [N, {self.channels}, {self.resolution}, {self.resolution}], got {list(img.shape)}"
            )
        pooled = self.body(img).mean(dim=(2, 3))  # [N, 4*width]
        return pooled, self.head(pooled)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.features(img)[1]
