"""Scoring images with a detector, and saving/loading detector checkpoints.

A detector checkpoint is an ordinary ganforge checkpoint folder (``ganforge.checkpoint``) holding one network,
``detector``, and a ``config.json`` with ``kind: "detector"``, the preprocessing (crop, channels, view ``"tiles"``),
the training configuration and sources, and the calibration results (temperature, ECE before/after). Checkpoints
that record a removed mode (``ganforge.detection.config.removed_modes``) are refused with its name.

Any picture is scored the same way (issue 17, "any picture"): channels converted explicitly, up to 16 ``crop`` x
``crop`` tiles at native resolution (``ganforge.detection.data.regions``; an image smaller than the crop is upscaled to
it, an enlarged one shrunk back to the size it was enlarged from), one logit per tile, and the image's logit is their
mean. ``predict_path`` says how many regions it scored.

Packaged detectors are named like packaged generators (``PACKAGED_DETECTORS``): ``faces``, the face detector shipped
in ``ganforge/pretrained/faces-detector`` (its README says what it was trained on and how it measures), is the one
``ganforge detect predict`` uses when no detector is named (``DEFAULT_DETECTOR``).

A detector may hold a second stage, ``distance`` (``ganforge.models.feature_distance``, fitted by ``ganforge detect
add-distance``): how far the picture's FID Inception features lie from real pictures'. Each stage gives a logit on
the probability scale (the trace stage's divided by its temperature), 0 at its own threshold, and the picture's is
the larger of the two (``stage_logits``): it is called fake when either stage flags it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from tqdm import tqdm

from ganforge.checkpoint import CheckpointError, load_networks, read_config, resolve_checkpoint, save_checkpoint
from ganforge.detection.config import removed_modes
from ganforge.detection.data import VIEW, ImageSet, Perturbation, check_view, read_images, regions, to_tensor
from ganforge.models.detector import Detector
from ganforge.models.feature_distance import FeatureDistance

KIND = "detector"
PACKAGED_DETECTORS = {"faces": "pretrained/faces-detector"}  # name -> folder inside the ganforge package
DEFAULT_DETECTOR = "faces"
PREDICT_FIELDS = ("path", "probability", "label", "regions", "error")  # one record per file, every field present
DISTANCE = "distance"  # the optional second network of a detector checkpoint


def save_detector(path: str | Path, net: Detector, info: dict[str, Any],
                  distance: FeatureDistance | None = None) -> Path:
    """Write ``net`` (with its fitted temperature, thresholds and spectrum statistics), an optional distance stage,
    and ``info`` (training config, sources, calibration report) as a checkpoint folder."""
    config = {"kind": KIND, "preprocess": {"crop": net.crop, "channels": net.channels, "view": VIEW}, **info}
    return save_checkpoint(path, {"detector": net, **({DISTANCE: distance} if distance is not None else {})}, config)


def resolve_detector(path: str | Path) -> Path:
    """A packaged detector's folder for its name (``PACKAGED_DETECTORS``, unless a path of that name exists), else
    the checkpoint ``ganforge.checkpoint.resolve_checkpoint`` finds for ``path``."""
    if isinstance(path, str) and path in PACKAGED_DETECTORS and not Path(path).exists():
        from importlib.resources import files

        folder = Path(str(files("ganforge") / PACKAGED_DETECTORS[path]))
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"packaged detector {path!r} is missing from this installation ({folder})")
        return folder
    return resolve_checkpoint(path)


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> tuple[Detector, dict[str, Any]]:
    """The detector of a checkpoint folder, or a packaged detector's name (``faces``), and its ``config.json``; other
    checkpoints, and detectors that used a removed mode, are refused by name."""
    ckpt = resolve_detector(path)
    meta = read_config(ckpt)
    if meta.get("kind") != KIND or "detector" not in meta.get("networks", {}):
        raise CheckpointError(f"{ckpt}: not a detector checkpoint (kind={meta.get('kind')!r}); "
                              "train one with `ganforge detect train`")
    removed = removed_modes(meta)
    try:
        net = None if removed else load_networks(ckpt, ["detector"], device=device)["detector"]
    except ValueError as e:
        removed = [str(e)]
    if removed:
        raise CheckpointError(f"{ckpt}: this detector used a removed mode: {'; '.join(removed)}. Retrain it with "
                              "`ganforge detect train`")
    if not isinstance(net, Detector):
        raise CheckpointError(f"{ckpt}: network 'detector' is a {type(net).__name__}, not a Detector")
    return net, meta


def load_distance(path: str | Path, device: str | torch.device = "cpu") -> FeatureDistance | None:
    """The distance stage of a detector checkpoint (or packaged name), or None when it has none."""
    ckpt = resolve_detector(path)
    if DISTANCE not in read_config(ckpt).get("networks", {}):
        return None
    stage = load_networks(ckpt, [DISTANCE], device=device)[DISTANCE]
    if not isinstance(stage, FeatureDistance):
        raise CheckpointError(f"{ckpt}: network {DISTANCE!r} is a {type(stage).__name__}, not a FeatureDistance")
    return stage


def _forward(net: Detector, tiles: list[np.ndarray], raw: bool) -> np.ndarray:
    x = to_tensor(tiles).to(next(net.parameters()).device)
    return (net.forward_parts(x)[0] if raw else net(x)).double().cpu().numpy()


@torch.no_grad()
def score_regions(
    net: Detector, images: list[np.ndarray], view: str = VIEW, perturb: Perturbation | None = None,
    batch_size: int = 64, progress: bool = False, names: list[str] | None = None, raw: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[N]`` (positive = generated; the mean over each image's regions) and region counts ``[N]`` for
    uint8 ``[H, W, C]`` images of any size and channel count.

    Each image is optionally degraded by ``perturb`` (at native size), then cut into its regions
    (``ganforge.detection.data.regions``). ``view``: the one a checkpoint recorded (``"tiles"``, or an older
    detector's ``"center-crop"``, scored the same way). ``raw``: scores before any processing-dependent threshold
    (``Detector.forward_parts``), which placing those thresholds needs. ``batch_size`` counts regions.
    """
    check_view(view)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = net.training
    net.eval()
    tiles: list[np.ndarray] = []
    owner: list[int] = []
    out: list[np.ndarray] = []
    try:
        for i in tqdm(range(len(images)), desc="scoring", unit="img", leave=False, disable=not progress):
            arr = perturb(images[i]) if perturb is not None else images[i]
            new = regions(arr, net.crop, net.channels, names[i] if names else f"image #{i}")
            tiles += new
            owner += [i] * len(new)
            while len(tiles) >= batch_size or (tiles and i == len(images) - 1):
                out.append(_forward(net, tiles[:batch_size], raw))
                tiles = tiles[batch_size:]
    finally:
        net.train(was_training)
    counts = np.bincount(np.array(owner, dtype=np.int64), minlength=len(images))
    sums = np.bincount(np.array(owner, dtype=np.int64), np.concatenate(out) if out else None, minlength=len(images))
    return (sums / np.maximum(counts, 1)).astype(np.float32), counts


