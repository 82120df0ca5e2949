"""Mode-collapse counts: how many classes the generator covers, and KL(generated class histogram || data histogram).

The protocol of Unrolled GAN (Metz et al. 2017), VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): a
pretrained classifier labels every generated sample (for Stacked MNIST each of the three channels separately, giving
one of 1000 classes), then

- ``modes/any``: classes with at least one sample (the number those papers report for Stacked MNIST);
- ``modes``: classes with at least ``min_fraction`` (default 0.1) of the samples they would get under the data
  distribution. Unlike ``modes/any`` this is not inflated by the classifier's occasional mistakes: a generator of only
  ones still gets a few samples labelled 7 (PacGAN's toy protocol uses a threshold for the same reason);
- ``modes/kl``: KL(p_gen || p_data) in nats over the classes. p_data is the population the real labels are drawn
  from when the dataset knows it (``GanDataset.class_prior``; for Stacked MNIST uniform over the 1000 triples, the
  "KL to uniform" of VEEGAN and PacGAN), else the class histogram of the whole real dataset's labels (or of the
  classifier's labels of the real images when they have none; uniform without real data);
- ``modes/kl_channels`` and ``modes/kl_dependence`` (multi-channel sets such as Stacked MNIST, when p_data is a
  product of per-channel digit shares): ``modes/kl`` split exactly into the sum over channels of KL(generated digit
  shares || data digit shares) and KL(p_gen || product of its own channel shares). The first says G draws some digits
  too often, the second that its channels are not independent; they tell which one a remaining KL comes from.
  The sampling floor splits unevenly: a perfect Stacked MNIST sampler scores about 3 * 9 / (2 N) = 0.0005 on the
  channels and (999 - 27) / (2 N) = 0.0187 on the dependence at N = 26,000.

Even a generator that draws exactly from p_data scores above 0: about (K - 1) / (2 N) nats for N samples over K
classes (0.019 for Stacked MNIST's 26,000 samples and 1000 classes), plus the sampling noise of the reference when
it is a histogram of a finite sample (0.009 more for the 60,000 Stacked MNIST labels, hence the prior).

For the toy point sets (``ring8``, ``grid25``, ``gauss1d``) the "classifier" is the nearest mode centre and only
samples within 3 standard deviations count (see :mod:`ganforge.metrics.toy`).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.metrics.base import register_metric
from ganforge.metrics.histogram import kl_divergence


def predicted_classes(logits: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Class per sample and the number of classes: ``[N, K] -> argmax``; per-channel ``[N, C, K]`` -> the C digits
    read as one base-K number (``100 r + 10 g + b`` for Stacked MNIST), ``K**C`` classes."""
    if logits.ndim == 2:
        return logits.argmax(dim=1), int(logits.shape[1])
    if logits.ndim == 3:
        n, c, k = logits.shape
        weights = torch.tensor([k ** (c - 1 - i) for i in range(c)], dtype=torch.long)
        return (logits.argmax(dim=2) * weights).sum(dim=1), k**c
    raise ValueError(f"logits must be [N, K] or [N, C, K], got {list(logits.shape)}")


def mode_counts(counts: np.ndarray, reference: np.ndarray, min_fraction: float = 0.1) -> dict[str, float]:
    """``modes``, ``modes/any``, ``modes/total`` and ``modes/kl`` from generated class ``counts [K]`` and a reference
    histogram ``[K]`` (data class counts or probabilities)."""
    counts = np.asarray(counts, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
    n = counts.sum()
    expected = n * reference / reference.sum()  # [K] samples each class would get under the data distribution
    covered = (counts >= np.maximum(1.0, min_fraction * expected)) & (reference > 0)
    return {
        "modes": float(covered.sum()),
        "modes/any": float((counts > 0).sum()),
        "modes/total": float((reference > 0).sum()),
        "modes/kl": kl_divergence(counts, reference),
    }


def channel_kl_parts(counts: np.ndarray, reference: np.ndarray, channels: int, k: int) -> dict[str, float]:
    """``modes/kl_channels`` and ``modes/kl_dependence`` of class ``counts [k**channels]`` (base-k digits, first
    channel most significant) against ``reference [k**channels]``; empty when the reference is not the product of its
    channel marginals, where ``KL(p || q) = KL(p || prod p_i) + sum_i KL(p_i || q_i)`` does not hold."""
    shape = (k,) * channels
    p = np.asarray(counts, dtype=np.float64).reshape(shape)
    q = np.asarray(reference, dtype=np.float64).reshape(shape)
    if p.sum() <= 0 or q.sum() <= 0:
        return {}
    p, q = p / p.sum(), q / q.sum()
    p_marg, q_marg = _marginals(p), _marginals(q)
    if not np.allclose(q, _outer(q_marg), rtol=1e-9, atol=1e-12):
        return {}
    return {
        "modes/kl_channels": float(sum(kl_divergence(pi, qi) for pi, qi in zip(p_marg, q_marg, strict=True))),
        "modes/kl_dependence": kl_divergence(p.reshape(-1), _outer(p_marg).reshape(-1)),
    }


def _marginals(p: np.ndarray) -> list[np.ndarray]:
    axes = range(p.ndim)
    return [p.sum(axis=tuple(a for a in axes if a != i)) for i in axes]


def _outer(marginals: list[np.ndarray]) -> np.ndarray:
    out = marginals[0]
    for m in marginals[1:]:
        out = np.multiply.outer(out, m)
    return out


def class_counts(classes: torch.Tensor, num_classes: int) -> np.ndarray:
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes})")
    return np.bincount(classes.numpy(), minlength=num_classes)


def _reference(ctx, num_classes: int) -> tuple[np.ndarray, str]:
    real = ctx.real
    if real is None:
        return np.ones(num_classes), "uniform"
    if real.dataset is not None and real.dataset.labels is not None and real.dataset.num_classes == num_classes:
        if real.dataset.class_prior is not None:
            return real.dataset.class_prior, "the population the real labels are drawn from"
        return real.dataset.class_counts(), "labels of the real dataset"
    classes, k = predicted_classes(ctx.features("real", "digits").logits)
    return class_counts(classes, k), "classifier on real images"


@register_metric(
    "modes", "classes covered and KL(generated || data) class histograms (Metz 2017, Srivastava 2017, Lin 2018)",
    needs_real=False, extractor="digits", lower_is_better=False,
)
def modes_metric(ctx, min_fraction: float = 0.1) -> dict[str, float]:
    info = (ctx.real.info if ctx.real is not None else {}) or ctx.fake.info
    if "modes" in info:  # toy point sets: nearest-centre protocol
        from ganforge.metrics.toy import toy_modes

        ctx.note("reference", "nearest-centre protocol on the point set's known modes")
        return toy_modes(ctx.samples("fake"), info, min_fraction)
    feats = ctx.features("fake", "digits")
    if feats.logits is None:
        raise ValueError("the modes metric needs the digit classifier's class logits; the extractor given as "
                         f"'digits' ({ctx.extractor_for('digits').weights_source}) has none")
    classes, k = predicted_classes(feats.logits)
    reference, source = _reference(ctx, k)
    ctx.note("reference", source if ctx.real is None else f"{source} ({ctx.real.description})")
    counts = class_counts(classes, k)
    values = mode_counts(counts, reference, min_fraction)
    if feats.logits.ndim == 3:
        values |= channel_kl_parts(counts, reference, feats.logits.shape[1], feats.logits.shape[2])
    return values
