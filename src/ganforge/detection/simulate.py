"""Simulated generator artefacts: fakes made from real images without any GAN.

Zhang, Karaman & Chang, "Detecting and Simulating Artifacts in GAN Fake Images" (WIFS 2019, "AutoGAN"): the traces a
detector picks up come mostly from a generator's *upsampling* layers, and an auto-encoder whose decoder uses the same
kind of upsampling reproduces them on real images. A detector trained on such re-synthesised reals learns the
upsampler's signature rather than one generator's content, so it transfers to generators it never saw.

:class:`Resynthesizer` is a small auto-encoder: a stride-1 stem, ``levels`` stride-2 convolutions down, then
``levels`` x (2x upsampling of the chosen kind + 3x3 convolution + leaky ReLU) up and a linear 3x3 output, clamped
to [-1, 1] only when quantised (a tanh output, or plain ReLUs, let it settle on the all-black median of mostly black
images such as digits and never leave it). Upsamplers (the ones real generators use): ``transposed`` (4x4 stride-2
transposed convolution, DCGAN), ``nearest`` (nearest neighbour + conv, ProGAN), ``bilinear`` (+ conv, StyleGAN-like
smooth upsampling) and ``pixelshuffle`` (sub-pixel convolution). It is trained for a few hundred steps on random
crops of the real training images with an L1 loss, then applied to whole images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganforge.detection.data import ImageSet, random_crop, to_tensor

UPSAMPLERS = ("transposed", "nearest", "bilinear", "pixelshuffle")


def check_upsamplers(names: list[str] | tuple[str, ...]) -> None:
    """``ValueError`` naming any unknown upsampler (before any data is read or network trained)."""
    unknown = sorted(set(names) - set(UPSAMPLERS))
    if unknown:
        raise ValueError(f"unknown upsampler(s) {unknown}; expected some of {list(UPSAMPLERS)}")


class _Up(nn.Module):
    def __init__(self, kind: str, cin: int, cout: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "transposed":
            self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        elif kind == "pixelshuffle":
            self.conv = nn.Conv2d(cin, cout * 4, 3, 1, 1)
        else:
            self.conv = nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "transposed":
            return self.conv(x)
        if self.kind == "pixelshuffle":
            return F.pixel_shuffle(self.conv(x), 2)
        mode = "nearest" if self.kind == "nearest" else "bilinear"
        return self.conv(F.interpolate(x, scale_factor=2, mode=mode, **({} if mode == "nearest" else
                                                                          {"align_corners": False})))


class Resynthesizer(nn.Module):
    """``img [N, C, H, W]`` in [-1, 1] -> reconstruction of the same shape (H, W multiples of ``2**levels``)."""

    def __init__(self, channels: int, upsampler: str, width: int = 32, levels: int = 2) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.channels, self.upsampler, self.levels = channels, upsampler, levels
        down: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        for _ in range(levels):
            down += [nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        up: list[nn.Module] = []
        for _ in range(levels):
            up += [_Up(upsampler, width, width), nn.LeakyReLU(0.2)]
        up.append(nn.Conv2d(width, channels, 3, 1, 1))  # linear: a tanh here saturates at the black background
        self.encoder, self.decoder = nn.Sequential(*down), nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def train_resynthesizer(images: list[np.ndarray], upsampler: str, crop: int = 32, steps: int = 300,
                        batch: int = 32, lr: float = 2e-3, seed: int = 0, progress: bool = False) -> Resynthesizer:
    """Fit a :class:`Resynthesizer` to uint8 ``[H, W, C]`` images (one channel count) by L1 on random crops."""
    if not images:
        raise ValueError("need real images to train a resynthesizer")
    channels = {im.shape[2] for im in images}
    if len(channels) != 1:
        raise ValueError(f"resynthesizer images must share one channel count, got {sorted(channels)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Resynthesizer(channels.pop(), upsampler)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in tqdm(range(steps), desc=f"resynthesizer ({upsampler})", unit="step", disable=not progress):
        x = to_tensor([random_crop(images[i], crop, rng) for i in rng.integers(len(images), size=batch)])
        loss = (net(x) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def resynthesize(net: Resynthesizer, images: list[np.ndarray], batch: int = 256) -> list[np.ndarray]:
    """Re-synthesised uint8 images, each the size of its input (edges reflect-padded to a multiple of
    ``2**levels`` and cropped back); images of one size go through the network together."""
    m = 2**net.levels
    out: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        by_shape.setdefault(im.shape, []).append(i)
    for (h, w, _), idx in by_shape.items():
        for start in range(0, len(idx), batch):
            part = idx[start : start + batch]
            x = to_tensor([images[i] for i in part])  # [B, C, h, w]
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect")
            y = ((net(x)[..., :h, :w] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            for i, img in zip(part, y.permute(0, 2, 3, 1).numpy(), strict=True):
                out[i] = img
    return out  # type: ignore[return-value]


def simulated_fakes(real: ImageSet, upsamplers: list[str] | tuple[str, ...], n: int | None = None, crop: int = 32,
                    steps: int | tuple[int, ...] = 300, seed: int = 0, progress: bool = False) -> list[ImageSet]:
    """One fake set per upsampler: ``n`` real images (all by default) re-synthesised by an auto-encoder trained on
    ``real`` with that upsampler.

    ``steps`` may name several training lengths: each upsampler then gets one auto-encoder per length, and the
    ``n`` images are split evenly between them. A few hundred steps land at very different reconstruction errors
    from run to run (how strongly the upsampler's trace shows), and a spread of lengths makes the set cover weak and
    strong traces instead of one random draw (BENCHMARKS.md, detector run N).
    """
    check_upsamplers(upsamplers)
    lengths = (steps,) if isinstance(steps, int) else tuple(steps)
    if not lengths or any(s < 1 for s in lengths):
        raise ValueError(f"steps must be one or more numbers >= 1, got {steps}")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(real))[: n or len(real)]
    chosen = [real.images[i] for i in idx]
    parts = np.array_split(np.arange(len(chosen)), len(lengths))
    sets = []
    for k, kind in enumerate(upsamplers):
        images: list[np.ndarray] = []
        for m, (length, part) in enumerate(zip(lengths, parts, strict=True)):
            net = train_resynthesizer(real.images, kind, crop, length, seed=seed + k + 1000 * m, progress=progress)
            images += resynthesize(net, [chosen[i] for i in part])
        sets.append(ImageSet(f"simulated-{kind}", images, [f"sim-{kind}:{real.names[i]}" for i in idx],
                             simulated=True))
    return sets
