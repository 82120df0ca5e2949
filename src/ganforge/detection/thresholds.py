"""The one threshold rule: where a detector calls an image generated, per processing combination.

A detector with a processing head (``ganforge.models.detector``) holds one threshold per *cell*, a combination of
processing steps forced on or off (cell ``c`` has bit ``j`` set when step ``j`` was applied). Each cell's threshold
is placed on the calibration split, from the reals and the fakes processed that way:

1. at the score above which a share ``real_fpr`` (1 %) of the cell's reals lie (Neyman-Pearson: the real class is
   the one a detector knows; fakes of a generator it never saw tend to score between the reals and the fakes it
   did see, Wang et al. 2020, so a threshold between the two seen classes misses them);
2. lower, where the cell's fakes overlap its reals (a halved, re-compressed image), to the threshold with the fewest
   errors on a balanced set, but never so low that more than ``max_real_fpr`` (3 %) of the cell's reals lie above
   it. Where reals and fakes are apart the 1 % threshold is the lower one and stays.

The calibration images are processed the way pictures are on their way (JPEG, resizing), never with the
training's blur (:func:`scores_and_cells`): heavily blurred reals score far above any real
picture as it reaches people, and their top 1 % set thresholds no unblurred fake reached (BENCHMARKS.md, the
face detector of 2026-12-01: 4 % of a held-out family's fakes caught, against 0 % of its reals).

A cell with fewer than ``min_count`` reals takes the 1 % quantile of all reals; rule 2 needs ``min_count`` fakes in
the cell too. Cells that differ only in a JPEG applied before a resize share the larger threshold: after a resize
the lattice the head reads JPEG from is gone, so it cannot tell them apart. BENCHMARKS.md runs H, M and N measure
the rule against the 1 % threshold alone (run M: 23 of 24 held-out cells within 3 points of the best accuracy,
against 22; run N: 32 of 32) and against lower bounds (5 %, none).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ganforge.detection.data import Augment
from ganforge.detection.predict import score_arrays
from ganforge.models.detector import Detector, ProcessingStep, cell_index


def cell_name(steps: tuple[str, ...], cell: int) -> str:
    """``("jpeg", "resize"), 3`` -> ``"jpeg+resize"``; cell 0 is ``"none"``."""
    return "+".join(str(s) for j, s in enumerate(steps) if cell >> j & 1) or "none"


def fewest_errors_threshold(real: np.ndarray, fake: np.ndarray) -> float:
    """The lowest threshold at which ``P(real >= t) + P(fake < t)`` is smallest (reals and fakes weighted equally,
    as the accuracy on a balanced test set weighs them); a score ``>= t`` is called fake."""
    if len(real) == 0 or len(fake) == 0:
        raise ValueError(f"need real and fake scores, got {len(real)} and {len(fake)}")
    cand = np.unique(np.r_[real, fake])  # sorted
    fp = len(real) - np.searchsorted(np.sort(real), cand, side="left")  # reals >= t
    fn = np.searchsorted(np.sort(fake), cand, side="left")  # fakes < t
    return float(cand[int(np.argmin(fp / len(real) + fn / len(fake)))])


def _check_scores(real: np.ndarray, real_cells: np.ndarray, fake: np.ndarray, fake_cells: np.ndarray,
                  fpr: float, max_fpr: float) -> None:
    if len(real) == 0 or len(real) != len(real_cells):
        raise ValueError(f"need held-out real scores with one cell each, got {len(real)} and {len(real_cells)}")
    if len(fake) != len(fake_cells):
        raise ValueError(f"need held-out fake scores with one cell each, got {len(fake)} and {len(fake_cells)}")
    if not 0 < fpr <= max_fpr < 1:
        raise ValueError(f"need 0 < real_fpr <= max_real_fpr < 1, got {fpr} and {max_fpr}")


def cell_thresholds(real: np.ndarray, real_cells: np.ndarray, fake: np.ndarray, fake_cells: np.ndarray,
                    steps: tuple[str, ...], fpr: float, max_fpr: float, min_count: int = 50) -> list[float]:
    """One threshold per cell of ``steps`` by the rule of the module docstring, from scores before any threshold
    (``Detector.forward_parts``) and their cells (``cell_index``)."""
    _check_scores(real, real_cells, fake, fake_cells, fpr, max_fpr)
    pooled = float(np.quantile(real, 1.0 - fpr))
    thr = []
    for c in range(2 ** len(steps)):
        own = real[real_cells == c]
        if len(own) < min_count:
            thr.append(pooled)
            continue
        t = float(np.quantile(own, 1.0 - fpr))
        if np.sum(fake_cells == c) >= min_count:
            lowest = float(np.quantile(own, 1.0 - max_fpr))
            t = min(t, max(fewest_errors_threshold(own, fake[fake_cells == c]), lowest))
        thr.append(t)
    if ProcessingStep.JPEG in steps and ProcessingStep.RESIZE in steps:
        j, r = 1 << steps.index(ProcessingStep.JPEG), 1 << steps.index(ProcessingStep.RESIZE)
        for c in range(len(thr)):
            if c & r and not c & j:  # the larger keeps more reals of either history on the real side
                thr[c] = thr[c | j] = max(thr[c], thr[c | j])
    return thr


@torch.no_grad()
def set_cell_thresholds(net: Detector, real: np.ndarray, real_cells: np.ndarray, fake: np.ndarray,
                        fake_cells: np.ndarray, fpr: float = 0.01, max_fpr: float = 0.03,
                        min_count: int = 50) -> dict[str, float]:
    """Place ``net``'s thresholds by the rule (:func:`cell_thresholds`) and install them; returns ``{cell name:
    threshold}``."""
    thr = cell_thresholds(real, real_cells, fake, fake_cells, net.proc_steps, fpr, max_fpr, min_count)
    net.set_processing_thresholds(torch.tensor(thr, dtype=net.proc_thresholds.dtype))
    return {cell_name(net.proc_steps, c): t for c, t in enumerate(thr)}


def scores_and_cells(net: Detector, images: list[np.ndarray], augment: Augment,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scores before any threshold, and cells, of ``images`` as stored (cell 0) and once per processing cell (each
    combination of ``net``'s steps forced on or off, the strengths drawn by ``augment``, never its blur: see the
    module docstring)."""
    augment = replace(augment, blur_prob=0.0)
    patches = list(images)  # as stored: scored on their regions
    cells = [0] * len(images)
    for c in range(2 ** len(net.proc_steps)):
        force = {step: bool(c >> j & 1) for j, step in enumerate(net.proc_steps)}
        for a in images:
            patch, applied = augment.apply(a, net.crop, rng, force)
            patches.append(patch)
            cells.append(cell_index([applied[s] for s in net.proc_steps]))
    return score_arrays(net, patches, raw=True), np.array(cells)


def cell_real_fpr(thresholds: dict[str, float], scores: np.ndarray, cells: np.ndarray) -> dict[str, float | None]:
    """What each cell's threshold costs: the share of that cell's calibration reals at or above it (None: none)."""
    return {name: float(np.mean(scores[cells == c] >= t)) if np.any(cells == c) else None
            for c, (name, t) in enumerate(thresholds.items())}
