"""Differentiable perceptual distances between float images, for PPL and projection.

The feature extractors of :mod:`ganforge.metrics` read uint8 images (exactly like saved pictures), which is right for
FID but wrong here: PPL compares images 1e-4 apart in latent space and projection needs gradients, so both work on
the float images. Three distances, each ``(a [N, C, H, W], b [N, C, H, W]) in [-1, 1] -> [N]``:

- ``digits``: LPIPS-like distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
  Metric", eq. 1) through the five convolution blocks of the ``digits`` extractor's classifier: activations are
  normalised to unit length over channels, squared differences averaged over positions and summed over layers. The
  learned per-channel LPIPS weights need the LPIPS training data and are not available offline, so every channel
  weighs 1 (the "baseline" variant of the LPIPS paper).
- ``inception-v3``: the same construction through five stages of the FID Inception network (Conv2d_2b, Conv2d_4a,
  Mixed_5d, Mixed_6e, Mixed_7c) with its 299x299 preprocessing; heavy on a CPU.
- ``pixel``: no network: mean squared difference summed over an image pyramid (the image and its 2x, 4x, ...
  average-pooled versions down to 4x4), so both fine detail and overall layout count.

Results always say which distance they used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.metrics import digits, inception  # noqa: F401  (register the extractors build_distance reads)
from ganforge.metrics.base import EXTRACTORS

DISTANCES = ("pixel", "digits", "inception-v3")
INCEPTION_LAYERS = ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c")


class PyramidDistance(nn.Module):
    """Pixel + multi-scale distance: ``sum_s mean((pool_s(a) - pool_s(b))^2)`` for ``s = 1, 2, 4, ...`` (``[N]``)."""

    name = "pixel"

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        feats = [img]
        while feats[-1].shape[-1] >= 8 and feats[-1].shape[-2] >= 8:
            feats.append(F.avg_pool2d(feats[-1], 2))
        return feats

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        return sum((a - b).square().mean(dim=[1, 2, 3]) for a, b in zip(fa, fb))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


class FeatureDistance(nn.Module):
    """LPIPS-like distance through the activations of ``layers`` (modules of a frozen ``net``).

    ``preprocess`` maps model-space images ``[N, C, H, W]`` in [-1, 1] to the network's input; every step is
    differentiable. ``features`` and ``distance`` are exposed separately so a fixed target is encoded once.
    """

    def __init__(self, name: str, net: nn.Module, layers: list[nn.Module],
                 preprocess: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not layers:
            raise ValueError(f"perceptual distance {name!r}: no layers to read features from")
        self.name, self.net, self.preprocess = name, net.eval().requires_grad_(False), preprocess
        self._layers = layers
        self._store: list[torch.Tensor] | None = None
        for layer in layers:
            layer.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if self._store is not None:
            self._store.append(output)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised activations ``[N, C_l, H_l, W_l]`` of each layer."""
        self._store = []
        try:
            self.net(self.preprocess(img))
            feats = self._store
        finally:
            self._store = None
        if len(feats) != len(self._layers):
            raise RuntimeError(f"perceptual distance {self.name!r}: got {len(feats)} feature maps, "
                               f"expected {len(self._layers)}")
        n = img.shape[0]
        # Preprocessing may split each image into several network inputs (the digits classifier reads channels one
        # by one): fold them back into the channel axis so distances sum over them.
        return [(f / (f.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()).reshape(n, -1, *f.shape[2:])
                for f in feats]

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        return sum((a - b).square().sum(dim=1).mean(dim=[1, 2]) for a, b in zip(fa, fb))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


def _match_channels(img: torch.Tensor, channels: int) -> torch.Tensor:
    if img.shape[1] == channels:
        return img
    if img.shape[1] == 3 and channels == 1:
        return img.mean(dim=1, keepdim=True)
    if img.shape[1] == 1 and channels == 3:
        return img.expand(-1, 3, -1, -1)
    raise ValueError(f"cannot compare {img.shape[1]}-channel images with a {channels}-channel network")


def digits_distance(classifier: nn.Module) -> FeatureDistance:
    """LPIPS-like distance through a :class:`~ganforge.models.classifier.DigitsClassifier` (its ReLU outputs).

    As in the ``digits`` extractor, a 1-channel classifier reads every image channel on its own (Stacked MNIST holds
    one digit per channel) and the distance sums over channels; images are resized bilinearly to its input size.
    """
    layers = [m for m in classifier.body if isinstance(m, nn.ReLU)]
    size = int(classifier.resolution)

    def preprocess(img: torch.Tensor) -> torch.Tensor:
        n, c, h, w = img.shape
        x = img.reshape(n * c, 1, h, w) if int(classifier.channels) == 1 else _match_channels(img, 3)
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.to(next(classifier.parameters()).dtype)

    return FeatureDistance("digits", classifier, layers, preprocess)


def inception_distance(net: nn.Module) -> FeatureDistance:
    """LPIPS-like distance through the FID Inception network (``ganforge.metrics.inception_net.FIDInceptionV3``)."""
    from ganforge.metrics.resize import resize_bilinear_tf1

    layers = [getattr(net, name) for name in INCEPTION_LAYERS]

    def preprocess(img: torch.Tensor) -> torch.Tensor:
        x = (_match_channels(img, 3).float().clamp(-1, 1) + 1) * 127.5  # the uint8 scale, without rounding
        if x.shape[-2:] != (299, 299):
            x = resize_bilinear_tf1(x, (299, 299))
        return (x - 128) / 128

    return FeatureDistance("inception-v3", net, layers, preprocess)


def build_distance(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The distance ``name`` (one of :data:`DISTANCES`) on ``device``; networks come from the extractor registry."""
    if name not in DISTANCES:
        raise ValueError(f"unknown perceptual distance {name!r}; expected one of {DISTANCES}")
    if name == "pixel":
        return PyramidDistance().to(device)
    extractor = EXTRACTORS.get(name)(device=device)
    net = getattr(extractor, "net", None)
    if not isinstance(net, nn.Module):
        raise ValueError(f"the {name!r} extractor exposes no network (.net) to read intermediate features from")
    build = digits_distance if name == "digits" else inception_distance
    return build(net).to(device)
