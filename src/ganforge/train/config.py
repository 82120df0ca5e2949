"""The typed, validated training configuration, saved as JSON in every run and checkpoint (STYLE.md rule 4).

Unknown keys are errors, never ignored; every value is checked with a message naming it and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.losses.classic import is_penalty_weight, reg_interval_problem

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")  # auto: ganforge.train.build.resolve_precision


@dataclass
class TrainConfig:
    """Everything a training run needs; defaults are the beginner path (DCGAN on the offline digits)."""

    # what to train
    model: str = "dcgan"
    preset: str | None = None  # a named set of defaults of the family (gan on point sets: points, paper)
    data: str = "digits"
    data_dir: str | None = None
    domain_b: str | None = None  # second domain for translation models (UNIT)
    resolution: int | None = None  # None: the dataset's own
    channels: int | None = None  # None: the dataset's own
    resize: str = "center-crop"
    on_error: str = "raise"
    max_images: int | None = None
    cond: bool = False  # class-conditional training (needs labels)
    clusters: int = 0  # self-conditioned training on this many k-means clusters of the data (0: off; needs no labels)
    xflip: bool = False
    translate: int | None = None  # random whole-pixel shifts of real images, up to this many px per axis (UNIT
    # only); None: the family's choice (UNIT: 2 at 32 px and below, else 0), pinned into the saved config by build
    z_dim: int = 100
    g_kwargs: dict[str, Any] = field(default_factory=dict)
    d_kwargs: dict[str, Any] = field(default_factory=dict)
    # how to train it
    loss: str | None = None  # None: the family's default
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    d_steps: int = 1
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)  # growth schedule (ProGAN): fade_kimg, ...
    batch: int = 32
    batch_gpu: int | None = None  # per-device micro-batch for gradient accumulation
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_kimg: float = 1.0  # half-life of the G EMA in thousands of images; 0 disables G_ema
    ema_rampup: float | None = None
    ema_bn_images: int = 4096  # quasi-random latents for G_ema's batch-norm re-estimate; 0: G's statistics copied
    kimg: float = 100.0  # training length in thousands of real images shown to D
    lr_rampdown: float = 0.0  # final fraction of kimg over which both learning rates fall to 0 (half cosine)
    # what to write
    outdir: str = "runs"
    grid_kimg: float = 4.0
    grid_size: int = 64
    snapshot_kimg: float = 20.0
    keep_checkpoints: int = 3
    log_every: int = 50  # steps between stats.jsonl records
    metrics: list[str] = field(default_factory=list)
    metrics_every_kimg: float = 10.0
    metrics_n: int = 1000
    stop_when: str | None = None
    heldout: int = 0  # reals held out of training for D's overfitting signal (diagnostics)
    diagnostics: bool = True  # class coverage, overfitting and saturation checks with every sample grid
    patience: int | None = None
    # where and how to run
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(self.batch >= 1, f"batch must be >= 1, got {self.batch}")
        need(
            self.batch_gpu is None or (1 <= self.batch_gpu <= self.batch and self.batch % self.batch_gpu == 0),
            f"batch_gpu must divide batch ({self.batch}), got {self.batch_gpu}",
        )
        need(self.d_steps >= 1, f"d_steps must be >= 1, got {self.d_steps}")
        need(self.lr_g > 0 and self.lr_d > 0, f"learning rates must be > 0, got lr_g={self.lr_g}, lr_d={self.lr_d}")
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        need(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas must be two values in [0, 1), got {self.betas}",
        )
        need(self.kimg > 0, f"kimg must be > 0, got {self.kimg}")
        need(0 <= self.lr_rampdown <= 1, f"lr_rampdown must be a fraction in [0, 1], got {self.lr_rampdown}")
        need(self.grid_kimg > 0 and self.snapshot_kimg > 0, "grid_kimg and snapshot_kimg must be > 0")
        need(self.ema_kimg >= 0, f"ema_kimg must be >= 0, got {self.ema_kimg}")
        need(self.ema_bn_images >= 0, f"ema_bn_images must be >= 0, got {self.ema_bn_images}")
        need(self.z_dim >= 1, f"z_dim must be >= 1, got {self.z_dim}")
        need(self.resolution is None or self.resolution >= 1, f"resolution must be >= 1, got {self.resolution}")
        need(self.channels in (None, 1, 3), f"channels must be 1 or 3, got {self.channels}")
        need(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.on_error in ("raise", "skip"), f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        need(self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        need(self.grid_size >= 1, f"grid_size must be >= 1, got {self.grid_size}")
        need(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        need(self.heldout >= 0, f"heldout must be >= 0, got {self.heldout}")
        need(self.translate is None or (isinstance(self.translate, int) and self.translate >= 0),
             f"translate must be a whole number of pixels >= 0, got {self.translate!r}")
        need(not self.translate or self.model == "unit",
             f"translate (random shifts of the real images) is implemented for model 'unit' only, got {self.model!r}")
        need(self.patience is None or self.patience >= 1, f"patience must be >= 1, got {self.patience}")
        need(self.clusters == 0 or self.clusters >= 2, f"clusters must be 0 (off) or >= 2, got {self.clusters}")
        need(not (self.cond and self.clusters), "cond (the data's labels) and clusters (labels from k-means) exclude "
             "each other; pass one of them")
        self._validate_coverage_options(need)

    def _validate_coverage_options(self, need: Any) -> None:
        """The mode-coverage options (PacGAN packing, minibatch stddev in D, R1 / R2), checked before any network
        exists."""
        pack = self.d_kwargs.get("pack", 1)
        need(isinstance(pack, int) and not isinstance(pack, bool) and pack >= 1,
             f"d_kwargs.pack must be an integer >= 1, got {pack!r}")
        need(self.batch % pack == 0 and (self.batch_gpu or self.batch) % pack == 0,
             f"batch ({self.batch}) and batch_gpu ({self.batch_gpu}) must be multiples of d_kwargs.pack ({pack})")
        group = self.d_kwargs.get("mbstd_group", 0)
        need(isinstance(group, int) and not isinstance(group, bool) and (group == 0 or group >= 2),
             f"d_kwargs.mbstd_group must be 0 (off) or an integer >= 2, got {group!r}")
        for name in ("r1_gamma", "r2_gamma"):
            gamma = self.loss_kwargs.get(name, 0.0)
            need(is_penalty_weight(gamma), f"loss_kwargs.{name} must be a number >= 0, got {gamma!r}")
        kw = self.loss_kwargs
        problem = reg_interval_problem(kw.get("reg_interval", 1), kw.get("r1_gamma"), kw.get("r2_gamma"))
        need(problem is None, f"loss_kwargs.{problem}")

    @property
    def conditional(self) -> bool:
        """Whether G and D take labels: the data's own (``cond``) or cluster indices (``clusters``)."""
        return self.cond or self.clusters > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s): {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON ({e})") from None

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})
