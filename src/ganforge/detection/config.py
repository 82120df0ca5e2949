"""The detector's training configuration: typed, with documented defaults, unknown keys refused by name.

``ganforge detect train`` takes the options users set on the command line (real images, fakes, output folder,
steps, device, seed) and everything else from one JSON file (``--config FILE.json``) of two sections:

- ``sources`` (:class:`SourceConfig`): how the images are gathered (samples per generator checkpoint, cap on reals,
  built-in dataset folder, truncation range, simulated upsampler fakes).
- ``train`` (:class:`DetectorTrainConfig`): the patch size, optimisation, splits, the threshold rule's two rates
  (``ganforge.detection.thresholds``), ``augment`` (``ganforge.detection.data.Augment``) and ``model``
  (``ganforge.models.detector.Detector`` arguments other than channels and crop).

``ganforge detect train --print-config`` prints the defaults in that layout (:func:`default_config`); a file needs
only the keys it changes. Modes that measurements did not keep (``REMOVED_OPTIONS``, ``removed_modes``) are named
when a file or a saved detector uses them.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

from ganforge.detection.data import REMOVED_VIEWS, Augment
from ganforge.detection.simulate import check_upsamplers
from ganforge.models.detector import DEFAULT_PROCESSING, Detector, parse_processing

REMOVED_OPTIONS = {
    "threshold": "removed: one rule places every detector's thresholds, the 'real-fpr' rule is gone "
                 "(ganforge.detection.thresholds, BENCHMARKS.md runs M and N); set real_fpr and max_real_fpr instead",
    "view": "images are scored on tiles at native resolution; the 'resize' view is gone and 'center-crop' is the "
            "tiles' central one",
}


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def refuse_unknown(d: dict[str, Any], known: set[str], what: str) -> None:
    """``ValueError`` naming every key of ``d`` not in ``known`` (and why, for removed options)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - known)
    if unknown:
        why = "; ".join(f"{k!r}: {REMOVED_OPTIONS[k]}" for k in unknown if k in REMOVED_OPTIONS)
        raise ValueError(f"unknown {what} option(s): {', '.join(unknown)}" + (f" ({why})" if why else ""))


def detector_defaults() -> dict[str, Any]:
    """``Detector``'s keyword defaults other than channels and crop (what ``train.model`` may set)."""
    sig = inspect.signature(Detector.__init__)
    return {k: p.default for k, p in sig.parameters.items() if k not in ("self", "channels", "crop")}


