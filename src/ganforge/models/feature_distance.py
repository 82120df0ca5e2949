"""How far a picture's frozen-network features lie from those of real pictures: the second stage of a detector.

A detector trained on real-vs-fake learns the traces of the generators it was shown; a generator it never saw, or
fakes re-saved and resized until their traces are gone, pass it. This stage needs no fakes: it models the pooled
features of real pictures (the FID Inception-v3 of ``ganforge.metrics.inception``, Szegedy et al. 2016; the
statistic FID compares sets with, Heusel et al. 2017, applied to one picture) as a Gaussian and flags what lies far
from it. Anchor for the idea: Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
Adversarial Attacks", NeurIPS 2018 (Mahalanobis distance on pretrained features).

The covariance (shrunk toward its diagonal when fitted, ``ganforge.detection.distance``) is stored in low rank, as
probabilistic PCA keeps it (Tipping & Bishop 1999): its top ``rank`` eigenvectors ``basis [k, D]`` and eigenvalues
``eigvals [k]``, and one variance ``residual_var`` for the rest of the space. The squared distance is

    d2(x) = sum_i (basis_i . (x - mean))^2 / eigvals_i + |x - mean - projection|^2 / residual_var

``forward(features [N, D]) -> logit [N]`` (positive = generated) is ``log(d2 / threshold) / scale``: 0 at the
stored threshold (a fixed share of real calibration pictures lie beyond it), and ``scale`` sets how fast the
probability ``sigmoid(logit)`` moves away from 0.5 (fitted so that the median real calibration picture gets
``ganforge.detection.distance.MEDIAN_REAL_PROBABILITY``; this stage saw no fakes, so its probability is not
calibrated against them). ``backbone_sha256`` records the weights it was fitted on: the distance means nothing on
another network, and loading it against other weights is refused by ``ganforge.detection.distance``.
"""

from __future__ import annotations

import torch

from ganforge.models.base import Network, register_network

BACKBONES = ("inception-v3",)


@register_network("feature-distance")
class FeatureDistance(Network):
    """Low-rank Mahalanobis distance to a Gaussian of real features; see the module docstring.

    Args:
        backbone: the feature extractor's registry name (``ganforge.metrics``), one of ``BACKBONES``.
        backbone_sha256: sha256 of the weights file the Gaussian was fitted on ("" before fitting).
        feature_dim: D, the backbone's pooled feature size.
        rank: k, the eigenvectors kept (1 <= k <= D).
    """

    def __init__(self, backbone: str = "inception-v3", backbone_sha256: str = "", feature_dim: int = 2048,
                 rank: int = 512) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {backbone!r}")
        if feature_dim < 1 or not 1 <= rank <= feature_dim:
            raise ValueError(f"need feature_dim >= 1 and 1 <= rank <= feature_dim, got {feature_dim}, {rank}")
        self.backbone, self.backbone_sha256 = backbone, backbone_sha256
        self.feature_dim, self.rank = feature_dim, rank
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("basis", torch.eye(rank, feature_dim))
        self.register_buffer("eigvals", torch.ones(rank))
        self.register_buffer("residual_var", torch.ones(()))
        self.register_buffer("threshold", torch.ones(()))
        self.register_buffer("scale", torch.ones(()))

    def distance2(self, feats: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` features -> ``[N]`` squared distances (module docstring), computed in float64."""
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            raise ValueError(f"distance stage expects features [N, {self.feature_dim}], got shape {list(feats.shape)}")
        d = feats.double() - self.mean.double()
        proj = d @ self.basis.double().T  # [N, k]
        resid = (d * d).sum(1) - (proj * proj).sum(1)
        return (proj * proj / self.eigvals.double()).sum(1) + resid.clamp_min(0) / self.residual_var.double()

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` features -> ``[N]`` logits, 0 at the stored threshold."""
        d2 = self.distance2(feats).clamp_min(1e-12)
        return (torch.log(d2 / self.threshold.double()) / self.scale.double()).float()

    def predict_proba(self, feats: torch.Tensor) -> torch.Tensor:
        """Probability of "generated", ``[N]`` (0.5 at the threshold; module docstring on calibration)."""
        return torch.sigmoid(self(feats))
