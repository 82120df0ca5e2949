"""Inception Score: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016.

Stages: classifier logits ``[N, K]`` -> class probabilities (float64) -> ``exp(E_x KL(p(y|x) || p(y)))`` per split,
mean and standard deviation over ``splits`` splits. As in torch-fidelity, the samples are shuffled with a fixed seed
before splitting, and the logits of the Inception network are taken without the final layer's bias (as the original
TensorFlow code reads them from the ``softmax/logits/MatMul`` op).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.metrics import register_metric


def inception_score(logits: torch.Tensor, splits: int = 10, shuffle_seed: int | None = 2020) -> tuple[float, float]:
    """``(mean, std)`` of the Inception Score of ``logits [N, K]`` over ``splits`` equal splits."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, K], got shape {list(logits.shape)}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"splits must be in [1, N={n}], got {splits}")
    x = logits.detach().cpu()
    if shuffle_seed is not None:
        x = x[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(n))]
    x = x.double()
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)  # [N, K]
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_i, log_p_i = p[lo:hi], log_p[lo:hi]
        log_q = p_i.mean(dim=0, keepdim=True).log()  # [1, K] marginal p(y) of the split
        scores.append(float((p_i * (log_p_i - log_q)).sum(dim=1).mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


@register_metric(
    "is", "Inception Score of the fakes from the extractor's class logits (Salimans et al. 2016)",
    needs_real=False, lower_is_better=False,
)
def is_metric(ctx, splits: int = 10) -> dict[str, float]:
    feats = ctx.features("fake")
    if feats.logits is None:
        raise ValueError(
            f"the Inception Score needs class logits, which extractor {ctx.extractor.name!r} with weights "
            f"{ctx.extractor.weights_source} does not provide (the TorchScript copy has pool features only): pass "
            "--inception-weights pt_inception-2015-12-05-6726825d.pth, or use --extractor digits for digits"
        )
    if feats.logits.ndim != 2:
        raise ValueError(
            f"the Inception Score needs one label per image; extractor {ctx.extractor.name!r} gives per-channel "
            f"labels {list(feats.logits.shape)} (stacked digits): use the 'modes' metric instead"
        )
    mean, std = inception_score(feats.logits, min(splits, feats.logits.shape[0]))
    return {"is": mean, "is/std": std, "is/splits": float(min(splits, feats.logits.shape[0]))}
