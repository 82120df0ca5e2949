"""Training recipe of ProGAN (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", sec. 2 and appendix A.1): everything about how ProGAN trains is in this file.

- Networks: ``ganforge.models.progan`` (power-of-two resolution >= 8), built at the target resolution; the stage
  ``(level, alpha)`` lives in their buffers and the schedule below moves it.
- Loss: WGAN-GP with the drift term (appendix A.1). Optimiser: Adam(1e-3, betas 0, 0.99); G EMA.
- Schedule (:class:`GrowthSchedule`): which resolution and fade-in alpha each step uses, and the batch size of each
  resolution. Training runs through phases measured in real images shown to D (``nimg``): 4x4 stabilise, then for
  each higher level a fade-in (alpha rising linearly from 0 to 1) and a stabilise phase; the last level's stabilise
  phase lasts until the end of the run. The stage is a pure function of ``nimg``, so a run resumed in the middle of a
  fade-in continues with exactly the alpha it stopped at; the schedule's ``state_dict`` carries the plan itself so a
  resumed run keeps its phase lengths even when ``--kimg`` changes.
- Data source (:class:`MultiResolutionSource`): real images at the current level, box-filtered down from the
  dataset's native resolution (the same filter as D's ``downsample2x``) and cached per level as uint8 (rounded, as
  the paper's dataset tool stored its per-level copies), so growth costs one pass over the data per level and
  loading stays an index lookup. During a fade-in, real images are blended like G's output:
  ``lerp(upsample(downsample(x)), x, alpha)``.
- Preview: samples on fixed noise at the current stage, shown at the target size (nearest upsampling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data import GanDataset
from ganforge.data.errors import DataError
from ganforge.losses import Batch
from ganforge.models.layers import downsample2x, upsample2x
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator, num_levels
from ganforge.train.recipes.base import Recipe, latent_preview, register_recipe, sampling_generator
from ganforge.train.source import DataSource, ImageSource

PAPER_PHASE_IMAGES = 800_000  # appendix A.1: 800k real images per fade-in and per stabilise phase ...
PAPER_DATASET_IMAGES = 30_000  # ... for CelebA-HQ's 30k images (about 27 epochs per phase)
SCHEDULE_KEYS = ("fade_kimg", "stable_kimg", "batch_sizes")


class GrowthSchedule:
    """Phases of progressive growth and the batch size of each resolution.

    ``resolution``: the target (power of two >= 8); ``fade_images`` / ``stable_images``: real images per fade-in and
    per stabilise phase (the last stabilise phase is open-ended); ``batch_sizes``: global batch per resolution
    ``{4: 64, 8: 64, ...}`` (every resolution from 4 to the target). ``update`` is called by the loop before every
    step and moves G, D, G_ema and the source to the stage of ``nimg``.
    """

    def __init__(self, resolution: int, fade_images: int, stable_images: int, batch_sizes: dict[int, int]) -> None:
        self.max_level = num_levels(resolution)
        self.resolution = resolution
        for name, v in (("fade_images", fade_images), ("stable_images", stable_images)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive number of images, got {v!r}")
        self.fade_images, self.stable_images = fade_images, stable_images
        self.batch_sizes = _check_batch_sizes(batch_sizes, self.max_level)
        self.last: dict[str, float] = {}

    # ---------------------------------------------------------------- the plan
    def phases(self) -> list[tuple[str, int, int, int | None]]:
        """``(kind, level, start_nimg, length)`` for every phase; the last one has length None (open-ended)."""
        out: list[tuple[str, int, int, int | None]] = [("stable", 0, 0, self.stable_images)]
        t = self.stable_images
        for lv in range(1, self.max_level + 1):
            out.append(("fade", lv, t, self.fade_images))
            t += self.fade_images
            last = lv == self.max_level
            out.append(("stable", lv, t, None if last else self.stable_images))
            t += self.stable_images
        return out

    @property
    def growth_images(self) -> int:
        """Images until the target resolution is fully faded in (alpha = 1 at the last level)."""
        return self.stable_images * self.max_level + self.fade_images * self.max_level

    def stage_at(self, nimg: int) -> tuple[int, float]:
        """``(level, alpha)`` after ``nimg`` real images: alpha rises linearly over each fade-in, 1 otherwise."""
        if nimg < 0:
            raise ValueError(f"nimg must be >= 0, got {nimg}")
        for kind, lv, start, length in self.phases():
            if length is None or nimg < start + length:
                alpha = (nimg - start) / length if kind == "fade" and length else 1.0
                return lv, float(alpha)
        raise AssertionError("unreachable: the last phase is open-ended")

    def batch_size(self, level: int) -> int:
        return self.batch_sizes[4 * 2**level]

    # ---------------------------------------------------------------- the loop's hook
    def update(self, nimg: int, networks: dict[str, nn.Module], source: Any) -> dict[str, float]:
        """Set the stage of ``nimg`` on every growing network (G, D, G_ema) and on the source; return it as stats."""
        level, alpha = self.stage_at(nimg)
        if not any(hasattr(_unwrap(n), "set_stage") for n in networks.values()):
            raise ValueError(f"GrowthSchedule needs growing networks (with set_stage); got {sorted(networks)}")
        for net in networks.values():
            net = _unwrap(net)
            if hasattr(net, "set_stage"):
                net.set_stage(level, alpha)
        batch = self.batch_size(level)
        source.set_stage(level, alpha, batch)
        self.last = {"nimg": nimg, "level": level, "alpha": alpha}
        return {
            "schedule/level": float(level),
            "schedule/resolution": float(4 * 2**level),
            "schedule/alpha": alpha,
            "schedule/batch": float(batch),
        }

    # ---------------------------------------------------------------- resume
    def plan(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "fade_images": self.fade_images,
            "stable_images": self.stable_images,
            "batch_sizes": {str(r): b for r, b in self.batch_sizes.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        return {"plan": self.plan(), "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt the saved plan (a resumed run keeps its phases even if ``--kimg`` changed the defaults)."""
        plan = state["plan"]
        if int(plan["resolution"]) != self.resolution:
            raise ValueError(
                f"schedule state is for resolution {plan['resolution']}, this run trains at {self.resolution}"
            )
        self.fade_images, self.stable_images = int(plan["fade_images"]), int(plan["stable_images"])
        self.batch_sizes = _check_batch_sizes(plan["batch_sizes"], self.max_level)
        self.last = dict(state.get("last", {}))