@dataclass
class DetectorTrainConfig:
    """Options of ``train_detector``; ``augment`` and ``model`` are completed with their defaults."""

    crop: int = 64  # patch size: random crops to train, tiles of this size to score
    channels: int | None = None  # None: 3 if any training image has colour, else 1
    steps: int = 1000
    batch: int = 32  # half real, half fake
    lr: float = 1e-3  # Adam
    weight_decay: float = 0.0
    calib_fraction: float = 0.15  # of every source, for thresholds and temperature
    test_fraction: float = 0.15  # of every source, for the report
    stats_images: int = 512  # spectrum statistics and the JPEG recogniser's fit
    real_fpr: float = 0.01  # the threshold rule: share of a cell's calibration reals above its threshold
    max_real_fpr: float = 0.03  # ... the most it may become where the cell's calibration fakes overlap the reals
    seed: int = 0
    device: str = "cpu"
    augment: dict[str, Any] = field(default_factory=dict)  # Augment fields
    model: dict[str, Any] = field(default_factory=dict)  # Detector kwargs other than channels and crop

    def __post_init__(self) -> None:
        refuse_unknown(self.augment, {f.name for f in dataclasses.fields(Augment)}, "augment")
        _need(not {"channels", "crop"} & set(self.model),
              f"set {sorted({'channels', 'crop'} & set(self.model))} as top-level options, not inside model")
        refuse_unknown(self.model, set(detector_defaults()), "model")
        self.augment = Augment(**self.augment).to_dict()  # validates names and ranges
        self.model = {**detector_defaults(), **self.model}
        self._check_numbers()
        self._check_processing()

    def _check_numbers(self) -> None:
        _need(self.crop >= 8, f"crop must be >= 8, got {self.crop}")
        _need(self.channels in (None, 1, 3), f"channels must be 1 or 3, got {self.channels}")
        _need(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _need(self.batch >= 2 and self.batch % 2 == 0, f"batch must be an even number >= 2, got {self.batch}")
        _need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _need(0 < self.calib_fraction < 1 and 0 < self.test_fraction < 1
              and self.calib_fraction + self.test_fraction < 1,
              f"calib_fraction and test_fraction must be in (0, 1) with sum < 1, got {self.calib_fraction}, "
              f"{self.test_fraction}")
        _need(isinstance(self.real_fpr, (int, float)) and 0 < self.real_fpr < 0.5,
              f"real_fpr must be in (0, 0.5), got {self.real_fpr}")
        _need(self.real_fpr <= self.max_real_fpr < 0.5,
              f"max_real_fpr must be in [real_fpr, 0.5), got {self.max_real_fpr} with real_fpr {self.real_fpr}")
        _need(self.stats_images >= 2, f"stats_images must be >= 2, got {self.stats_images}")

    def _check_processing(self) -> None:
        for step in parse_processing(self.model.get("processing", DEFAULT_PROCESSING)):
            prob = self.augment[f"{step}_prob"]
            _need(0 < prob < 1, f"the detector's processing head learns to recognise '{step}', so the augmentation "
                  f"must apply it to some images and not others ({step}_prob in (0, 1)), got {prob}; drop it from "
                  "model.processing or change the probability")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorTrainConfig:
        refuse_unknown(d, {f.name for f in dataclasses.fields(cls)}, "detector training")
        return cls(**d)


@dataclass
class SourceConfig:
    """How ``ganforge detect train`` gathers its images (the ``sources`` section of ``--config``)."""

    n_fake: int = 2000  # samples per generator checkpoint, and the cap per fake folder
    max_real: int | None = None  # use at most this many real images
    data_dir: str | None = None  # folder holding a built-in dataset's files
    truncation: tuple[float, float] = (0.5, 1.0)  # psi range for style-based generators
    simulate: list[str] = field(default_factory=list)  # upsamplers of simulated fakes (ganforge.detection.simulate)
    simulate_steps: list[int] = field(default_factory=lambda: [150, 600])  # auto-encoder lengths per simulated set

    def __post_init__(self) -> None:
        _need(isinstance(self.n_fake, int) and self.n_fake >= 1, f"n_fake must be a whole number >= 1, got "
              f"{self.n_fake}")
        _need(self.max_real is None or (isinstance(self.max_real, int) and self.max_real >= 1),
              f"max_real must be null or a whole number >= 1, got {self.max_real}")
        _need(len(self.truncation) == 2 and 0 < self.truncation[0] <= self.truncation[1],
              f"truncation must be [lo, hi] with 0 < lo <= hi, got {self.truncation}")
        self.truncation = (float(self.truncation[0]), float(self.truncation[1]))
        check_upsamplers(self.simulate)
        _need(len(self.simulate_steps) > 0 and all(isinstance(v, int) and v >= 1 for v in self.simulate_steps),
              f"simulate_steps must be whole numbers >= 1, got {self.simulate_steps}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["truncation"] = list(self.truncation)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceConfig:
        refuse_unknown(d, {f.name for f in dataclasses.fields(cls)}, "sources")
        return cls(**d)


def load_config(d: dict[str, Any]) -> tuple[SourceConfig, DetectorTrainConfig]:
    """Both sections of a ``--config`` object (either may be left out: defaults); unknown keys are errors."""
    refuse_unknown(d, {"sources", "train"}, "config")
    return SourceConfig.from_dict(d.get("sources", {})), DetectorTrainConfig.from_dict(d.get("train", {}))


def default_config() -> dict[str, Any]:
    """The default ``--config`` object, every key spelt out."""
    return {"sources": SourceConfig().to_dict(), "train": DetectorTrainConfig().to_dict()}


def removed_modes(meta: dict[str, Any]) -> list[str]:
    """The removed modes a detector checkpoint's ``config.json`` records, each named with why it went."""
    train, pre = meta.get("train") or {}, meta.get("preprocess") or {}
    found = []
    if train.get("threshold", "fewest-errors") != "fewest-errors":
        found.append(f"threshold rule {train['threshold']!r} ({REMOVED_OPTIONS['threshold']})")
    if "real_fpr" in train and train["real_fpr"] is None:
        found.append("real_fpr null, i.e. `--real-fpr 0` (the threshold left where training put it; removed: every "
                     "detector places its thresholds by the one rule)")
    for view in {train.get("view"), pre.get("view")} & set(REMOVED_VIEWS):
        found.append(f"test view {view!r} ({REMOVED_VIEWS[view]})")
    return found
