"""The ``digits`` feature extractor: ganforge's own digit classifier (:mod:`ganforge.models.classifier`), shipped in
``ganforge/pretrained/classifier`` (trained by ``ganforge classifier train``; its MNIST test accuracy is in that
folder's ``config.json``).

Every channel of an image is classified on its own, so the same extractor serves MNIST (1 channel: features
``[N, D]``, logits ``[N, 10]``) and Stacked MNIST (3 digits as R, G, B: features of the channels concatenated,
``[N, 3*D]``, and per-channel logits ``[N, 3, 10]``, i.e. 1000 modes). Images must be 28x28 (the classifier's input
size); there is no silent resizing. The network runs in float64, so features do not depend on the batch size.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import torch

from ganforge.checkpoint import load_networks, read_config, resolve_checkpoint
from ganforge.data.download import file_digest
from ganforge.metrics.base import register_extractor
from ganforge.metrics.features import FeatureExtractor, Features


def packaged_classifier() -> Path:
    """Folder of the shipped classifier checkpoint."""
    return Path(str(files("ganforge") / "pretrained" / "classifier"))


class DigitsExtractor(FeatureExtractor):
    name = "digits"

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None) -> None:
        path = resolve_checkpoint(weights if weights is not None else packaged_classifier())
        meta = read_config(path)
        if meta.get("kind") != "digits-classifier":
            raise ValueError(f"{path}: not a digits classifier checkpoint (kind={meta.get('kind')!r})")
        self.device = torch.device(device)
        self.net = load_networks(path, ["classifier"], device=self.device)["classifier"].double().requires_grad_(False)
        self.res = int(self.net.resolution)
        self.num_classes = int(self.net.num_classes)
        self.feature_dim = int(self.net.feature_dim)
        self.weights_source = str(path)
        self.weights_sha256 = file_digest(path / "classifier.safetensors")
        self.test_accuracy = meta.get("test", {}).get("accuracy")
        self.resize = f"none (images must be {self.res}x{self.res}); each channel classified separately"

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        n, c, h, w = images.shape
        if (h, w) != (self.res, self.res):
            raise ValueError(f"the digits extractor takes {self.res}x{self.res} images, got {h}x{w}; "
                             "use --extractor inception-v3 for other sizes")
        x = images.reshape(n * c, 1, h, w).to(self.device, torch.float64) / 127.5 - 1.0  # [N*C, 1, R, R] in [-1, 1]
        pool, logits = self.net.features(x)
        pool, logits = pool.cpu(), logits.cpu()
        if c == 1:
            return Features(pool, logits)
        return Features(pool.reshape(n, c * self.feature_dim), logits.reshape(n, c, self.num_classes))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.test_accuracy is not None:
            out["classifier_test_accuracy"] = self.test_accuracy
        return out


@register_extractor("digits")
def _digits(device: str | torch.device = "cpu", weights: str | Path | None = None) -> DigitsExtractor:
    return DigitsExtractor(device, weights)
