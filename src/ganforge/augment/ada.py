"""Differentiable augmentation for the discriminator, after Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data" (ADA).

:class:`AugmentPipe` applies random transformations, each with probability ``p`` per sample, to every image D sees
(real and generated alike). Because every operation is differentiable (an affine resampling through ``grid_sample``
and a colour matrix), G receives gradients through the augmentation, and because the augmentations are applied with
``p < 1`` and are invertible in distribution, they do not leak into the generated images (ADA sec. 2, fig. 3; the
paper reports no leaking while ``p`` stays below about 0.8).

:class:`AdaController` adapts ``p`` from the overfitting heuristic ``r_t = E[sign(D(x_real))]`` (ADA sec. 3): every
``interval`` steps ``p`` moves by ``sign(r_t - target) * images_seen / (speed_kimg * 1000)``, so it can go from 0 to 1
in ``speed_kimg`` thousand images (500 in the paper), and is clamped to ``[0, p_max]``.

Operations (ADA appendix B, "bgc"): pixel blitting ``xflip`` (x-flip with probability 1/2), ``rotate90`` (a random
multiple of 90 degrees), ``xint`` (integer translation up to ``xint_max`` of the size); geometric ``scale``
(isotropic, log-normal), ``rotate`` (arbitrary angle, applied before and after ``aniso`` with probability
``1 - sqrt(1 - p)`` each so that some rotation happens with probability p), ``aniso`` (anisotropic scale) and
``xfrac`` (fractional translation); colour ``brightness``, ``contrast``, ``lumaflip``, ``hue`` and ``saturation``.
Luma flip, hue and saturation need three channels and are skipped on other images (there is no colour to rotate);
brightness and contrast act on any channel count.

Differences from the reference implementation: geometric transforms are combined into one affine matrix and applied
with bilinear ``grid_sample`` (reflection padding) instead of the reference's custom-op resampling with a 2x
oversampled wavelet filter, so strongly scaled or rotated samples are slightly blurrier; the image-space filtering
and cutout groups are not included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = BLIT + GEOM + COLOR
PRESETS: dict[str, tuple[str, ...]] = {"blit": BLIT, "geom": GEOM, "color": COLOR, "bg": BLIT + GEOM,
                                       "bgc": BLIT + GEOM + COLOR}
AUGMENT_MODES = ("ada", "fixed", "none")


def parse_ops(ops: str | Sequence[str]) -> tuple[str, ...]:
    """A preset name (``bgc``, ``bg``, ``blit``, ``geom``, ``color``) or comma-separated operation names."""
    if isinstance(ops, str):
        names = PRESETS.get(ops) or tuple(o.strip() for o in ops.split(",") if o.strip())
    else:
        names = tuple(ops)
    bad = [o for o in names if o not in OPS]
    if bad or not names:
        raise ValueError(f"unknown augmentation(s) {bad or names!r}: expected a preset {sorted(PRESETS)} "
                         f"or names from {list(OPS)}")
    return tuple(o for o in OPS if o in names)  # canonical order


class AugmentPipe:
    """Random differentiable augmentation ``[N, C, H, W] -> [N, C, H, W]`` with per-sample probability ``p``.

    Args:
        ops: a preset or list of operations (see the module docstring).
        p: probability of each operation per sample, in [0, 1]; ``p = 0`` returns the input unchanged.
        xint_max: largest integer translation, as a fraction of the image size.
        scale_std, aniso_std: log2 standard deviations of the isotropic / anisotropic scale.
        rotate_max: largest rotation, as a fraction of a half-turn.
        xfrac_std: standard deviation of the fractional translation, as a fraction of the image size.
        brightness_std, contrast_std, hue_max, saturation_std: colour strengths (brightness is additive in the
            [-1, 1] space; contrast and saturation are log2 standard deviations; hue_max a fraction of a half-turn).
    """

    def __init__(
        self,
        ops: str | Sequence[str] = "bgc",
        p: float = 0.0,
        xint_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1.0,
        saturation_std: float = 1.0,
    ) -> None:
        self.ops = parse_ops(ops)
        self.p = p
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std, self.hue_max = brightness_std, contrast_std, hue_max
        self.saturation_std = saturation_std

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {value}")
        self._p = value

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"augment expects images [N, C, H, W], got shape {list(images.shape)}")
        if self._p == 0.0:
            return images
        if any(o in self.ops for o in BLIT + GEOM):
            images = self._geometric(images)
        if any(o in self.ops for o in COLOR):
            images = self._colour(images)
        return images

    # ------------------------------------------------------------------ helpers
    def _mask(self, n: int, device: torch.device, p: float | None = None) -> torch.Tensor:
        """Bool ``[N]``: which samples get an operation (probability ``p``, default the pipe's)."""
        return torch.rand(n, device=device) < (self._p if p is None else p)

    def _geometric(self, images: torch.Tensor) -> torch.Tensor:
        """All pixel-blitting and geometric operations as one per-sample affine map, applied by resampling.

        Matrices act on normalised output coordinates (x right, y down, both in [-1, 1] across the image) and give
        the input coordinates to sample; every distribution used is symmetric, so drawing the inverse transform
        directly is the same as drawing the transform.
        """
        n, _, h, w = images.shape
        if h != w:
            raise ValueError(f"geometric augmentation needs square images, got {h}x{w}")
        dev = images.device
        m = torch.eye(3, device=dev).repeat(n, 1, 1)  # [N, 3, 3]
        zero, one = torch.zeros(n, device=dev), torch.ones(n, device=dev)

        def scale2(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
            return _mat3(sx, zero, zero, zero, sy, zero)

        def translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
            return _mat3(one, zero, tx, zero, one, ty)

        def rotate(theta: torch.Tensor) -> torch.Tensor:
            c, s = theta.cos(), theta.sin()
            return _mat3(c, -s, zero, s, c, zero)

        if "xflip" in self.ops:
            flip = torch.randint(0, 2, (n,), device=dev) * self._mask(n, dev)
            m = m @ scale2(1.0 - 2.0 * flip, one)
        if "rotate90" in self.ops:
            k = torch.randint(0, 4, (n,), device=dev) * self._mask(n, dev)
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=dev)[k]  # exact values, no rounding error
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=dev)[k]
            m = m @ _mat3(cos, -sin, zero, sin, cos, zero)
        if "xint" in self.ops:
            t = ((torch.rand(n, 2, device=dev) * 2 - 1) * self.xint_max * w).round()  # whole pixels
            t = t * self._mask(n, dev)[:, None] * (2.0 / w)  # pixels -> normalised units
            m = m @ translate(t[:, 0], t[:, 1])
        if "scale" in self.ops:
            s = torch.where(self._mask(n, dev), torch.exp2(torch.randn(n, device=dev) * self.scale_std), one)
            m = m @ scale2(s, s)
        p_rot = 1.0 - math.sqrt(max(0.0, 1.0 - self._p))
        if "rotate" in self.ops:
            theta = (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, dev, p_rot)
            m = m @ rotate(theta)
        if "aniso" in self.ops:
            s = torch.where(self._mask(n, dev), torch.exp2(torch.randn(n, device=dev) * self.aniso_std), one)
            m = m @ scale2(s, 1.0 / s)
        if "rotate" in self.ops:
            theta = (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, dev, p_rot)
            m = m @ rotate(theta)
        if "xfrac" in self.ops:
            t = torch.randn(n, 2, device=dev) * self.xfrac_std * 2.0 * self._mask(n, dev)[:, None]
            m = m @ translate(t[:, 0], t[:, 1])
        grid = F.affine_grid(m[:, :2, :].to(images.dtype), list(images.shape), align_corners=False)  # [N, H, W, 2]
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _colour(self, images: torch.Tensor) -> torch.Tensor:
        """Colour operations as one per-sample 4x4 matrix on homogeneous RGB (or gain + offset on other images)."""
        n, ch = images.shape[:2]
        dev = images.device
        rgb = ch == 3
        c = torch.eye(4, device=dev).repeat(n, 1, 1)  # [N, 4, 4]
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3.0)  # luma axis
        vv = torch.outer(v, v)  # [4, 4]
        eye = torch.eye(4, device=dev)
        if "brightness" in self.ops:
            b = torch.randn(n, device=dev) * self.brightness_std * self._mask(n, dev)
            t = eye.repeat(n, 1, 1)
            t[:, :3, 3] = b[:, None]
            c = t @ c
        if "contrast" in self.ops:
            s = torch.where(self._mask(n, dev), torch.exp2(torch.randn(n, device=dev) * self.contrast_std),
                            torch.ones(n, device=dev))
            d = eye.repeat(n, 1, 1)
            d[:, 0, 0] = d[:, 1, 1] = d[:, 2, 2] = s
            c = d @ c
        if rgb and "lumaflip" in self.ops:
            i = (torch.randint(0, 2, (n,), device=dev) * self._mask(n, dev)).float()
            c = (eye - 2.0 * vv * i[:, None, None]) @ c
        if rgb and "hue" in self.ops:
            theta = (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.hue_max * self._mask(n, dev)
            c = _rotate_about(v[:3], theta) @ c
        if rgb and "saturation" in self.ops:
            s = torch.where(self._mask(n, dev), torch.exp2(torch.randn(n, device=dev) * self.saturation_std),
                            torch.ones(n, device=dev))
            c = (vv + (eye - vv) * s[:, None, None]) @ c
        c = c.to(images.dtype)
        if rgb:
            flat = images.reshape(n, 3, -1)  # [N, 3, H*W]
            out = c[:, :3, :3] @ flat + c[:, :3, 3:]
            return out.reshape(images.shape)
        # Brightness and contrast only: x -> a x + b on every channel.
        return images * c[:, 0, 0, None, None, None] + c[:, 0, 3, None, None, None]


def _mat3(a, b, c, d, e, f) -> torch.Tensor:
    """Batch of affine matrices ``[[a, b, c], [d, e, f], [0, 0, 1]]`` from ``[N]`` tensors -> ``[N, 3, 3]``."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], dim=1).reshape(-1, 3, 3)


def _rotate_about(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """4x4 rotations by ``theta [N]`` about the unit 3-vector ``axis`` (Rodrigues' formula), ``[N, 4, 4]``."""
    n = theta.shape[0]
    x, y, z = axis
    k = torch.stack([torch.stack([0 * x, -z, y]), torch.stack([z, 0 * x, -x]), torch.stack([-y, x, 0 * x])])  # [3, 3]
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    r3 = cos * torch.eye(3, device=theta.device) + sin * k + (1 - cos) * torch.outer(axis, axis)  # [N, 3, 3]
    r = torch.eye(4, device=theta.device).repeat(n, 1, 1)
    r[:, :3, :3] = r3
    return r


class AdaController:
    """Adaptive ``p`` (ADA sec. 3): accumulate ``sign(D(x_real))`` and nudge ``p`` towards ``r_t = target``.

    Args:
        pipe: the augmentation pipe whose ``p`` is adjusted.
        target: the r_t target (0.6 in the paper).
        interval: steps between adjustments (4 in the reference).
        speed_kimg: thousands of images for ``p`` to go from 0 to 1 at full speed (500 in the paper).
        p_max: upper bound for ``p`` (default 0.8, below which the paper observed no leaking; bounding it stops
            the runaway ``p`` users report when D overfits badly).
    """

    def __init__(
        self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0, p_max: float = 0.8
    ) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"ada_target must be in (0, 1), got {target}")
        if interval < 1:
            raise ValueError(f"ada_interval must be >= 1, got {interval}")
        if speed_kimg <= 0:
            raise ValueError(f"ada_kimg must be > 0, got {speed_kimg}")
        if not 0.0 <= p_max <= 1.0:
            raise ValueError(f"p_max must be in [0, 1], got {p_max}")
        if pipe.p > p_max:
            raise ValueError(f"initial augment_p={pipe.p} is above p_max={p_max}")
        self.pipe, self.target, self.interval, self.speed_kimg, self.p_max = pipe, target, interval, speed_kimg, p_max
        self._sign_sum, self._count, self._steps, self._last_nimg = 0.0, 0, 0, None
        self.last_rt: float | None = None

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record ``sign(D(x_real))`` of one D step (logits ``[N]``)."""
        self._sign_sum = self._sign_sum + real_logits.detach().float().sign().sum()  # stays on device: no sync
        self._count += int(real_logits.numel())

    def step(self, nimg: int) -> dict[str, float]:
        """Called once per training step; adjusts ``p`` every ``interval`` steps. Returns stats to log."""
        if self._last_nimg is None:
            self._last_nimg = nimg
        self._steps += 1
        if self._steps % self.interval != 0 or self._count == 0:
            return {"augment/p": self.pipe.p}
        sign_sum, count = _all_reduce_sum(float(self._sign_sum), self._count)
        rt = sign_sum / count
        adjust = math.copysign(1.0, rt - self.target) * (nimg - self._last_nimg) / (self.speed_kimg * 1000.0)
        self.pipe.p = min(max(self.pipe.p + adjust, 0.0), self.p_max)
        self._sign_sum, self._count, self._last_nimg, self.last_rt = 0.0, 0, nimg, rt
        return {"augment/p": self.pipe.p, "augment/rt": rt}

    def state_dict(self) -> dict[str, float | int | None]:
        return {"p": self.pipe.p, "steps": self._steps, "last_nimg": self._last_nimg}

    def load_state_dict(self, state: dict) -> None:
        p = float(state["p"])
        if not 0.0 <= p <= self.p_max:
            raise ValueError(f"saved augment p={p} is outside [0, p_max={self.p_max}]")
        self.pipe.p = p
        self._steps = int(state["steps"])
        self._last_nimg = None if state["last_nimg"] is None else int(state["last_nimg"])
        self._sign_sum, self._count = 0.0, 0


def _all_reduce_sum(sign_sum: float, count: int) -> tuple[float, int]:
    """Sum the r_t statistics over ``torch.distributed`` ranks (identity when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return sign_sum, count
    backend_cuda = dist.get_backend() == "nccl"
    t = torch.tensor([sign_sum, float(count)], dtype=torch.float64,
                     device=torch.device("cuda", torch.cuda.current_device()) if backend_cuda else "cpu")
    dist.all_reduce(t)
    return float(t[0]), int(t[1])
