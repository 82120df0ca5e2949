"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016.

All-convolutional G (fractionally strided convolutions, batch norm, ReLU, tanh output) and D (strided convolutions,
batch norm except at the input, LeakyReLU 0.2). The starting spatial size ``s`` is the resolution halved until it is
at most 7, so 28 (MNIST, s=7), 32/64/128 (s=4) and 48 (s=6) all work. Conditional variants concatenate the one-hot
class to z in G and use a projection term (Miyato & Koyama 2018) in D.

D takes the two mode-coverage options of :mod:`ganforge.models.gan`: ``pack`` (PacGAN: ``pack`` images stacked along
the channels, so the first convolution sees ``pack * channels``) and ``mbstd_group`` (ProGAN's minibatch standard
deviation as one extra feature map before the output layer).

Both take ``blocks``: that many extra 3x3, stride-1 convolutions at every resolution but the image's own (G: after
the projection and after each intermediate upsampling; D: after each strided convolution but the last), and
``top_blocks``: 3x3 layers at the image's own resolution (G: its last upsampling makes features, not colours, and
``top_blocks`` 3x3 convolutions end in the image; D: ``top_blocks`` 3x3 convolutions read the image before its first
strided one), so depth can grow without changing the resolutions. 0 and 0 are the paper's network. Why: the 28 px
network is two layers each way, and on Stacked MNIST its samples are limited by how it draws digits, not by mode
coverage; ``blocks`` 1 lowered the KL there at 400 kimg from 0.107-0.120 to 0.076-0.077 on held-out seeds, and D
with ``blocks`` 2 (the recipe's default now) to 0.054-0.060 (BENCHMARKS.md, Stacked MNIST; KL to the data's label
histogram, 0.047-0.054 against the uniform population the metric now uses).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network
from ganforge.models.gan import check_coverage_options, pack_rows
from ganforge.models.layers import MinibatchStddev


def start_size(resolution: int) -> tuple[int, int]:
    """Return ``(s, n)`` with ``resolution == s * 2**n``, ``3 <= s <= 7``; ``ValueError`` if impossible."""
    s, n = resolution, 0
    while s > 7 and s % 2 == 0:
        s //= 2
        n += 1
    if not 3 <= s <= 7 or n < 1:
        raise ValueError(
            f"DCGAN resolution {resolution} is not s * 2**n with 3 <= s <= 7 and n >= 1 (e.g. 28, 32, 48, 64, 128)"
        )
    return s, n


@register_network("dcgan-g")
class DCGANGenerator(Network):
    """``z [N, z_dim] (+ c [N, c_dim]) -> img [N, channels, R, R]`` in [-1, 1].

    Channel widths: ``width * 2**(n-1)`` at the start size, halving at each doubling, capped at ``max_width``.
    ``blocks``: extra 3x3 convolution + batch norm + ReLU layers at each resolution below the image's;
    ``top_blocks``: 3x3 layers at the image's resolution, the last of them making the colours.
    """

    def __init__(
        self,
        z_dim: int = 100,
        c_dim: int = 0,
        resolution: int = 32,
        channels: int = 1,
        width: int = 64,
        max_width: int = 512,
        blocks: int = 0,
        top_blocks: int = 0,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, resolution, channels
        s, n = start_size(resolution)
        check_blocks(blocks=blocks, top_blocks=top_blocks)
        widths = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]  # widths[i] at size s * 2**i
        self.start, self.w0 = s, widths[0]
        self.fc = nn.Sequential(
            nn.Linear(z_dim + c_dim, widths[0] * s * s, bias=False), nn.BatchNorm1d(widths[0] * s * s), nn.ReLU(True)
        )
        ups: list[nn.Module] = _g_blocks(widths[0], blocks)
        for a, b in zip(widths[:-1], widths[1:]):
            ups += [*_g_up(a, b), *_g_blocks(b, blocks)]
        if top_blocks:  # the last upsampling makes features at the image's size; 3x3 layers turn them into colours
            top = top_width(widths[-1])
            ups += [*_g_up(widths[-1], top), *_g_blocks(top, top_blocks - 1)]
            ups += [nn.Conv2d(top, channels, 3, 1, 1), nn.Tanh()]
        else:
            ups += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.ups = nn.Sequential(*ups)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, z.shape[0])
        h = z if c is None else torch.cat([z, c], dim=1)  # [N, z_dim + c_dim]
        h = self.fc(h).view(-1, self.w0, self.start, self.start)  # [N, w0, s, s]
        return self.ups(h)  # [N, C, R, R]


