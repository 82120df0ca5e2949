"""Fool rates of "Which one is real?" votes, with 95 % Wilson intervals, per model and truncation psi.

Each round shows one real and one generated picture side by side and asks which is real (a two-alternative forced
choice). A rater is *fooled* when they pick the generated one, so the fool rate is the share of fakes judged real,
in the spirit of HYPE-infinity (Zhou et al., "HYPE: A Benchmark for Human eYe Perceptual Evaluation of Generative
Models", NeurIPS 2019), which scores a model by how often people mistake its images. Here every answer concerns one
fake and one real picture at once, so the fool rate is also the error rate; chance is 50 %, and a model whose interval
contains 0.5 cannot be told from its data by these raters.

HYPE reports bootstrap intervals; a binomial proportion with few trials is better served by the Wilson score
interval (Wilson 1927; Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion"), which stays in
[0, 1] and keeps close to its nominal coverage even at n = 10.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95 % interval


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``k`` successes in ``n`` trials (``(0, 1)`` when ``n == 0``)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact ends at k = 0 and k = n (the formula gives 0 and 1 there, up to rounding)
    low = 0.0 if k == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if k == n else min(1.0, max(p, centre + half))
    return low, high


@dataclass(frozen=True)
class FoolRate:
    """One row of the report: ``fooled`` of ``n`` answers about ``model`` at ``psi`` (``None``: all psi pooled)."""

    model: str
    psi: float | None
    n: int
    fooled: int
    fool_rate: float
    ci_low: float
    ci_high: float
    median_response_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(model: str, psi: float | None, votes: list[dict[str, Any]]) -> FoolRate:
    n = len(votes)
    fooled = sum(1 for v in votes if v["fooled"])
    lo, hi = wilson_interval(fooled, n)
    times = sorted(float(v["response_ms"]) for v in votes if v.get("response_ms") is not None)
    median = None
    if times:
        mid = len(times) // 2
        median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return FoolRate(model, psi, n, fooled, fooled / n if n else 0.0, lo, hi, median)


def fool_rates(votes: Iterable[dict[str, Any]]) -> list[FoolRate]:
    """Rows per (model, psi), and per model with every psi pooled (``psi=None``) when it was rated at several.

    Each vote is a mapping with at least ``model``, ``psi`` and ``fooled`` (``response_ms`` is optional).
    """
    by_key: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for v in votes:
        by_key[(str(v["model"]), round(float(v["psi"]), 4))].append(v)
    rows: list[FoolRate] = []
    for model in sorted({m for m, _ in by_key}):
        psis = sorted(p for m, p in by_key if m == model)
        for psi in psis:
            rows.append(_row(model, psi, by_key[(model, psi)]))
        if len(psis) > 1:
            rows.append(_row(model, None, [v for p in psis for v in by_key[(model, p)]]))
    return rows


def format_table(rows: list[FoolRate]) -> str:
    """A plain-text table of the rows, for the terminal."""
    if not rows:
        return "no votes yet\n"
    header = (f"{'model':<28} {'psi':>5} {'n':>5} {'fooled':>6} {'fool rate':>9}   {'95% CI (Wilson)':<17} "
              f"{'median ms':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        psi = "all" if r.psi is None else f"{r.psi:g}"
        ms = "-" if r.median_response_ms is None else f"{r.median_response_ms:.0f}"
        lines.append(f"{r.model[:28]:<28} {psi:>5} {r.n:>5} {r.fooled:>6} {r.fool_rate:>9.3f}   "
                     f"[{r.ci_low:.3f}, {r.ci_high:.3f}]   {ms:>9}")
    lines.append("fool rate = share of rounds in which the generated picture was judged real (chance: 0.5)")
    return "\n".join(lines) + "\n"
