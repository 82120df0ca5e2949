"""Real and fake image sets for the detector, CNNDetection-style augmentation, and the test-time view.

Images stay at their native size as uint8 ``[H, W, C]`` arrays until the last step, because resizing is itself an
image operation that changes the spectrum the detector looks at. Sources:

- real: a built-in dataset name (``digits``, ``mnist``, ...) or any path ``ganforge.data`` reads (a folder, ``.zip``,
  ``.npz``, IDX file); folders are decoded file by file so a corrupt file becomes an error entry, not a crash.
- fake: an image folder, or a ganforge checkpoint / run directory / packaged model name, sampled on the fly
  (image ``i`` from seed ``seed + i``; truncation psi drawn per chunk from a range when the generator supports it).

Augmentation follows Wang et al. 2020 (CNNDetection, "Blur+JPEG (0.5)"): with probability ``blur_prob`` a Gaussian
blur with sigma ~ U[blur_sigma], with probability ``jpeg_prob`` a JPEG re-compression at quality ~ U{jpeg_quality}
(PIL), plus a random rescale (probability ``resize_prob``, factor ~ U[resize_scale], log-uniform with
``resize_log``, or with probability ``resize_exact_prob`` one of the exact ratios ``resize_exact``), a random
``crop`` x ``crop`` patch and a horizontal flip. A wide log-uniform range such as (0.5, 12) shows the detector
enlarged pictures of both classes (CelebA-HQ's reals are CelebA faces enlarged many times): a face detector taught
smooth "blob" fakes and no enlarged reals called 97-100 % of real faces enlarged 10x generated, and this range brought
that to 0.2 %, but it cost ranking after JPEG + 0.5x on held-out peers (BENCHMARKS.md, twentieth session). Exact
ratios matter because a continuous draw almost never gives one: halving an image and scaling it back up (as the
test view does for images smaller than the crop) leaves the very 2x2 pattern of generator upsampling, a
trace that no nearby ratio leaves. Images smaller than ``crop`` are upscaled (bicubic) so the short side equals
``crop``; that is explicit here and in the scored regions, never inside the network.

Scoring (``regions``): an image is scored on up to ``MAX_TILES_PER_SIDE`` x ``MAX_TILES_PER_SIDE`` ``crop`` x ``crop``
tiles at native resolution, spread evenly over it and started on the 8x8 JPEG grid, never on a global resize (which
erases the traces, issue 17); a picture that was enlarged (``enlargement_factor``) is first shrunk back by that
factor, to the size its traces are at; a predict or eval averages the tiles' logits. Older detectors recorded a test
view: a "center-crop" one is scored the same way, a "resize" one is refused (``REMOVED_VIEWS``).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from tqdm import tqdm

from ganforge.data.errors import DataError
from ganforge.data.formats import IMAGE_EXTENSIONS, decode_image, iter_image_folder
from ganforge.data.transforms import convert_channels
from ganforge.models.detector import ProcessingStep

VIEW = "tiles"  # what detectors record in config.json's preprocess.view
VIEWS = (VIEW, "center-crop")  # "center-crop": older detectors' name for it, scored the same way
REMOVED_VIEWS = {"resize": "a global resize of the whole image to the crop, which erases the traces; removed, "
                           "images are scored on tiles at native resolution"}
MAX_TILES_PER_SIDE = 4  # at most 16 regions per image
ENLARGEMENTS = (8, 6, 4, 3, 2)  # factors enlargement_factor tries, largest first
ENLARGEMENT_WINDOW = 1024  # pixels per side enlargement_factor looks at
ENLARGED_RMS = 4.0  # grey levels; chosen on training-split reals and fakes (BENCHMARKS.md, twentieth session)


@dataclass
class ImageSet:
    """Images of one source at native size: uint8 ``[H, W, C]`` (C in 1, 3, 4), their names, and read errors.

    ``errors`` holds ``{"file": name, "error": message}`` for files that could not be decoded; the rest are kept.
    ``simulated``: fakes made without a generator (``ganforge.detection.simulate``), a training aid that the
    temperature is not fitted on.
    """

    source: str
    images: list[np.ndarray]
    names: list[str]
    errors: list[dict[str, str]] = field(default_factory=list)
    simulated: bool = False

    def __post_init__(self) -> None:
        if len(self.images) != len(self.names):
            raise ValueError(f"{self.source}: {len(self.images)} images but {len(self.names)} names")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: list[int] | np.ndarray) -> ImageSet:
        return ImageSet(self.source, [self.images[i] for i in idx], [self.names[i] for i in idx],
                        simulated=self.simulated)

    def converted(self, channels: int) -> ImageSet:
        """The same images with exactly ``channels`` channels (:func:`to_channels`)."""
        images = [to_channels(im, channels, name) for im, name in zip(self.images, self.names, strict=True)]
        return ImageSet(self.source, images, list(self.names), list(self.errors), self.simulated)


def _progress(it, total: int, desc: str, show: bool):
    return tqdm(it, total=total, desc=desc, unit="img", leave=False, disable=not show)


def read_images(
    source: str | Path, max_images: int | None = None, data_dir: str | Path | None = None, progress: bool = False
) -> ImageSet:
    """Read real (or saved fake) images from a dataset name, a folder, a single image or a zip/npz/IDX file.

    Folders and single images are decoded one file at a time; unreadable files go to ``ImageSet.errors``. A folder
    is read in sorted order and ``max_images`` keeps the first ones. Built-in names and archives go through
    ``ganforge.data`` (which raises ``DataError`` naming the bad file).
    """
    from ganforge.data import dataset_names, load_dataset, read_source

    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    name = str(source)
    path = Path(source)
    if name in dataset_names() and not path.exists():
        ds = load_dataset(name, data_dir=data_dir, max_images=max_images)
        if not ds.is_image:
            raise DataError(f"dataset {name!r} holds points, not images; a detector needs images")
        arr = ds.data.permute(0, 2, 3, 1).numpy()  # [N, H, W, C]
        return ImageSet(name, list(arr), [f"{name}#{i}" for i in range(len(arr))])
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        files = [path]
    elif path.is_dir():
        files = iter_image_folder(path)[:max_images]
    elif path.exists():
        images, _, _ = read_source(path)
        images = list(images)[:max_images]
        return ImageSet(name, [np.asarray(im) for im in images], [f"{name}#{i}" for i in range(len(images))])
    else:
        raise DataError(f"{source!r} is neither a built-in dataset ({', '.join(dataset_names())}) nor an existing path")
    out = ImageSet(name, [], [])
    for f in _progress(files, len(files), f"reading {path.name}", progress):
        try:
            out.images.append(decode_image(f, str(f)))
            out.names.append(str(f))
        except DataError as e:
            out.errors.append({"file": str(f), "error": str(e)})
    return out


def is_checkpoint(source: str | Path) -> bool:
    """True for a ganforge checkpoint folder, a run directory with checkpoints, or a packaged model name that is not
    also a dataset name (``digits`` is both: it means the dataset; pass the packaged model's folder for the model)."""
    from ganforge.checkpoint import PACKAGED, list_checkpoints
    from ganforge.data import dataset_names

    p = Path(source)
    if not p.exists():
        return str(source) in PACKAGED and str(source) not in dataset_names()
    return (p / "config.json").is_file() or bool(list_checkpoints(p))


def sample_generator(
    source: str | Path,
    n: int,
    seed: int = 0,
    truncation: tuple[float, float] = (0.5, 1.0),
    chunk: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ImageSet:
    """``n`` uint8 samples from a ganforge generator (``G_ema``, else ``G``), image ``i`` from seed ``seed + i``.

    Conditional generators get a class drawn from the image's seed. When the generator supports truncation
    (``G.supports_truncation``), each chunk of ``chunk`` images uses its own psi ~ U[truncation]; otherwise psi is 1.
    Samples are quantised to uint8 exactly like saved pictures, so the detector never sees a float-vs-uint8 cue.
    """
    from ganforge.media import to_uint8
    from ganforge.sampling import generate, load_generator

    if n < 1:
        raise ValueError(f"number of fake samples must be >= 1, got {n}")
    lo, hi = truncation
    if not 0 < lo <= hi:
        raise ValueError(f"truncation range must satisfy 0 < lo <= hi, got {truncation}")
    G, _ = load_generator(source, device)
    c_dim = int(getattr(G, "c_dim", 0))
    trunc = bool(getattr(G, "supports_truncation", False))
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    seeds: list[int] = []
    for start in _progress(range(0, n, chunk), (n + chunk - 1) // chunk, f"sampling {Path(str(source)).name}",
                           progress):
        s = list(range(seed + start, seed + min(n, start + chunk)))
        classes = None
        if c_dim > 0:
            classes = [int(np.random.default_rng(k).integers(c_dim)) for k in s]
        psi = float(rng.uniform(lo, hi)) if trunc else 1.0
        imgs = generate(G, s, classes, psi, batch=chunk, device=device)  # [B, C, H, W] in [-1, 1]
        images += list(to_uint8(imgs))
        seeds += s
    return ImageSet(str(source), images, [f"{source}#seed{k}" for k in seeds])


def load_source(
    source: str | Path,
    n: int | None = None,
    seed: int = 0,
    truncation: tuple[float, float] = (0.5, 1.0),
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ImageSet:
    """A generator checkpoint (sampled: ``n`` images, default 1000) or images (at most ``n`` of them)."""
    if is_checkpoint(source):
        return sample_generator(source, n or 1000, seed, truncation, device=device, progress=progress)
    return read_images(source, n, data_dir, progress)


# --- geometry and channels ---------------------------------------------------------------------------------------


def to_channels(arr: np.ndarray, channels: int, name: str = "image") -> np.ndarray:
    """Explicit channel conversion ``[H, W, C] -> [H, W, channels]``: grey replicated to RGB, RGB to ITU-R 601
    luminance, alpha composited on black (``ganforge.data.transforms.convert_channels``)."""
    return convert_channels(arr, channels, name)


def _pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def _np(im: Image.Image) -> np.ndarray:
    out = np.asarray(im, dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def rescale(arr: np.ndarray, factor: float) -> np.ndarray:
    """Resize by ``factor`` (bicubic), keeping at least 1 pixel per side."""
    h, w = arr.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return arr if size == (w, h) else _np(_pil(arr).resize(size, Image.BICUBIC))


def upscale_window(arr: np.ndarray, factor: float, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Before a large upscale, a random window of ``arr`` just big enough for a ``crop`` patch of the result (with
    2 source pixels to spare on each side), so that a 12x enlargement resizes a few hundred pixels, not the whole
    picture. Unchanged when the enlarged image would be at most 4x the crop on its short side."""
    h, w = arr.shape[:2]
    if factor * min(h, w) <= 4 * crop:
        return arr
    n = int(np.ceil(crop / factor)) + 4
    top, left = int(rng.integers(max(h - n, 0) + 1)), int(rng.integers(max(w - n, 0) + 1))
    return arr[top : top + n, left : left + n]


def enlargement_factor(arr: np.ndarray, min_side: int, rms: float = ENLARGED_RMS) -> int:
    """The largest ``k`` of ``ENLARGEMENTS`` by which ``arr [H, W, C]`` looks enlarged, else 1.

    A picture enlarged ``k`` times holds nothing finer than its source: shrinking it ``k`` times (box filter) and
    enlarging it back (bicubic) changes its grey levels by less than ``rms`` (root mean square). Pictures as taken,
    and generators' samples, change by 7-15 levels at ``k = 2`` (5th-95th percentile of CelebA faces as stored and of
    64 px fakes); CelebA faces enlarged 2-8x with bicubic, even after JPEG 75-90, by 0.6-2.7 at their own ``k``.
    Only factors that leave a short side of at least ``min_side`` are tried; the test looks at the central
    ``ENLARGEMENT_WINDOW`` pixels of larger pictures (an enlargement enlarges every part alike).
    """
    if min(arr.shape[:2]) < min(ENLARGEMENTS) * min_side:  # too small for any factor: the common case, kept cheap
        return 1
    g = _pil(arr).convert("L")
    w, h = g.size
    side = max(ENLARGEMENT_WINDOW, max(ENLARGEMENTS) * min_side)
    if max(w, h) > side:
        left, top = max(0, (w - side) // 2), max(0, (h - side) // 2)
        g = g.crop((left, top, left + min(w, side), top + min(h, side)))
        w, h = g.size
    ref = np.asarray(g, dtype=np.float64)
    for k in ENLARGEMENTS:
        if min(w, h) < k * min_side:
            continue
        small = g.resize((round(w / k), round(h / k)), Image.BOX)
        back = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float64)
        if np.sqrt(np.mean((back - ref) ** 2)) < rms:
            return k
    return 1


def fit_short_side(arr: np.ndarray, crop: int) -> np.ndarray:
    """Upscale (bicubic) so the short side is at least ``crop``; larger images are returned unchanged."""
    h, w = arr.shape[:2]
    if min(h, w) >= crop:
        return arr
    return rescale(arr, crop / min(h, w))  # the short side becomes exactly crop


def center_crop(arr: np.ndarray, crop: int) -> np.ndarray:
    arr = fit_short_side(arr, crop)
    h, w = arr.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    return arr[top : top + crop, left : left + crop]


def random_crop(arr: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    arr = fit_short_side(arr, crop)
    h, w = arr.shape[:2]
    top, left = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    return arr[top : top + crop, left : left + crop]


def check_view(view: str) -> None:
    """Refuse a removed or unknown test view, naming it."""
    if view in REMOVED_VIEWS:
        raise ValueError(f"test view {view!r} ({REMOVED_VIEWS[view]})")
    if view not in VIEWS:
        raise ValueError(f"test view must be one of {VIEWS}, got {view!r}")


def inference_view(
    arr: np.ndarray, crop: int, channels: int, view: str = VIEW, name: str = "image"
) -> np.ndarray:
    """The central ``[crop, crop, channels]`` uint8 patch at native resolution (after an upscale of the short side to
    ``crop`` if the image is smaller): what a picture of "the region the detector saw" shows, and the patch the
    spectrum statistics are taken on. Scoring uses every tile of ``regions``."""
    check_view(view)
    return center_crop(to_channels(arr, channels, name), crop)


def tile_origins(size: int, crop: int, per_side: int = MAX_TILES_PER_SIDE) -> list[int]:
    """Start positions of up to ``per_side`` tiles of ``crop`` along a side of ``size >= crop`` pixels: as many as
    cover the side (at most ``per_side``), evenly spread from the first pixel to the last, each moved back onto the
    8x8 grid a JPEG decoder used (so the JPEG lattice stays visible, ``ganforge.models.jpeg_trace``)."""
    if size < crop:
        raise ValueError(f"side {size} is smaller than the crop {crop}")
    n = min(per_side, -(-size // crop))
    starts = np.linspace(0, size - crop, n).round().astype(int) if n > 1 else np.zeros(1, dtype=int)
    return sorted({int(o - o % 8) for o in starts})


def regions(
    arr: np.ndarray, crop: int, channels: int, name: str = "image", per_side: int = MAX_TILES_PER_SIDE
) -> list[np.ndarray]:
    """The ``[crop, crop, channels]`` uint8 tiles an image is scored on, at native resolution (``tile_origins`` along
    each side; an image smaller than ``crop`` is first upscaled so its short side is ``crop``, explicitly), or, for a
    picture that was enlarged (:func:`enlargement_factor`, keeping a short side of at least ``2 * crop``), at the
    size it was enlarged from: its native pixels hold no trace finer than that, and enlarged real photos scored at
    native size looked generated to the face detector. Channels are converted explicitly (:func:`to_channels`)."""
    arr = fit_short_side(to_channels(arr, channels, name), crop)
    k = enlargement_factor(arr, 2 * crop)
    if k > 1:  # an enlarged picture is scored at the size it was enlarged from, where its traces are
        arr = _np(_pil(arr).resize((round(arr.shape[1] / k), round(arr.shape[0] / k)), Image.BOX))
    h, w = arr.shape[:2]
    return [arr[t : t + crop, u : u + crop] for t in tile_origins(h, crop, per_side)
            for u in tile_origins(w, crop, per_side)]


def to_tensor(arrs: list[np.ndarray]) -> torch.Tensor:
    """Equal-size uint8 ``[H, W, C]`` arrays -> float ``[N, C, H, W]`` in [-1, 1]."""
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


# --- augmentation and perturbation -------------------------------------------------------------------------------


def gaussian_blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (PIL's ``GaussianBlur`` radius is the std)."""
    return arr if sigma <= 0 else _np(_pil(arr).filter(ImageFilter.GaussianBlur(radius=sigma)))


def jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    """Re-compress with PIL's JPEG encoder at ``quality`` (1..95 meaningful; 100 is nearly lossless)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    buf = io.BytesIO()
    _pil(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return _np(im.convert("L" if arr.shape[2] == 1 else "RGB"))


@dataclass
class Augment:
    """CNNDetection-style training augmentation; probabilities per image, ranges inclusive. See the module doc."""

    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    resize_prob: float = 0.2
    resize_scale: tuple[float, float] = (0.5, 1.5)
    resize_exact: tuple[float, ...] = ()  # factors drawn exactly, with probability resize_exact_prob (e.g. 0.5)
    resize_exact_prob: float = 0.0
    resize_log: bool = False  # draw the factor log-uniformly from resize_scale (each octave equally often)
    flip: bool = True

    def __post_init__(self) -> None:
        for name in ("blur_prob", "jpeg_prob", "resize_prob", "resize_exact_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        self.blur_sigma = tuple(float(v) for v in self.blur_sigma)  # type: ignore[assignment]
        self.jpeg_quality = tuple(int(v) for v in self.jpeg_quality)  # type: ignore[assignment]
        self.resize_scale = tuple(float(v) for v in self.resize_scale)  # type: ignore[assignment]
        self.resize_exact = tuple(float(v) for v in self.resize_exact)  # type: ignore[assignment]
        if any(not v > 0 for v in self.resize_exact):
            raise ValueError(f"resize_exact factors must be > 0, got {self.resize_exact}")
        if self.resize_exact_prob > 0 and not self.resize_exact:
            raise ValueError("resize_exact_prob > 0 needs factors in resize_exact")
        if not 0.0 <= self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must be a range 0 <= lo <= hi, got {self.blur_sigma}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be a range in [1, 100], got {self.jpeg_quality}")
        if not 0.0 < self.resize_scale[0] <= self.resize_scale[1]:
            raise ValueError(f"resize_scale must be a range 0 < lo <= hi, got {self.resize_scale}")

    def __call__(self, arr: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
        """One augmented ``crop`` x ``crop`` training patch from ``arr [H, W, C]`` (channels already converted)."""
        return self.apply(arr, crop, rng)[0]

    def apply(
        self, arr: np.ndarray, crop: int, rng: np.random.Generator, force: dict[str, bool] | None = None
    ) -> tuple[np.ndarray, dict[ProcessingStep, bool]]:
        """An augmented patch and which processing steps changed it (``{step: bool}`` for every
        :class:`~ganforge.models.detector.ProcessingStep`; a step equals its name, ``applied["jpeg"]``).

        ``force`` fixes whether a step is applied (its strength is still drawn from its range); steps it does not
        name follow their probabilities. The record teaches the detector's processing head and sorts held-out reals
        into the cells whose thresholds ``ganforge.detection.thresholds`` places. A rescale or blur that leaves the
        pixels as they were (factor rounding to the same size, sigma 0) counts as not applied.
        """
        force = force or {}
        unknown = sorted(set(force) - set(ProcessingStep))
        if unknown:
            raise ValueError(f"force names unknown processing step(s) {unknown}; expected some of "
                             f"{[str(s) for s in ProcessingStep]}")

        def happens(step: str, prob: float) -> bool:
            return force[step] if step in force else bool(rng.random() < prob)

        applied = dict.fromkeys(ProcessingStep, False)
        if happens(ProcessingStep.RESIZE, self.resize_prob):
            factor = self.rescale_factor(rng)
            arr = upscale_window(arr, factor, crop, rng)
            out = rescale(arr, factor)
            applied[ProcessingStep.RESIZE] = out.shape != arr.shape
            arr = out
        if happens(ProcessingStep.BLUR, self.blur_prob):
            sigma = float(rng.uniform(*self.blur_sigma))
            applied[ProcessingStep.BLUR] = sigma > 0
            arr = gaussian_blur(arr, sigma)
        if happens(ProcessingStep.JPEG, self.jpeg_prob):
            arr = jpeg(arr, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
            applied[ProcessingStep.JPEG] = True
        arr = random_crop(arr, crop, rng)
        if self.flip and rng.random() < 0.5:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr), applied

    def rescale_factor(self, rng: np.random.Generator) -> float:
        """A rescale factor: uniform (or log-uniform with ``resize_log``) in ``resize_scale``, or with probability
        ``resize_exact_prob`` one of ``resize_exact``."""
        lo, hi = self.resize_scale
        factor = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) if self.resize_log else rng.uniform(lo, hi))
        if self.resize_exact and rng.random() < self.resize_exact_prob:
            factor = float(rng.choice(self.resize_exact))
        return factor

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


NO_AUGMENT = Augment(blur_prob=0.0, jpeg_prob=0.0, resize_prob=0.0, flip=False)


@dataclass(frozen=True)
class Perturbation:
    """A deterministic test-time degradation: rescale by ``scale`` (bicubic), then JPEG at ``jpeg_quality``.

    ``Perturbation(jpeg_quality=75, scale=0.5)`` is the "JPEG q=75 + 0.5x resize" robustness setting.
    """

    jpeg_quality: int | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.scale is not None and not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        if self.scale is not None:
            arr = rescale(arr, self.scale)
        if self.jpeg_quality is not None:
            arr = jpeg(arr, self.jpeg_quality)
        return arr

    @property
    def name(self) -> str:
        parts = ([f"scale{self.scale:g}"] if self.scale is not None else []) + (
            [f"jpeg{self.jpeg_quality}"] if self.jpeg_quality is not None else [])
        return "+".join(parts) or "clean"
