"""A detector of GAN-generated images: a small CNN on pixel residuals plus frequency and clipping features, one logit
per image.

Anchors:
- Wang et al., "CNN-generated images are surprisingly easy to spot... for now", CVPR 2020 (CNNDetection): a plain
  binary CNN classifier, trained with blur/JPEG augmentation, generalises across generator families; its
  probabilities are miscalibrated, hence the ``temperature`` buffer (Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017) that ``predict_proba`` divides the logit by.
- Frank et al., "Leveraging Frequency Analysis for Deep Fake Image Recognition", ICML 2020, and Durall et al.,
  "Watch your Up-Convolution", CVPR 2020: the upsampling layers of generators leave periodic peaks in the spectrum
  (at multiples of 1/4 and 1/2 cycles per pixel for 2x up-convolutions), visible in a log-magnitude FFT or DCT.
- Tan et al., "Rethinking the Up-Sampling Operations in CNN-based Generative Network for Generalizable Deepfake
  Detection", CVPR 2024 (NPR): the pixel branch generalises better to unseen generators when it sees the residual of
  each 2x2 cell against its top-left pixel instead of the image (the local correlation upsampling leaves).
- McCloskey & Albright, "Detecting GAN-Generated Imagery Using Saturation Cues", ICIP 2019: real pictures clip at 0
  and 255 far more often than generated ones.

Architecture (``forward(img [N, C, H, W] in [-1, 1]) -> logit [N]``, positive = generated); ``branches`` picks any of:
- ``pixel``: a stride-1 3x3 convolution (no early downsampling, so high-frequency traces survive), then ``depth``
  stride-2 convolutions with group norm and LeakyReLU, then global average and max pooling -> ``2 * width_last``.
  Its input (``pixel_input``) is the NPR residual (default), the image, or both stacked.
- ``spectrum``: the per-image-mean-removed luminance (or each channel), its log-magnitude FFT (centred with
  fftshift) or orthonormal DCT-II, pooled (average and max) onto a fixed ``spectrum_size`` x ``spectrum_size`` grid
  of *normalised* frequency, standardised by the ``spec_mean``/``spec_std`` buffers (per-frequency statistics of the
  training set, as in Frank et al.), then one hidden fully connected layer -> ``hidden``.
- ``saturation``: per channel, the log share of clipped pixels (0 and 255) and a 16-bin intensity histogram, then
  one hidden fully connected layer -> ``hidden``.
- head: concatenation -> linear -> one score.
- processing head (``processing``, e.g. ``"jpeg+resize"``; :class:`ProcessingHead`): one logit per processing step
  (:class:`ProcessingStep`) saying whether the image was re-compressed / resized / blurred after it was made, learned
  from the augmentation's own record of what it did (resize and blur by a probe on the detached features; JPEG from
  the DCT quantisation lattice, ``ganforge.models.jpeg_trace``, by a logistic model that
  ``ganforge.detection.processing`` fits before training). The decision threshold depends on it:
  ``proc_thresholds`` holds one threshold per combination of steps (a cell), placed by
  ``ganforge.detection.thresholds``, and ``forward`` subtracts the expected threshold under the predicted cell
  probabilities. Why: processing moves the scores of *real* images towards "generated" (JPEG and downscaling remove
  the fine structure reals have and generators lack), so one global threshold either flags processed reals or misses
  clean fakes of an unseen generator, whose scores fall between clean and processed reals (BENCHMARKS.md, run D
  against runs E-H). Detectors saved without a processing head (``processing=""``, one global threshold in the
  head's bias) are refused at load with that reason (:meth:`Detector.saved_config`).

Input size: all branches accept any ``H, W >= spectrum_size`` (the pixel branch is fully convolutional; the spectrum
is pooled over normalised frequency, so a peak at 1/4 cycles/pixel lands in the same bin at any size). ``crop`` is
the patch size the data pipeline (``ganforge.detection.data``) feeds: random ``crop`` x ``crop`` patches in
training; at test up to 16 ``crop`` x ``crop`` tiles at native resolution (after an upscale of the short side to
``crop`` when the image is smaller), whose logits the pipeline averages. Channels: the network takes exactly
``channels`` (1 or 3); the pipeline converts other inputs explicitly (grey replicated to RGB, RGB to ITU-R 601
luminance, alpha composited on black).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.base import Network, register_network
from ganforge.models.jpeg_trace import jpeg_lattice_fit


class ProcessingStep(str, Enum):
    """The image processing the training augmentation applies (``ganforge.detection.data.Augment``) and the processing
    head recognises: the one list of their names. A member equals, hashes and prints as its name (``"jpeg"``), so
    configs, reports and the augmentation's record use plain strings."""

    BLUR = "blur"
    JPEG = "jpeg"
    RESIZE = "resize"

    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__


