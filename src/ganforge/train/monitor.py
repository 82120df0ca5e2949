"""Metrics during training, the stopping rule, and live diagnostics.

:class:`MetricMonitor` evaluates the generator every ``every_kimg`` thousand images on ``n`` samples (always the same
latents, so successive values differ because G changed, not because the noise did), keeps each metric's best value,
and implements the stopping rule: ``stop_when="fid<12"`` (a threshold on any reported value, parsed without ``eval``)
and/or ``patience=K`` (stop after K evaluations in a row without improving the watched value: the ``stop_when`` value
if given, else the first metric's headline value). Real features are computed once and reused.

Diagnostics for the loop's stats (ADA, Karras et al. 2020, for the overfitting signal):

- :func:`class_coverage`: the class histogram of generated samples under the digit classifier, and a warning when
  coverage collapses;
- :func:`overfit_signal`: ``E[sign D(x)]`` on training reals vs held-out reals; a widening gap means D memorises the
  training set (ADA's ``r_t`` is the first term);
- :func:`saturation_warning`, :func:`grad_norm`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.metrics import get_metric, parse_metric_list
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.evaluate import default_extractor, run_metrics
from ganforge.metrics.features import FeatureExtractor

_NAME = r"[a-z][a-z0-9_\-]*(?:/[a-z0-9_\-]+)?"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
_RULE = re.compile(rf"^\s*({_NAME})\s*(<=|>=|<|>)\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class StopRule:
    """``name op threshold``, e.g. ``fid < 12`` or ``modes >= 10``."""

    name: str
    op: str
    threshold: float

    @staticmethod
    def parse(text: str) -> StopRule:
        m = _RULE.match(text.lower())
        if not m:
            raise ValueError(f"stop rule {text!r} is malformed: expected NAME OP NUMBER with OP one of < <= > >=, "
                             "e.g. 'fid<12' or 'modes>=10'")
        return StopRule(m.group(1), m.group(2), float(m.group(3)))

    def holds(self, value: float) -> bool:
        return {"<": value < self.threshold, "<=": value <= self.threshold,
                ">": value > self.threshold, ">=": value >= self.threshold}[self.op]

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.threshold:g}"


class MetricMonitor:
    """Periodic metrics, best values and the stopping rule for a training run (see the module docstring)."""

    def __init__(
        self,
        metrics: list[str],
        every_kimg: float,
        n: int,
        stop_when: str | None,
        patience: int | None,
        dataset: GanDataset,
        device: str | torch.device = "cpu",
        extractor: str | None = None,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        self.metrics = parse_metric_list(",".join(metrics))
        if every_kimg <= 0:
            raise ValueError(f"metrics interval must be > 0 kimg, got {every_kimg}")
        if n < 2:
            raise ValueError(f"metrics need at least 2 samples, got n={n}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 evaluations, got {patience}")
        if not dataset.is_image and set(self.metrics) != {"modes"}:
            raise ValueError(f"dataset {dataset.name!r} is a point set: only the 'modes' metric applies, got "
                             f"{self.metrics}")
        self.rule = StopRule.parse(stop_when) if stop_when else None
        if self.rule is not None and self.rule.name.split("/")[0] not in self.metrics:
            raise ValueError(f"stop rule {stop_when!r} watches {self.rule.name!r}, which none of the metrics "
                             f"{self.metrics} reports; add it to --metrics")
        self.every, self.n, self.patience = int(round(every_kimg * 1000)), n, patience
        self.device, self.seed, self.batch_size = torch.device(device), seed, batch_size
        self.dataset = dataset
        self.real = SampleSet.from_dataset(dataset, min(n, len(dataset)), seed + 1)
        self.extractor_name = extractor or (default_extractor(dataset.channels, dataset.resolution)
                                            if dataset.is_image else "digits")
        self._extractors: dict[str, FeatureExtractor] = {}  # built once, reused by every evaluation
        self.watch = self.rule.name if self.rule else self.metrics[0]
        self.next_due = self.every
        self.history: list[dict[str, float]] = []
        self.notes: dict[str, dict[str, str]] = {}  # metric -> its notes at the last evaluation (e.g. the reference)
        self.best: dict[str, float] = {}
        self.stale = 0  # evaluations since the watched value last improved
        self._improved: set[str] = set()

    @staticmethod
    def _lower_is_better(name: str) -> bool:
        """A metric's own value follows its registry entry; of the sub-values, divergences and spreads (``/kl``,
        its parts ``/kl_*``, ``/std``) are better low, shares and counts (precision, recall, ``/hq``, ``/any``)
        better high."""
        root, _, sub = name.partition("/")
        if not sub:
            return get_metric(root).lower_is_better
        return sub in ("kl", "std") or sub.startswith("kl_")

    def due(self, nimg: int) -> bool:
        return nimg >= self.next_due

    @torch.no_grad()
    def run(self, G: nn.Module, nimg: int) -> dict[str, float]:
        """Evaluate ``G`` now; returns ``{value name: number}`` (e.g. ``fid``, ``kid``, ``kid/std``, ``modes``)."""
        was_training = G.training
        G.eval()
        try:
            probs = None
            if self.dataset.labels is not None and int(getattr(G, "c_dim", 0)) == self.dataset.num_classes:
                probs = torch.from_numpy(self.dataset.class_counts()).double()
            fake = SampleSet.from_generator(G, self.n, self.seed, probs, self.device, "generator")
            # The reals' features are kept on self.real (its feature memo), so only the fakes are computed again.
            ctx = EvalContext(fake, self.real, self.extractor_name, None, self.device, self.batch_size, self.seed, G,
                              extractors=self._extractors)
            results = run_metrics(self.metrics, ctx)
        finally:
            G.train(was_training)
        values = {k: v for r in results for k, v in r.values.items()}
        self.notes = {r.metric: dict(r.notes) for r in results if r.notes}
        self._record(values, nimg)
        while self.next_due <= nimg:
            self.next_due += self.every
        return values

    def _record(self, values: dict[str, float], nimg: int) -> None:
        self.history.append({"nimg": float(nimg), **values})
        self._improved = set()
        for name in set(self._headline_keys(values)) | {self.watch}:
            v = values.get(name)
            if v is None or not math.isfinite(v):
                continue
            old = self.best.get(name)
            better = old is None or (v < old if self._lower_is_better(name) else v > old)
            if better:
                self.best[name] = v
                self._improved.add(name)
        if self.watch not in values:
            raise ValueError(f"the watched value {self.watch!r} is not among the reported {sorted(values)}")
        self.stale = 0 if self.watch in self._improved else self.stale + 1

    def _headline_keys(self, values: dict[str, float]) -> dict[str, float]:
        """The headline value of each metric: the metric's own name, or its first reported value."""
        out = {}
        for m in self.metrics:
            keys = [k for k in values if k == m or k.startswith(m + "/")]
            if keys:
                out[m if m in values else keys[0]] = values[m if m in values else keys[0]]
        return out

    def is_best(self, name: str) -> bool:
        """Whether the last evaluation set a new best for ``name`` (a metric's headline value)."""
        return name in self._improved and name in self._headline_keys(self.history[-1] if self.history else {})

    def should_stop(self) -> tuple[bool, str]:
        if not self.history:
            return False, ""
        last = self.history[-1]
        if self.rule is not None and self.rule.name in last and self.rule.holds(last[self.rule.name]):
            return True, f"{self.rule.name}={last[self.rule.name]:.6g} satisfies --stop-when {self.rule}"
        if self.patience is not None and self.stale >= self.patience:
            return True, (f"{self.watch} did not improve for {self.stale} evaluations (patience {self.patience}); "
                          f"best {self.best.get(self.watch, float('nan')):.6g}")
        return False, ""

    def state_dict(self) -> dict[str, Any]:
        return {"next_due": self.next_due, "history": [dict(h) for h in self.history], "best": dict(self.best),
                "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_due = int(state["next_due"])
        self.history = [dict(h) for h in state["history"]]
        self.best = {k: float(v) for k, v in state["best"].items()}
        self.stale = int(state["stale"])
        self._improved = set()


# ---------------------------------------------------------------------------------------------------- diagnostics
@torch.no_grad()
def class_coverage(G: nn.Module, classifier: FeatureExtractor, n: int = 1000, seed: int = 0,
                   device: str | torch.device = "cpu", batch_size: int = 100) -> np.ndarray:
    """Histogram ``[K]`` of the classes ``classifier`` (e.g. ``get_extractor("digits")``) assigns to ``n``
    generated samples (``K**C`` classes for per-channel classification, as in Stacked MNIST)."""
    from ganforge.metrics.modes import class_counts, predicted_classes

    was_training = G.training
    G.eval()
    try:
        fake = SampleSet.from_generator(G, n, seed, None, device)
        logits = torch.cat([classifier(b).logits for b in fake.batches(batch_size)])
    finally:
        G.train(was_training)
    classes, k = predicted_classes(logits)
    return class_counts(classes, k)


def covered_classes(counts: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """Boolean ``[K]``: which classes get at least ``min_fraction`` of their fair (uniform) share (and >= 1 sample)."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts >= max(1.0, min_fraction * counts.sum() / len(counts))


def coverage_warning(counts: np.ndarray, min_fraction: float = 0.1) -> str | None:
    """A warning when fewer than all classes get ``min_fraction`` of their fair share, else None."""
    counts = np.asarray(counts, dtype=np.float64)
    missing = np.flatnonzero(~covered_classes(counts, min_fraction))
    if len(missing) == 0:
        return None
    shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
    return (f"class coverage collapsed: {len(missing)}/{len(counts)} classes get under {min_fraction:.0%} of their "
            f"share of generated samples (classes {shown}); top class has {counts.max() / counts.sum():.0%}")


def heldout_split(dataset: GanDataset, n_heldout: int, seed: int = 0) -> tuple[GanDataset, GanDataset]:
    """Split off ``n_heldout`` random samples for the overfitting signal: ``(train, heldout)`` datasets."""
    if not 1 <= n_heldout < len(dataset):
        raise ValueError(f"held-out size must be in [1, {len(dataset) - 1}], got {n_heldout}")
    perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    parts = []
    for idx, tag in ((perm[n_heldout:].sort().values, "train"), (perm[:n_heldout].sort().values, "heldout")):
        labels = dataset.labels[idx] if dataset.labels is not None else None
        info = dataset.info | {"split": tag, "images": len(idx), "split_seed": seed}
        parts.append(replace(dataset, data=dataset.data[idx], labels=labels, info=info))  # the rest carries over
    return parts[0], parts[1]


@torch.no_grad()
def overfit_signal(D: nn.Module, train_reals: torch.Tensor, heldout_reals: torch.Tensor,
                   train_c: torch.Tensor | None = None, heldout_c: torch.Tensor | None = None) -> dict[str, float]:
    """``E[sign D(x)]`` on training reals and on held-out reals (model space ``[N, C, H, W]``), and their gap.

    A healthy D scores unseen reals like seen ones (gap near 0); a gap growing toward 2 is D overfitting, the
    situation ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data") detects with
    ``r_t = E[sign D_train]``.
    """
    was_training = D.training
    D.eval()
    try:
        s_train = float(torch.sign(D(train_reals, train_c)).float().mean())
        s_held = float(torch.sign(D(heldout_reals, heldout_c)).float().mean())
    finally:
        D.train(was_training)
    return {"D/sign_train": s_train, "D/sign_heldout": s_held, "D/overfit_gap": s_train - s_held}


def saturation_warning(real_logits: torch.Tensor, fake_logits: torch.Tensor, margin: float = 0.95) -> str | None:
    """:func:`saturation_message` from D's logits on a batch of reals and fakes."""
    p_real = float(torch.sigmoid(real_logits.detach().float()).mean())
    p_fake = float(torch.sigmoid(fake_logits.detach().float()).mean())
    return saturation_message(p_real, p_fake, margin)


def saturation_message(p_real: float, p_fake: float, margin: float = 0.95) -> str | None:
    """A warning when D separates reals and fakes almost perfectly (mean sigmoid outputs beyond ``margin``), the
    regime where G's gradients vanish (Goodfellow et al. 2014, sec. 3; Arjovsky & Bottou 2017)."""
    if p_real > margin and p_fake < 1 - margin:
        return (f"D saturates: mean D(real)={p_real:.3f}, D(fake)={p_fake:.3f}; G's gradients vanish. "
                "Lower lr_d, add augmentation or a gradient penalty")
    return None


def grad_norm(module: nn.Module) -> float:
    """L2 norm of all gradients of ``module`` (0 when none); call after ``backward``."""
    return float(torch.nn.utils.get_total_norm([p.grad for p in module.parameters() if p.grad is not None]))