def _unwrap(net: nn.Module) -> nn.Module:
    return getattr(net, "module", net)  # DistributedDataParallel / compiled wrappers


def _check_batch_sizes(batch_sizes: dict[Any, int], max_level: int) -> dict[int, int]:
    """``{resolution: batch}`` for every resolution 4 .. 4 * 2**max_level; string keys (from JSON) are accepted."""
    want = [4 * 2**lv for lv in range(max_level + 1)]
    out: dict[int, int] = {}
    for k, v in batch_sizes.items():
        try:
            r = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"batch_sizes keys must be resolutions like 4, 8, 16, got {k!r}") from None
        if r not in want:
            raise ValueError(f"batch_sizes has resolution {r}, expected only {want}")
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"batch size for resolution {r} must be a positive int, got {v!r}")
        out[r] = v
    missing = [r for r in want if r not in out]
    if missing:
        raise ValueError(f"batch_sizes lacks resolution(s) {missing}; give every one of {want}")
    return {r: out[r] for r in want}


def default_phase_images(num_images: int, total_images: int, max_level: int) -> int:
    """The paper's 800k images per phase, scaled to the dataset and fitted into the run.

    Scaled: at most as many epochs per phase as the paper's 800k over CelebA-HQ's 30k images (so 5,000 faces get
    133k per phase; 60,000 digits keep 800k). Fitted: at most ``total / (2 * max_level + 1)``, an equal share of the
    run for each of the ``2 * max_level + 1`` phases, so the target resolution is reached before the run ends.
    """
    scaled = PAPER_PHASE_IMAGES * min(1.0, num_images / PAPER_DATASET_IMAGES)
    fitted = total_images / (2 * max_level + 1)
    return max(1, int(min(scaled, fitted)))


def make_schedule(cfg: Any, dataset: GanDataset) -> GrowthSchedule:
    """The ProGAN recipe's schedule from the training config.

    Options (``cfg.schedule_kwargs`` when the config has it): ``fade_kimg`` and ``stable_kimg`` (thousands of real
    images per phase; default ``default_phase_images``), ``batch_sizes`` (``{"4": 64, ...}``, default ``cfg.batch`` at
    every resolution; the paper shrinks it above 128x128 to fit memory).
    """
    opts = dict(getattr(cfg, "schedule_kwargs", None) or {})
    unknown = sorted(set(opts) - set(SCHEDULE_KEYS))
    if unknown:
        raise ValueError(f"unknown ProGAN schedule option(s) {unknown}; expected some of {list(SCHEDULE_KEYS)}")
    max_level = num_levels(dataset.resolution)
    default = default_phase_images(len(dataset), int(cfg.kimg * 1000), max_level)
    fade = _kimg_to_images(opts.get("fade_kimg"), "fade_kimg", default)
    stable = _kimg_to_images(opts.get("stable_kimg"), "stable_kimg", default)
    batch_sizes = opts.get("batch_sizes") or {4 * 2**lv: cfg.batch for lv in range(max_level + 1)}
    return GrowthSchedule(dataset.resolution, fade, stable, batch_sizes)