def score_arrays(
    net: Detector, images: list[np.ndarray], view: str = VIEW, perturb: Perturbation | None = None,
    batch_size: int = 64, progress: bool = False, names: list[str] | None = None, raw: bool = False,
) -> np.ndarray:
    """The logits of :func:`score_regions` alone, ``[N]``."""
    return score_regions(net, images, view, perturb, batch_size, progress, names, raw)[0]


def stage_logits(
    net: Detector, images: list[np.ndarray], view: str = VIEW, perturb: Perturbation | None = None,
    distance: FeatureDistance | None = None, batch_size: int = 64, progress: bool = False,
    names: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each stage's logits on the probability scale ``{"trace": [N], "distance": [N] (if any), "combined": [N]}``
    (module docstring) and the trace stage's region counts ``[N]``."""
    trace, counts = score_regions(net, images, view, perturb, batch_size, progress, names)
    out = {"trace": (trace.astype(np.float64) / float(net.temperature)).astype(np.float32)}
    if distance is not None:
        from ganforge.detection.distance import score_distance  # loads the Inception network only when needed

        out[DISTANCE] = score_distance(distance, images, perturb, names, progress)
    out["combined"] = np.max(np.stack(list(out.values())), axis=0)
    return out, counts


def predict_path(
    net: Detector, meta: dict[str, Any], source: str | Path, batch_size: int = 64, progress: bool = False,
    distance: FeatureDistance | None = None,
) -> list[dict[str, Any]]:
    """One record per file of an image or folder, in the folder's order, each with every ``PREDICT_FIELDS`` key:
    ``probability`` that the image is generated (calibrated), ``label`` ("fake" when it is >= 0.5, else "real"),
    ``regions`` scored, and ``error`` (None, or why the file could not be read: then probability and label are None
    and regions 0). Unreadable files never stop the rest. With a ``distance`` stage the probability is the larger of
    the two stages' (module docstring)."""
    images: ImageSet = read_images(source, progress=progress)
    view = (meta.get("preprocess") or {}).get("view", VIEW)
    records: list[dict[str, Any]] = []
    if len(images):
        logits, counts = stage_logits(net, images.images, view, distance=distance, batch_size=batch_size,
                                      progress=progress, names=images.names)
        probs = expit(logits["combined"].astype(np.float64))
        for name, p, n in zip(images.names, probs, counts, strict=True):
            records.append({"path": name, "probability": float(p), "label": "fake" if p >= 0.5 else "real",
                            "regions": int(n), "error": None})
    records += [{"path": e["file"], "probability": None, "label": None, "regions": 0, "error": e["error"]}
                for e in images.errors]
    return sorted(records, key=lambda r: r["path"])
