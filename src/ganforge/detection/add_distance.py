"""``ganforge detect add-distance``: a detector checkpoint plus a distance stage fitted on real pictures
(``ganforge.detection.distance``), written as a new checkpoint. Kept apart from ``distance`` so that scoring
(``ganforge.detection.predict``) can use that module without the two importing each other."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ganforge.detection.distance import DistanceConfig, backbone, fit_distance, view_features
from ganforge.detection.predict import DISTANCE, load_detector, save_detector


def attach_distance(
    detector: str | Path, real: Sequence[np.ndarray], cfg: DistanceConfig, out: str | Path,
    device: str | torch.device = "cpu", progress: bool = False, source: str = "",
) -> tuple[Path, dict[str, float | int | str]]:
    """Fit a distance stage on ``real`` pictures and write ``detector`` with it as a new checkpoint ``out`` (the
    trace stage and its config unchanged; ``config.json`` gains a ``distance`` section). Returns the path and that
    section. The features of each view are kept in ``.OUT.features`` beside ``out`` until the checkpoint is written,
    so running the same command again after an interruption computes only what is missing."""
    n_cal = int(round(len(real) * cfg.calib_fraction))
    if min(n_cal, len(real) - n_cal) < 2:
        raise ValueError(f"{source or 'real'}: {len(real)} pictures leave too few to fit ({len(real) - n_cal}) or "
                         f"calibrate ({n_cal}) a distance stage; give at least a few dozen")
    net, meta = load_detector(detector, device)
    ext = backbone(device)
    cache = Path(out).with_name(f".{Path(out).name}.features")
    cache.mkdir(parents=True, exist_ok=True)
    fit = view_features(ext, real[: len(real) - n_cal], cfg, progress, "fit", cache)
    cal = view_features(ext, real[len(real) - n_cal :], cfg, progress, "calibration", cache)
    stage = fit_distance(fit, cal, cfg, ext.weights_sha256).to(device)
    section = {"real": source, "fit_pictures": len(real) - n_cal, "calib_pictures": n_cal,
               "fit_views": len(fit), "threshold": float(stage.threshold), "scale": float(stage.scale),
               "backbone_sha256": ext.weights_sha256, **asdict(cfg)}
    info = {k: v for k, v in meta.items() if k not in ("format", "version", "kind", "preprocess", "networks")}
    path = save_detector(out, net, {**info, DISTANCE: section}, distance=stage)
    shutil.rmtree(cache, ignore_errors=True)
    return path, section