def _kimg_to_images(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of thousands of images, got {value!r}")
    return max(1, int(round(value * 1000)))


# -------------------------------------------------------------------- the multi-resolution data source
def box_downsample(data: torch.Tensor, factor: int, chunk: int = 1024) -> torch.Tensor:
    """uint8 images ``[N, C, R, R] -> [N, C, R/factor, R/factor]``: mean over ``factor x factor`` boxes, rounded.

    Equal (up to rounding) to ``factor``'s worth of repeated ``downsample2x``; computed in chunks to bound memory.
    """
    if data.dtype != torch.uint8:
        raise DataError(f"box_downsample expects uint8 images, got {data.dtype}")
    if factor == 1:
        return data
    out = []
    for i in range(0, len(data), chunk):
        x = F.avg_pool2d(data[i : i + chunk].float(), factor)  # [n, C, R/f, R/f]
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


class MultiResolutionSource(ImageSource):
    """``ImageSource`` serving real images at the schedule's current level, faded in like G's output.

    Same batches, latents and labels as ``ImageSource`` (same RNG draws); only the real images differ: they come
    from a per-level copy of the dataset (built once when the level is first used, only the current one kept), and
    during a fade-in are ``lerp(upsample2x(downsample2x(x)), x, alpha)``. ``set_stage`` also sets the batch size.
    """

    def __init__(
        self,
        dataset: GanDataset,
        batch_size: int,
        z_dim: int,
        cond: bool,
        xflip: bool,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not dataset.is_image:
            raise DataError(f"dataset {dataset.name!r} holds point samples, not images; ProGAN needs images")
        self.max_level = num_levels(dataset.resolution)
        super().__init__(dataset, batch_size, z_dim, cond, xflip, seed, device, rank, world_size)
        self.native = dataset
        self.world_size = world_size
        self.level, self.alpha = self.max_level, 1.0
        self._cache: dict[int, GanDataset] = {self.max_level: dataset}

    def level_dataset(self, level: int) -> GanDataset:
        """The dataset box-filtered to ``4 * 2**level`` pixels (built on first use, then cached)."""
        if level not in self._cache:
            factor = 2 ** (self.max_level - level)
            data = box_downsample(self.native.data, factor)
            info = self.native.info | {"resolution": 4 * 2**level, "downsampled_from": self.native.resolution}
            self._cache = {self.max_level: self.native,
                           level: dataclasses.replace(self.native, data=data, info=info)}  # labels, prior kept
        return self._cache[level]

    def set_stage(self, level: int, alpha: float, batch_size: int) -> None:
        """Serve ``batch_size`` images per global batch at level ``level`` with fade-in ``alpha``."""
        if not 0 <= level <= self.max_level:
            raise ValueError(f"level must be in [0, {self.max_level}], got {level}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if batch_size < 1 or batch_size % self.world_size != 0:
            raise ValueError(
                f"batch size {batch_size} at resolution {4 * 2**level} must be >= 1 and divisible by the number of "
                f"processes {self.world_size}"
            )
        self.level, self.alpha = level, float(alpha)
        self.dataset = self.level_dataset(level)  # ImageSource.next reads real images from self.dataset
        self.sampler.batch_size = batch_size
        self.per_rank = batch_size // self.world_size

    @property
    def resolution(self) -> int:
        return 4 * 2**self.level

    def next(self) -> Batch:
        batch = super().next()
        if self.level > 0 and self.alpha < 1.0:
            x = batch.real  # [B, C, r, r]
            batch.real = torch.lerp(upsample2x(downsample2x(x)), x, self.alpha)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "stage": {"level": self.level, "alpha": self.alpha, "batch": self.sampler.batch_size}
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        st = state["stage"]
        self.set_stage(int(st["level"]), float(st["alpha"]), int(st["batch"]))


def make_source(cfg: Any, dataset: GanDataset, device: torch.device, rank: int, world: int) -> MultiResolutionSource:
    """The ProGAN recipe's data source."""
    return MultiResolutionSource(dataset, cfg.batch, cfg.z_dim, cfg.conditional, cfg.xflip, cfg.seed, device, rank,
                                 world)


def preview(networks: Mapping[str, nn.Module], source: DataSource, n: int, seed: int) -> torch.Tensor:
    """Samples on fixed noise at the current stage, nearest-upsampled to the target resolution: ``[n, C, R, R]``."""
    imgs = latent_preview(networks, source, n, seed)  # [n, C, r, r], r the current stage resolution
    target = int(_unwrap(sampling_generator(networks)).resolution)
    if imgs.shape[-1] < target:
        imgs = F.interpolate(imgs, size=target, mode="nearest")
    return imgs


RECIPE = register_recipe(
    Recipe(
        name="progan",
        description="Karras et al. 2018 progressive growing (power-of-two resolution >= 8: 8, 16, 32, 64, ...)",
        loss="wgan-gp",
        generator=ProGANGenerator,
        discriminator=ProGANDiscriminator,
        # Appendix A.1: Adam(lr 0.001, beta1 0, beta2 0.99), 512-d latent, G EMA with decay 0.999 at batch 16
        # (a half-life of about 11k images). Phase lengths and batch sizes: make_schedule above.
        defaults={"lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.0, 0.99), "ema_kimg": 10.0, "z_dim": 512},
        make_source=make_source,
        make_schedule=make_schedule,
        preview=preview,
    )
)
