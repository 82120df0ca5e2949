"""The metric and feature-extractor registries and their decorators.

Metric and extractor modules register themselves with these decorators; they import this module, never the package
``__init__`` (which imports them to make the built-ins known, so importing it back would be a cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ganforge.registry import Registry

if TYPE_CHECKING:
    from ganforge.metrics.features import FeatureExtractor


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``compute(ctx, **options)`` returns named values (the first is the headline number, e.g. ``{"fid": 12.3}``).
    ``needs_generator``: the metric samples the generator itself (PPL) instead of reading fake images.
    ``needs_real``: the metric compares with real data (FID, KID, precision/recall); IS does not.
    ``extractor``: the registry name of the feature extractor the metric is defined with (``inception-v3`` for FID,
    ``digits`` for ``fd-digits``), or None when it uses the context's extractor (PPL, separability: their results
    name it). Results are tagged with the extractor that ran (none for toy-set mode counts).
    ``lower_is_better`` drives "best checkpoint" and patience in the training monitor.
    """

    name: str
    description: str
    compute: Callable[..., dict[str, float]]
    needs_real: bool = True
    needs_generator: bool = False
    extractor: str | None = None
    lower_is_better: bool = True


METRICS: Registry[Metric] = Registry("metric")
EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature extractor")


def register_metric(
    name: str,
    description: str,
    *,
    needs_real: bool = True,
    needs_generator: bool = False,
    extractor: str | None = None,
    lower_is_better: bool = True,
) -> Callable[[Callable[..., dict[str, float]]], Callable[..., dict[str, float]]]:
    """Decorator registering ``fn(ctx: EvalContext, **options) -> dict[str, float]`` as metric ``name``."""

    def deco(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        METRICS.register(name)(
            Metric(name, description, fn, needs_real, needs_generator, extractor, lower_is_better)
        )
        return fn

    return deco


def register_extractor(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a factory ``(device, **options) -> FeatureExtractor`` under ``name``."""
    return EXTRACTORS.register(name)
