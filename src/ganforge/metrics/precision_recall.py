"""Improved precision and recall: Kynkäänniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall
Metric for Assessing Generative Models", NeurIPS 2019.

Each set's manifold is the union of balls around its samples, each ball reaching the sample's k-th nearest neighbour
in the same set (k = 3 in the paper). Precision is the share of fakes inside the real manifold (quality); recall is the
share of reals inside the fake manifold (coverage). Distances are Euclidean in float64, computed in row blocks against
the whole other set, so the block size changes memory use, not the result.

Registered as ``pr`` (Inception-v3 features, as the paper's Inception variant) and ``pr-digits`` (the digit
classifier's features).
"""

from __future__ import annotations

import torch

from ganforge.metrics.base import register_metric


def _as_f64(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be [N, D], got shape {list(x.shape)}")
    return x.detach().to("cpu", torch.float64)


def _distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[A, D], [B, D] -> [A, B]`` through the expansion |a|^2 + |b|^2 - 2 a.b (float64)."""
    d2 = (a * a).sum(dim=1, keepdim=True) + b_sq.unsqueeze(0) - 2.0 * (a @ b.T)
    return d2.clamp_min_(0).sqrt_()


def knn_radii(features: torch.Tensor, k: int = 3, block: int = 1024) -> torch.Tensor:
    """Distance from each sample to its k-th nearest neighbour in the same set (itself excluded): ``[N]``."""
    x = _as_f64(features, "features")
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must be in [1, N-1] = [1, {x.shape[0] - 1}], got {k}")
    sq = (x * x).sum(dim=1)
    out = [_distances(x[i : i + block], x, sq).kthvalue(k + 1, dim=1).values for i in range(0, x.shape[0], block)]
    return torch.cat(out)


def manifold_share(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, block: int = 1024) -> float:
    """Share of ``query`` samples lying inside at least one ball ``(ref[j], radii[j])``."""
    q, r = _as_f64(query, "query features"), _as_f64(ref, "reference features")
    if q.shape[1] != r.shape[1] or radii.shape != (r.shape[0],):
        raise ValueError(f"shapes do not match: query {list(q.shape)}, ref {list(r.shape)}, radii {list(radii.shape)}")
    sq = (r * r).sum(dim=1)
    inside = [(_distances(q[i : i + block], r, sq) <= radii.unsqueeze(0)).any(dim=1)
              for i in range(0, q.shape[0], block)]
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, block: int = 1024
) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake [M, D]`` against ``real [N, D]`` with k-NN balls."""
    real, fake = _as_f64(real, "real features"), _as_f64(fake, "fake features")
    precision = manifold_share(fake, real, knn_radii(real, k, block), block)
    recall = manifold_share(real, fake, knn_radii(fake, k, block), block)
    return precision, recall


def _register(name: str, extractor: str, description: str) -> None:
    def compute(ctx, k: int = 3) -> dict[str, float]:
        p, r = precision_recall(ctx.features("real", extractor).pool, ctx.features("fake", extractor).pool, k)
        return {f"{name}/precision": p, f"{name}/recall": r}

    register_metric(name, description, extractor=extractor, lower_is_better=False)(compute)


_register("pr", "inception-v3", "improved precision and recall with k=3 nearest-neighbour manifolds of Inception-v3 "
          "features (Kynkäänniemi et al. 2019)")
_register("pr-digits", "digits", "improved precision and recall on the digit classifier's features (not comparable "
          "with pr)")
