"""Inception Score: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016.

Stages: classifier logits ``[N, K]`` -> class probabilities (float64) -> ``exp(E_x KL(p(y|x) || p(y)))`` per split,
mean and standard deviation over ``splits`` splits. As in torch-fidelity, the samples are shuffled with a fixed seed
before splitting, and the logits of the Inception network are taken without the final layer's bias (as the original
TensorFlow code reads them from the ``softmax/logits/MatMul`` op).

Registered as ``is`` (Inception-v3's classes) and ``is-digits`` (the digit classifier's 10 classes).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.metrics.base import register_metric


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


def _register(name: str, extractor: str, description: str) -> None:
    def compute(ctx, splits: int = 10) -> dict[str, float]:
        feats = ctx.features("fake", extractor)
        ex = ctx.extractor_for(extractor)
        if feats.logits is None:
            raise ValueError(
                f"{name} needs class logits, which extractor {ex.name!r} with weights {ex.weights_source} does not "
                "provide (the TorchScript copy has pool features only): pass --inception-weights "
                "pt_inception-2015-12-05-6726825d.pth (is-digits scores the digit classifier's classes instead)"
            )
        if feats.logits.ndim != 2:
            raise ValueError(
                f"{name} needs one label per image; extractor {ex.name!r} gives per-channel labels "
                f"{list(feats.logits.shape)} (stacked digits): use the 'modes' metric instead"
            )
        n_splits = min(splits, feats.logits.shape[0])
        mean, std = inception_score(feats.logits, n_splits)
        return {name: mean, f"{name}/std": std, f"{name}/splits": float(n_splits)}

    register_metric(name, description, needs_real=False, extractor=extractor, lower_is_better=False)(compute)


_register("is", "inception-v3", "Inception Score of the fakes from Inception-v3's 1008 class logits (Salimans et al. "
          "2016)")
_register("is-digits", "digits", "the Inception Score formula on the digit classifier's 10 classes (not comparable "
          "with IS)")
