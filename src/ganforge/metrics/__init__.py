"""Metrics and feature extractors, registered by name (STYLE.md rules 3 and 6).

Every metric is a pure staged computation (features -> statistics -> number) in its own module; the registered entry
point receives an :class:`~ganforge.metrics.context.EvalContext` that extracts and caches features once per image set
and extractor, so ``fid,kid,pr`` on the same images runs the feature extractor once. Results carry the extractor name,
its weights' sha256, the image counts and the resize policy (:class:`~ganforge.metrics.evaluate.MetricResult`).

Honest names: a metric is defined with one extractor and its name says which. ``fid``, ``kid``, ``is`` and ``pr`` are
the standard Inception numbers (``inception-v3``, resized to 299x299) for images of any size, 28x28 digits included;
the same statistics on the digit classifier's features are ``fd-digits``, ``kd-digits``, ``is-digits`` and
``pr-digits`` (as papers write FD_DINOv2 for a Fréchet distance on other features).

Registering a new metric (a one-line import in :func:`_import_builtin_metrics` makes it known)::

    @register_metric("ppl", "perceptual path length (Karras et al. 2019)", needs_generator=True)
    def ppl_metric(ctx: EvalContext) -> dict[str, float]:
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganforge.metrics.base import EXTRACTORS, METRICS, Metric, register_extractor, register_metric

if TYPE_CHECKING:
    from ganforge.metrics.features import FeatureExtractor

__all__ = [
    "EXTRACTORS", "METRICS", "Metric", "extractor_names", "get_extractor", "get_metric", "metric_names",
    "parse_metric_list", "register_extractor", "register_metric",
]


def get_metric(name: str) -> Metric:
    _import_builtin_metrics()
    return METRICS.get(name)


def metric_names() -> list[str]:
    _import_builtin_metrics()
    return METRICS.names()


def get_extractor(name: str, device: Any = "cpu", **options: Any) -> FeatureExtractor:
    """Build the feature extractor ``name`` (``digits``, ``inception-v3``) on ``device``."""
    _import_builtin_metrics()
    return EXTRACTORS.get(name)(device=device, **options)


def extractor_names() -> list[str]:
    _import_builtin_metrics()
    return EXTRACTORS.names()


def parse_metric_list(text: str) -> list[str]:
    """``"fid,kid, modes"`` -> ``["fid", "kid", "modes"]``, each checked against the registry (ValueError if not)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"no metric named in {text!r}; expected a comma-separated list of {metric_names()}")
    for n in names:
        get_metric(n)
    if len(set(names)) != len(names):
        raise ValueError(f"metric list {text!r} names a metric twice")
    return names


def _import_builtin_metrics() -> None:
    # Explicit imports (no dotted strings): each module registers its metrics or extractors on import.
    from ganforge.metrics import (  # noqa: F401
        digits,
        fid,
        inception,
        inception_score,
        kid,
        modes,
        ppl,
        precision_recall,
        separability,
    )