PROCESSING_STEPS = tuple(s.value for s in ProcessingStep)
SPECTRA = ("fft", "dct")
BRANCHES = ("pixel", "spectrum", "saturation")
BRANCH_ALIASES = {"both": ("pixel", "spectrum")}  # the name older saved detectors use
PIXEL_INPUTS = ("image", "npr", "image+npr")
DEFAULT_PROCESSING = "jpeg+resize"
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, the same weights as ganforge.data.transforms.convert_channels
_LOG_EPS = 1e-4  # below the uint8 quantisation noise floor (~2e-3 per orthonormal frequency bin)


def dct_matrix(n: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``[n, n]``: ``D @ x`` transforms a length-``n`` signal (``D @ D.T = I``)."""
    k = torch.arange(n, device=device, dtype=dtype).unsqueeze(1)  # [n, 1] frequency
    i = torch.arange(n, device=device, dtype=dtype).unsqueeze(0)  # [1, n] position
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] = d[0] / math.sqrt(2.0)
    return d


def log_spectrum(x: torch.Tensor, kind: str = "fft") -> torch.Tensor:
    """Log-magnitude spectrum of each channel: ``[N, C, H, W] -> [N, C, H, W]``.

    The per-image, per-channel mean is removed first (the DC term only says how bright the image is). ``fft``: the
    orthonormal 2-D DFT, shifted so zero frequency sits at ``(H // 2, W // 2)``; ``dct``: the orthonormal 2-D DCT-II,
    zero frequency at ``(0, 0)``.
    """
    if kind not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {kind!r}")
    x = x - x.mean(dim=(2, 3), keepdim=True)
    if kind == "fft":
        mag = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho").abs(), dim=(-2, -1))
    else:
        dh = dct_matrix(x.shape[-2], x.device, x.dtype)  # [H, H]
        dw = dct_matrix(x.shape[-1], x.device, x.dtype)  # [W, W]
        mag = (dh @ x @ dw.T).abs()
    return torch.log(mag + _LOG_EPS)


SAT_BINS = 16
_SAT_EPS = 1e-3


def parse_branches(branches: str) -> tuple[str, ...]:
    """``"pixel+spectrum"`` -> ``("pixel", "spectrum")``; ``"both"`` is pixel + spectrum. Unknown names are errors."""
    names = BRANCH_ALIASES.get(branches) or tuple(b.strip() for b in branches.split("+"))
    bad = [b for b in names if b not in BRANCHES]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(f"branches must be distinct names from {BRANCHES} joined by '+' (or 'both'), got {branches!r}")
    return names


def saturation_features(img: torch.Tensor) -> torch.Tensor:
    """Clipping statistics and a coarse intensity histogram of each channel: ``[N, C, H, W] -> [N, C * (2 + 16)]``.

    McCloskey & Albright, "Detecting GAN-Generated Imagery Using Saturation Cues" (ICIP 2019): cameras and scanners
    clip, so real pictures hold many pixels at exactly 0 or 255, while a generator's smooth output (tanh or a
    normalised linear layer) rarely lands on the extremes after quantisation. Per channel: log of the fraction of
    pixels within half a uint8 step of -1 and of +1 (images in [-1, 1]), then the fractions in 16 equal bins.
    """
    x = img.flatten(2).float()  # [N, C, HW]
    half_step = 1.0 / 255.0  # half of one uint8 step (2 / 255) in [-1, 1]
    low = (x <= -1.0 + half_step).float().mean(dim=2)  # [N, C]
    high = (x >= 1.0 - half_step).float().mean(dim=2)
    bins = ((x.clamp(-1.0, 1.0) + 1.0) * (SAT_BINS / 2.0)).long().clamp_max(SAT_BINS - 1)  # [N, C, HW]
    hist = F.one_hot(bins, SAT_BINS).float().mean(dim=2)  # [N, C, SAT_BINS]
    clip = torch.stack([low, high], dim=2).add(_SAT_EPS).log()  # [N, C, 2]
    return torch.cat([clip, hist], dim=2).flatten(1).to(img.dtype)


REMOVED_PROCESSING = ("one global threshold in the head's bias, removed: processing-aware thresholds replaced it "
                      "(BENCHMARKS.md, run D against runs E-H)")


def parse_processing(processing: str) -> tuple[ProcessingStep, ...]:
    """``"jpeg+resize"`` -> ``(JPEG, RESIZE)``; unknown, repeated or no names are errors."""
    if processing == "":
        raise ValueError(f"processing '' ({REMOVED_PROCESSING}); name the steps, e.g. {DEFAULT_PROCESSING!r}")
    names = tuple(p.strip() for p in processing.split("+"))
    bad = [p for p in names if p not in PROCESSING_STEPS]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"processing must be distinct names from {PROCESSING_STEPS} joined by '+', "
                         f"got {processing!r}")
    return tuple(ProcessingStep(p) for p in names)


def cell_index(applied: tuple[bool, ...] | list[bool]) -> int:
    """The cell of a combination of processing steps: bit ``j`` set when step ``j`` was applied."""
    return sum(1 << j for j, a in enumerate(applied) if a)


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel relationships (Tan et al. 2024): ``x`` minus its 2x nearest down-then-up copy.

    ``[N, C, H, W] -> [N, C, H, W]``: inside each 2x2 cell, every pixel minus the cell's top-left one. Generator
    upsampling makes the pixels of a cell correlated in a way real cameras and scanners do not; the residual
    isolates that local structure from the content. Odd sizes: the last row/column compares with its own cell.
    """
    h, w = x.shape[-2:]
    anchor = x[..., ::2, ::2].repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    return x - anchor


def _check_args(channels: int, crop: int, width: int, depth: int, spectrum: str, spectrum_size: int,
                spectrum_channels: str, hidden: int, pixel_input: str) -> None:
    if channels not in (1, 3):
        raise ValueError(f"detector channels must be 1 or 3, got {channels}")
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
    if spectrum_channels not in ("gray", "each"):
        raise ValueError(f"spectrum_channels must be 'gray' or 'each', got {spectrum_channels!r}")
    if depth < 1 or width < 1 or hidden < 1:
        raise ValueError(f"depth, width and hidden must be >= 1, got {depth}, {width}, {hidden}")
    if not 2 <= spectrum_size <= crop:
        raise ValueError(f"spectrum_size must be in [2, crop={crop}], got {spectrum_size}")
    if pixel_input not in PIXEL_INPUTS:
        raise ValueError(f"pixel_input must be one of {PIXEL_INPUTS}, got {pixel_input!r}")


def _pixel_branch(in_ch: int, width: int, depth: int) -> tuple[nn.Sequential, int]:
    """A stride-1 3x3 convolution then ``depth`` stride-2 stages; returns it and its pooled feature width."""
    widths = [min(width * 2**i, 8 * width) for i in range(depth + 1)]
    layers: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 3, 1, 1), nn.LeakyReLU(0.2)]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Conv2d(a, b, 3, 2, 1), nn.GroupNorm(_groups(b), b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers), 2 * widths[-1]


