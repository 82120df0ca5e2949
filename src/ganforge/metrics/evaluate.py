"""Running registered metrics on an :class:`EvalContext` and recording how each number was obtained.

Every :class:`MetricResult` states the feature extractor, the sha256 of its weights, the resize policy, the image
counts on both sides and the seed: enough to tell whether two numbers are comparable. Results are written one JSON
object per line to ``metric-<name>.jsonl`` (in a run directory for ``ganforge evaluate RUN``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ganforge.metrics import get_metric
from ganforge.metrics.context import EvalContext


@dataclass
class MetricResult:
    metric: str
    values: dict[str, float]
    fake: str
    n_fake: int
    real: str | None
    n_real: int | None
    extractor: dict[str, Any] | None
    seed: int
    seconds: float
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # choices the metric made, e.g. its reference histogram

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # JSON has no inf/nan: such values are written as null and listed by name
        d["values"] = {k: (v if math.isfinite(v) else None) for k, v in self.values.items()}
        bad = [k for k, v in self.values.items() if not math.isfinite(v)]
        if bad:
            d["not_finite"] = {k: str(self.values[k]) for k in bad}
        return d


def run_metrics(names: list[str], ctx: EvalContext, options: dict[str, dict[str, Any]] | None = None,
                extra: dict[str, Any] | None = None) -> list[MetricResult]:
    """Compute each metric of ``names`` (registry names) on ``ctx``; ``options[name]`` are passed to that metric."""
    options = options or {}
    unknown = set(options) - set(names)
    if unknown:
        raise ValueError(f"options given for metrics not requested: {sorted(unknown)}")
    out = []
    for name in names:
        metric = get_metric(name)
        if metric.needs_real and ctx.real is None:
            raise ValueError(f"metric {name!r} compares with real data: pass --real DATASET_OR_DIR")
        if metric.needs_generator and ctx.generator is None:
            raise ValueError(f"metric {name!r} samples the generator itself: evaluate a run or checkpoint, "
                             "not a folder")
        t0 = time.time()
        ctx.notes.clear()
        values = metric.compute(ctx, **options.get(name, {}))
        out.append(MetricResult(
            metric=name,
            values={k: float(v) for k, v in values.items()},
            fake=ctx.fake.description,
            n_fake=ctx.fake.count,
            real=ctx.real.description if ctx.real is not None and metric.needs_real else None,
            n_real=ctx.real.count if ctx.real is not None and metric.needs_real else None,
            extractor=_extractor_record(ctx, metric.extractor),
            seed=ctx.seed,
            seconds=round(time.time() - t0, 3),
            extra=dict(extra or {}),
            notes=dict(ctx.notes),
        ))
    return out


def _extractor_record(ctx: EvalContext, name: str | None) -> dict[str, Any] | None:
    """``describe()`` of the extractor a metric used (its own, else the context's), or None when it built none."""
    name = name or ctx.default_extractor
    return ctx.extractor_for(name).describe() if ctx.has_extractor(name) else None


def append_results(results: list[MetricResult], folder: str | Path) -> list[Path]:
    """Append each result to ``folder/metric-<name>.jsonl``; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in results:
        p = folder / f"metric-{r.metric}.jsonl"
        with open(p, "a") as f:
            f.write(json.dumps(r.to_dict()) + "\n")
        paths.append(p)
    return paths


def format_table(results: list[MetricResult]) -> str:
    """A plain-text table: one row per value, then the provenance of each metric."""
    rows = [(k, f"{v:.6g}", r.metric) for r in results for k, v in r.values.items()]
    w = max([len(k) for k, _, _ in rows] + [6])
    lines = [f"{'value':<{w}}  {'result':>12}", "-" * (w + 14)]
    lines += [f"{k:<{w}}  {v:>12}" for k, v, _ in rows]
    lines.append("")
    for r in results:
        src = f"{r.n_fake} fake ({r.fake})"
        if r.real is not None:
            src += f" vs {r.n_real} real ({r.real})"
        ex = r.extractor
        how = ""
        if ex:
            how = f"extractor {ex['extractor']} sha256:{str(ex['weights_sha256'])[:12]} resize: {ex['resize']}"
        notes = "; ".join(f"{k}: {v}" for k, v in r.notes.items())
        lines.append("; ".join(part for part in (f"{r.metric}: {src}", how, notes) if part))
    return "\n".join(lines)


def default_extractor(channels: int, resolution: int) -> str:
    """The extractor for metrics that take the context's (PPL, separability) and for class coverage: ``digits`` for
    28x28 images with 1 or 3 channels (MNIST, Stacked MNIST), else ``inception-v3``. FID, KID, IS and PR do not
    depend on it: they always use ``inception-v3``."""
    return "digits" if resolution == 28 and channels in (1, 3) else "inception-v3"


def training_dataset(meta: dict[str, Any]):
    """The dataset a checkpoint was trained on, loaded with the same channel/resize policies (its ``config.json``)."""
    from ganforge.data import load_dataset

    info = meta.get("dataset") or {}
    if "source" not in info:
        raise ValueError("the checkpoint does not name its training dataset; pass --real DATASET_OR_DIR")
    data_dir = (meta.get("train") or {}).get("data_dir")
    if info.get("kind") == "toy":
        return load_dataset(info["source"])
    return load_dataset(info["source"], info.get("resolution"), info.get("channels"), info.get("resize", "center-crop"),
                        data_dir)


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory holding ``checkpoint`` (``<run>/checkpoints/<ckpt>``), or None for a loose checkpoint."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