@register_network("dcgan-d")
class DCGANDiscriminator(Network):
    """``img [N, channels, R, R] (+ c) -> logit [N / pack]``; mirror image of the generator.

    ``pack``: images judged together (PacGAN; ``N`` a multiple of it). ``mbstd_group``: minibatch standard deviation
    group size (0 = off). ``blocks``: extra 3x3 convolutions (with D's norm and LeakyReLU) after each strided
    convolution but the last; ``top_blocks``: 3x3 convolutions on the image before the first strided one.
    """

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 32,
        channels: int = 1,
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        dropout: float = 0.0,
        pack: int = 1,
        mbstd_group: int = 0,
        blocks: int = 0,
        top_blocks: int = 0,
    ) -> None:
        super().__init__()
        check_coverage_options(pack, mbstd_group)
        check_blocks(blocks=blocks, top_blocks=top_blocks)
        if norm not in ("batch", "none", "spectral"):
            raise ValueError(f"norm must be 'batch', 'none' or 'spectral', got {norm!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.c_dim, self.resolution, self.channels, self.pack = c_dim, resolution, channels, pack
        s, n = start_size(resolution)
        widths = [min(width * 2**i, max_width) for i in range(n)]  # after each stride-2 conv
        sn = _norm_wrapper(norm)
        layers = _d_layers(channels * pack, widths, blocks, top_blocks, norm, dropout)
        if mbstd_group:  # one extra [s, s] feature map for the final layer (ProGAN puts it before its last block)
            layers.append(MinibatchStddev(mbstd_group, 1))
        self.body = nn.Sequential(*layers)
        feat = (widths[-1] + (1 if mbstd_group else 0)) * s * s
        _dcgan_init(self)
        self.out = sn(nn.Linear(feat, 1))
        self.embed = sn(nn.Linear(c_dim * pack, feat, bias=False)) if c_dim > 0 else None

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, img.shape[0])
        h = self.body(pack_rows(img, self.pack)).flatten(1)  # [N / pack, feat]
        logit = self.out(h).squeeze(1)  # [N / pack]
        if self.embed is not None and c is not None:
            logit = logit + (self.embed(pack_rows(c, self.pack)) * h).sum(dim=1)  # projection discriminator term
        return logit


def check_blocks(**counts: int) -> None:
    """``ValueError`` unless each count of extra 3x3 layers (``blocks``, ``top_blocks``) is an int >= 0."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def top_width(width: int) -> int:
    """Channels of the layers at the image's own size: half the next ones, at least 8."""
    return max(width // 2, 8)


def _norm_wrapper(norm: str) -> Callable[[nn.Module], nn.Module]:
    """What wraps each of D's weight layers: spectral normalisation for ``norm="spectral"``, else nothing."""
    return nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)


def _d_layers(
    channels: int, widths: list[int], blocks: int, top_blocks: int, norm: str, dropout: float
) -> list[nn.Module]:
    """D's convolutions from the image to its last strided layer: ``top_blocks`` 3x3 layers at the image's size, then
    a strided 4x4 layer per width with ``blocks`` 3x3 layers before each but the first (no norm on the layers that
    read the image, as in the paper)."""
    sn = _norm_wrapper(norm)
    drop = [nn.Dropout(dropout)] if dropout > 0 else []

    def conv(a: int, b: int, k: int, stride: int, normed: bool = True) -> list[nn.Module]:
        # 4x4 stride 2 halves the size, 3x3 stride 1 keeps it (padding 1 for both)
        bn = [nn.BatchNorm2d(b)] if normed and norm == "batch" else []
        return [sn(nn.Conv2d(a, b, k, stride, 1, bias=not bn)), *bn, nn.LeakyReLU(0.2, True), *drop]

    layers: list[nn.Module] = []
    first = channels
    if top_blocks:
        top = top_width(widths[0])
        layers += conv(first, top, 3, 1, normed=False)
        for _ in range(top_blocks - 1):
            layers += conv(top, top, 3, 1)
        first = top
    layers += conv(first, widths[0], 4, 2, normed=False)
    for a, b in zip(widths[:-1], widths[1:]):
        for _ in range(blocks):
            layers += conv(a, a, 3, 1)
        layers += conv(a, b, 4, 2)
    return layers


def _g_up(a: int, b: int) -> list[nn.Module]:
    """G's upsampling layer: 4x4 stride-2 transposed convolution ``a -> b`` channels, batch norm, ReLU."""
    return [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]


def _g_blocks(width: int, blocks: int) -> list[nn.Module]:
    """``blocks`` x (3x3 conv, batch norm, ReLU) at ``width`` channels, size kept."""
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
    return layers


def _dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02), batch-norm scales from N(1, 0.02), as in the DCGAN paper."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
