"""A detector of GAN-generated images: a small pixel CNN plus frequency features, returning one logit per image.

Anchors:
- Wang et al., "CNN-generated images are surprisingly easy to spot... for now", CVPR 2020 (CNNDetection): a plain
  binary CNN classifier, trained with blur/JPEG augmentation, generalises across generator families; its
  probabilities are miscalibrated, hence the ``temperature`` buffer (Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017) that ``predict_proba`` divides the logit by.
- Frank et al., "Leveraging Frequency Analysis for Deep Fake Image Recognition", ICML 2020, and Durall et al.,
  "Watch your Up-Convolution", CVPR 2020: the upsampling layers of generators leave periodic peaks in the spectrum
  (at multiples of 1/4 and 1/2 cycles per pixel for 2x up-convolutions), visible in a log-magnitude FFT or DCT.

Architecture (``forward(img [N, C, H, W] in [-1, 1]) -> logit [N]``, positive = generated):
- pixel branch: a stride-1 3x3 convolution (no early downsampling, so high-frequency traces survive), then ``depth``
  stride-2 convolutions with group norm and LeakyReLU, then global average and max pooling -> ``2 * width_last``.
- spectrum branch: the per-image-mean-removed luminance (or each channel), its log-magnitude FFT (centred with
  fftshift) or orthonormal DCT-II, pooled (average and max) onto a fixed ``spectrum_size`` x ``spectrum_size`` grid
  of *normalised* frequency, standardised by the ``spec_mean``/``spec_std`` buffers (per-frequency statistics of the
  training set, as in Frank et al.), then one hidden fully connected layer -> ``hidden``.
- head: concatenation -> linear -> one logit.

Input size: both branches accept any ``H, W >= spectrum_size`` (the pixel branch is fully convolutional; the spectrum
is pooled over normalised frequency, so a peak at 1/4 cycles/pixel lands in the same bin at any size). ``crop`` is
the patch size the data pipeline (``ganforge.detection.data``) feeds: random ``crop`` x ``crop`` patches in
training; at test a centre crop, or an upscale of the short side to ``crop`` when the image is smaller (or a resize of
the whole image by option). Channels: the network takes exactly ``channels`` (1 or 3); the pipeline converts other
inputs explicitly (grey replicated to RGB, RGB to ITU-R 601 luminance, alpha composited on black).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models import register_network
from ganforge.models.base import Network

SPECTRA = ("fft", "dct")
BRANCHES = ("both", "pixel", "spectrum")
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
        branches: ``"both"``, or ``"pixel"`` / ``"spectrum"`` alone (for ablations).
    """

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
        branches: str = "both",
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"detector channels must be 1 or 3, got {channels}")
        if spectrum not in SPECTRA:
            raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
        if spectrum_channels not in ("gray", "each"):
            raise ValueError(f"spectrum_channels must be 'gray' or 'each', got {spectrum_channels!r}")
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {BRANCHES}, got {branches!r}")
        if depth < 1 or width < 1 or hidden < 1:
            raise ValueError(f"depth, width and hidden must be >= 1, got {depth}, {width}, {hidden}")
        if not 2 <= spectrum_size <= crop:
            raise ValueError(f"spectrum_size must be in [2, crop={crop}], got {spectrum_size}")
        self.channels, self.crop, self.branches = channels, crop, branches
        self.spectrum, self.spectrum_size = spectrum, spectrum_size
        self.spec_c = 1 if spectrum_channels == "gray" or channels == 1 else channels
        self.gray = spectrum_channels == "gray" and channels == 3
        feat = 0
        if branches in ("both", "pixel"):
            widths = [min(width * 2**i, 8 * width) for i in range(depth + 1)]
            layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1), nn.LeakyReLU(0.2)]
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Conv2d(a, b, 3, 2, 1), nn.GroupNorm(_groups(b), b), nn.LeakyReLU(0.2)]
            self.pixel = nn.Sequential(*layers)
            feat += 2 * widths[-1]
        else:
            self.pixel = None
        spec_shape = (2 * self.spec_c, spectrum_size, spectrum_size)  # average- and max-pooled spectra
        self.register_buffer("spec_mean", torch.zeros(spec_shape))
        self.register_buffer("spec_std", torch.ones(spec_shape))
        if branches in ("both", "spectrum"):
            self.spec_head = nn.Sequential(nn.Linear(math.prod(spec_shape), hidden), nn.LeakyReLU(0.2))
            feat += hidden
        else:
            self.spec_head = None
        self.head = nn.Linear(feat, 1)
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
                f"use the data pipeline's test view (crop {self.crop}) to bring it to size"
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

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        self.check_input(img)
        feats = []
        if self.pixel is not None:
            h = self.pixel(img)  # [N, w, H', W']
            feats += [h.mean(dim=(2, 3)), h.amax(dim=(2, 3))]
        if self.spec_head is not None:
            spec = (self.spectrum_features(img) - self.spec_mean) / self.spec_std  # [N, 2*spec_c, S, S]
            feats.append(self.spec_head(spec.flatten(1)))
        return self.head(torch.cat(feats, dim=1)).squeeze(1)  # [N]

    @torch.no_grad()
    def predict_proba(self, img: torch.Tensor) -> torch.Tensor:
        """Calibrated probability that each image is generated: ``sigmoid(logit / temperature)``, ``[N]``."""
        return torch.sigmoid(self.forward(img) / self.temperature)


def _groups(c: int) -> int:
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1
