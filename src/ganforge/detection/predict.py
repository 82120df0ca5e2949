"""Scoring images with a detector, and saving/loading detector checkpoints.

A detector checkpoint is an ordinary ganforge checkpoint folder (``ganforge.checkpoint``) holding one network,
``detector``, and a ``config.json`` with ``kind: "detector"``, the preprocessing (crop, channels, test view), the
training configuration and sources, and the calibration results (temperature, ECE before/after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from tqdm import tqdm

from ganforge.checkpoint import CheckpointError, load_networks, read_config, resolve_checkpoint, save_checkpoint
from ganforge.detection.data import VIEWS, ImageSet, Perturbation, inference_view, read_images, to_tensor
from ganforge.models.detector import Detector

KIND = "detector"


def save_detector(path: str | Path, net: Detector, info: dict[str, Any], view: str = "center-crop") -> Path:
    """Write ``net`` (with its fitted temperature and spectrum statistics) and ``info`` (training config, sources,
    calibration report) as a checkpoint folder; ``view`` is the test view ``predict`` will use."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    config = {"kind": KIND, "preprocess": {"crop": net.crop, "channels": net.channels, "view": view}, **info}
    return save_checkpoint(path, {"detector": net}, config)


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> tuple[Detector, dict[str, Any]]:
    """The detector of a checkpoint folder and its ``config.json``; other checkpoints are refused by name."""
    ckpt = resolve_checkpoint(path)
    meta = read_config(ckpt)
    if meta.get("kind") != KIND or "detector" not in meta.get("networks", {}):
        raise CheckpointError(f"{ckpt}: not a detector checkpoint (kind={meta.get('kind')!r}); "
                              "train one with `ganforge detect train`")
    net = load_networks(ckpt, ["detector"], device=device)["detector"]
    if not isinstance(net, Detector):
        raise CheckpointError(f"{ckpt}: network 'detector' is a {type(net).__name__}, not a Detector")
    return net, meta


@torch.no_grad()
def score_arrays(
    net: Detector,
    images: list[np.ndarray],
    view: str = "center-crop",
    perturb: Perturbation | None = None,
    batch_size: int = 64,
    progress: bool = False,
    names: list[str] | None = None,
    raw: bool = False,
) -> np.ndarray:
    """Raw logits ``[N]`` (positive = generated) for uint8 ``[H, W, C]`` images of any size and channel count.

    Each image is optionally degraded by ``perturb`` (at native size), then brought to the detector's input by
    ``inference_view`` (explicit channel conversion, then centre crop or resize to ``net.crop``). ``raw``: the
    scores before any processing-dependent threshold (``Detector.forward_parts``), which placing those thresholds
    needs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    out: list[np.ndarray] = []
    starts = range(0, len(images), batch_size)
    try:
        for start in tqdm(starts, desc="scoring", unit="batch", leave=False, disable=not progress):
            chunk = []
            for i in range(start, min(len(images), start + batch_size)):
                arr = perturb(images[i]) if perturb is not None else images[i]
                chunk.append(inference_view(arr, net.crop, net.channels, view, names[i] if names else f"image #{i}"))
            x = to_tensor(chunk).to(device)
            out.append((net.forward_parts(x)[0] if raw else net(x)).float().cpu().numpy())
    finally:
        net.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def predict_path(
    net: Detector, meta: dict[str, Any], source: str | Path, batch_size: int = 64, progress: bool = False
) -> list[dict[str, Any]]:
    """One record per file of an image or folder: ``{"file", "p_fake", "logit", "label"}`` for images that were
    scored and ``{"file", "error"}`` for files that could not be read; unreadable files never stop the rest."""
    images: ImageSet = read_images(source, progress=progress)
    view = meta.get("preprocess", {}).get("view", "center-crop")
    records: list[dict[str, Any]] = []
    if len(images):
        logits = score_arrays(net, images.images, view, batch_size=batch_size, progress=progress, names=images.names)
        t = float(net.temperature)
        probs = expit(logits.astype(np.float64) / t)
        for name, lg, p in zip(images.names, logits, probs, strict=True):
            label = "fake" if p >= 0.5 else "real"
            records.append({"file": name, "p_fake": float(p), "logit": float(lg), "label": label})
    records += [{"file": e["file"], "error": e["error"]} for e in images.errors]
    return sorted(records, key=lambda r: r["file"])  # the folder's order, errors in their place