@register_network("detector")
class Detector(Network):
    """Real-vs-generated image classifier; see the module docstring for the design and the papers.

    Args:
        channels: input channels, 1 or 3 (other inputs are converted by the data pipeline, never here).
        crop: the training/test patch size the pipeline uses (the network itself accepts any size >= spectrum_size).
        width: channels of the first convolution; doubled at each stride-2 stage up to ``8 * width``.
        depth: number of stride-2 stages in the pixel branch.
        spectrum: ``"fft"`` or ``"dct"``.
        spectrum_size: side of the pooled frequency grid.
        spectrum_channels: ``"gray"`` (luminance only) or ``"each"`` (one spectrum per input channel).
        hidden: width of the spectrum branch's hidden layer.
        branches: the branches joined by ``+`` (``"pixel+spectrum+saturation"``; ``"both"`` = pixel + spectrum, the
            older default); fewer for ablations.
        pixel_input: what the pixel branch sees: ``"npr"``, ``"image"`` or ``"image+npr"``.
        processing: the processing steps (:class:`ProcessingStep` names) joined by ``+`` whose presence sets the
            threshold (one per combination).
    """

    # Arguments older saved detectors lack: they fed the image itself to the pixel branch and had no processing head
    # (the latter is refused by saved_config).
    legacy_defaults = {"pixel_input": "image", "processing": ""}

    @classmethod
    def saved_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """As ``Network.saved_config``; a detector saved without a processing head is refused, naming the mode."""
        out = super().saved_config(config)
        if out.get("processing") == "":
            raise ValueError(f"this detector was saved with processing '' ({REMOVED_PROCESSING})")
        return out

    def __init__(
        self,
        channels: int = 3,
        crop: int = 64,
        width: int = 16,
        depth: int = 3,
        spectrum: str = "fft",
        spectrum_size: int = 16,
        spectrum_channels: str = "gray",
        hidden: int = 64,
        branches: str = "pixel+spectrum+saturation",
        pixel_input: str = "npr",
        processing: str = DEFAULT_PROCESSING,
    ) -> None:
        super().__init__()
        _check_args(channels, crop, width, depth, spectrum, spectrum_size, spectrum_channels, hidden, pixel_input)
        used = parse_branches(branches)
        self.proc_steps = parse_processing(processing)
        self.channels, self.crop, self.branches, self.pixel_input = channels, crop, branches, pixel_input
        self.spectrum, self.spectrum_size = spectrum, spectrum_size
        self.spec_c = 1 if spectrum_channels == "gray" or channels == 1 else channels
        self.gray = spectrum_channels == "gray" and channels == 3
        feat = 0
        self.pixel = self.spec_head = self.sat_head = None
        if "pixel" in used:
            self.pixel, w = _pixel_branch(channels * (2 if pixel_input == "image+npr" else 1), width, depth)
            feat += w
        spec_shape = (2 * self.spec_c, spectrum_size, spectrum_size)  # average- and max-pooled spectra
        self.register_buffer("spec_mean", torch.zeros(spec_shape))
        self.register_buffer("spec_std", torch.ones(spec_shape))
        if "spectrum" in used:
            self.spec_head = nn.Sequential(nn.Linear(math.prod(spec_shape), hidden), nn.LeakyReLU(0.2))
            feat += hidden
        if "saturation" in used:
            self.sat_head = nn.Sequential(nn.Linear(channels * (2 + SAT_BINS), hidden), nn.LeakyReLU(0.2))
            feat += hidden
        self.head = nn.Linear(feat, 1)
        k = len(self.proc_steps)
        self.proc_head = ProcessingHead(feat, self.proc_steps)
        self.register_buffer("proc_thresholds", torch.zeros(2**k))  # [cells], see cell_index
        bits = [[(c >> j) & 1 for j in range(k)] for c in range(2**k)]
        self.register_buffer("_cell_bits", torch.tensor(bits, dtype=torch.bool), persistent=False)  # [cells, k]
        # Temperature scaling (Guo et al. 2017): predict_proba = sigmoid(logit / T); fitted after training.
        self.register_buffer("temperature", torch.ones(()))

    def check_input(self, img: torch.Tensor) -> None:
        if img.ndim != 4 or img.shape[1] != self.channels:
            raise ValueError(
                f"detector expects images [N, {self.channels}, H, W], got shape {list(img.shape)}; convert channels "
                "explicitly (ganforge.detection.data.to_channels)"
            )
        if min(img.shape[-2:]) < self.spectrum_size:
            raise ValueError(
                f"image {img.shape[-1]}x{img.shape[-2]} is smaller than the spectrum grid ({self.spectrum_size}); "
                f"use the data pipeline's regions (crop {self.crop}) to bring it to size"
            )

    def spectrum_features(self, img: torch.Tensor) -> torch.Tensor:
        """Pooled log spectra before standardisation: ``[N, C, H, W] -> [N, 2 * spec_c, S, S]``."""
        x = img
        if self.gray:
            w = torch.tensor(_LUMA, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
            x = (img * w).sum(dim=1, keepdim=True)  # [N, 1, H, W]
        spec = log_spectrum(x, self.spectrum)  # [N, spec_c, H, W]
        s = self.spectrum_size
        return torch.cat([F.adaptive_avg_pool2d(spec, s), F.adaptive_max_pool2d(spec, s)], dim=1)

    def set_spectrum_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Install per-frequency standardisation statistics (from ``spectrum_features`` of training images)."""
        shape = tuple(self.spec_mean.shape)
        if tuple(mean.shape) != shape or tuple(std.shape) != shape:
            raise ValueError(f"spectrum stats must have shape {list(shape)}, got {list(mean.shape)}, {list(std.shape)}")
        if not bool((std > 0).all()):
            raise ValueError("spectrum std must be > 0 everywhere")
        self.spec_mean.copy_(mean)
        self.spec_std.copy_(std)

    def set_temperature(self, t: float) -> None:
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a positive finite number, got {t}")
        self.temperature.fill_(t)

    def pixel_view(self, img: torch.Tensor) -> torch.Tensor:
        """What the pixel branch sees: the image, its NPR residual, or both stacked on channels."""
        if self.pixel_input == "image":
            return img
        r = npr_residual(img)
        return r if self.pixel_input == "npr" else torch.cat([img, r], dim=1)

    def set_processing_thresholds(self, thresholds: torch.Tensor) -> None:
        """Install one decision threshold (a score) per processing cell, ``[2 ** len(proc_steps)]``."""
        if tuple(thresholds.shape) != tuple(self.proc_thresholds.shape) or not bool(torch.isfinite(thresholds).all()):
            raise ValueError(f"processing thresholds must be {len(self.proc_thresholds)} finite numbers, got "
                             f"shape {list(thresholds.shape)}")
        self.proc_thresholds.copy_(thresholds)

    def cell_probs(self, proc_logits: torch.Tensor) -> torch.Tensor:
        """Probability of each processing cell ``[N, cells]`` from per-step logits ``[N, k]`` (steps independent)."""
        p = torch.sigmoid(proc_logits).unsqueeze(1)  # [N, 1, k]
        return torch.where(self._cell_bits, p, 1 - p).prod(dim=2)  # [N, cells]

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The concatenated branch features ``[N, feat]`` the score and the processing probe read."""
        self.check_input(img)
        feats = []
        if self.pixel is not None:
            h = self.pixel(self.pixel_view(img))  # [N, w, H', W']
            feats += [h.mean(dim=(2, 3)), h.amax(dim=(2, 3))]
        if self.spec_head is not None:
            spec = (self.spectrum_features(img) - self.spec_mean) / self.spec_std  # [N, 2*spec_c, S, S]
            feats.append(self.spec_head(spec.flatten(1)))
        if self.sat_head is not None:
            feats.append(self.sat_head(saturation_features(img)))
        return torch.cat(feats, dim=1)

    def forward_parts(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The score before any processing-dependent threshold ``[N]`` and the logit of every processing step
        ``[N, len(proc_steps)]``; placing thresholds uses both, ``forward`` combines them."""
        f = self.features(img)  # [N, feat]
        return self.head(f).squeeze(1), self.proc_head(f, img)

    def training_parts(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The score ``[N]`` and the logits of the steps trained with the detector ``[N, len(proc_head.learned)]``
        (``ProcessingHead.probe``): what the training loss needs, without the costly JPEG lattice."""
        f = self.features(img)  # [N, feat]
        return self.head(f).squeeze(1), self.proc_head.probe(f)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Logit ``[N]``, positive = generated: the score minus the threshold expected for the image's processing."""
        score, proc = self.forward_parts(img)
        return score - self.cell_probs(proc) @ self.proc_thresholds

    @torch.no_grad()
    def predict_proba(self, img: torch.Tensor) -> torch.Tensor:
        """Calibrated probability that each image is generated: ``sigmoid(logit / temperature)``, ``[N]``."""
        return torch.sigmoid(self.forward(img) / self.temperature)


class ProcessingHead(nn.Module):
    """Per-step logits ``[N, k]`` saying which processing steps an image went through, in ``steps`` order.

    Resizing and blurring (``learned``) are read from the detector's features by a linear probe (trained with the
    detector on detached features: as a shared objective it cost the detection ranking on re-compressed, downscaled
    images, AUC 1.000 -> 0.958 for a seen family in the digits benchmark). JPEG is read from the DCT lattice
    (``ganforge.models.jpeg_trace``) alone, because in the detector's features smoothness stands in for
    re-compression and clean images of a smooth generator would get the thresholds of re-compressed reals. The
    lattice shows only at the image's own size: the JPEG logit says "compressed at this size", and a re-compression
    followed by resizing is invisible to it. Its logistic model (``jpeg``, two numbers in) is not trained by the
    detector's optimiser: ``ganforge.detection.processing.fit_jpeg_recogniser`` solves it before training and
    installs it with :meth:`set_jpeg_model`.
    """

    def __init__(self, feat: int, steps: tuple[ProcessingStep, ...]) -> None:
        super().__init__()
        self.steps = steps
        self.learned = [s for s in steps if s != ProcessingStep.JPEG]
        self.seen = nn.Linear(feat, len(self.learned)) if self.learned else None
        self.jpeg = nn.Linear(2, 1) if ProcessingStep.JPEG in steps else None
        for p in self.jpeg_parameters():
            p.requires_grad_(False)  # fitted outside the network, not by the detector's optimiser

    def jpeg_parameters(self) -> list[nn.Parameter]:
        return [*self.jpeg.parameters()] if self.jpeg is not None else []

    @staticmethod
    def lattice_summary(img: torch.Tensor) -> torch.Tensor:
        """``[N, 2]``: the best lattice fit over qualities and its depth below the average fit. Together they say
        "on some lattice" whichever quality it was (a logistic model on them recognises about 95 % of re-compressed
        digits; on the whole curve, linearly, nothing better than chance)."""
        fit = jpeg_lattice_fit(img)  # [N, Q]
        best = fit.amin(dim=1)
        return torch.stack([best, fit.mean(dim=1) - best], dim=1)

    @torch.no_grad()
    def set_jpeg_model(self, weight: torch.Tensor, bias: float) -> None:
        """Install the JPEG logit's logistic model on ``lattice_summary``: ``weight [2]`` and ``bias``."""
        if self.jpeg is None:
            raise ValueError("this processing head does not recognise JPEG")
        if tuple(weight.shape) != (2,) or not bool(torch.isfinite(weight).all()) or not math.isfinite(bias):
            raise ValueError(f"the JPEG model needs 2 finite weights and a finite bias, got {weight.tolist()}, {bias}")
        self.jpeg.weight.copy_(weight.view(1, 2))
        self.jpeg.bias.fill_(float(bias))

    def probe(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, len(learned)]`` of the steps read from the (detached) features."""
        if self.seen is None:
            return feats.new_zeros(len(feats), 0)
        return self.seen(feats.detach())  # a probe: it must not reshape the features

    def forward(self, feats: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, len(steps)]`` from the features ``[N, feat]`` and the image ``[N, C, H, W]``."""
        learned = self.probe(feats)
        out = {s: learned[:, j] for j, s in enumerate(self.learned)}
        if self.jpeg is not None:
            out[ProcessingStep.JPEG] = self.jpeg(self.lattice_summary(img)).squeeze(1)  # [N], JPEG at its own size
        return torch.stack([out[s] for s in self.steps], dim=1)


def _groups(c: int) -> int:
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1
