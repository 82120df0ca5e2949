"""UNIT: Liu, Breuel & Kautz, "Unsupervised Image-to-Image Translation Networks", NeurIPS 2017.

Two VAE-GANs, one per image domain, tied by a *shared latent space*: an image ``x_a`` and its unseen counterpart
``x_b`` are assumed to map to the same code ``h``. The paper builds the assumption into the weights ("weight
sharing"): the last layers of the two encoders and the first layers of the two generators are one set of modules, so
``encoder('a')`` and ``encoder('b')`` end in literally the same ``nn.Module`` objects, and likewise the decoders begin
in them. Translation is ``x_ab = G_b(E_a(x_a))``.

- Encoder ``E_d``: 7x7 conv, ``n_downsample`` stride-2 4x4 convs (doubling the width), ``n_res`` residual blocks,
  then the shared residual blocks. Its output is the mean ``mu`` of a Gaussian with unit variance (the paper's
  ``q(z|x) = N(E(x), I)``), so the KL term is ``|mu|^2 / 2``; the authors' code uses ``mean(mu^2)``, as we do.
- Generator ``G_d``: the shared residual blocks, ``n_res`` residual blocks, ``n_downsample`` 4x4 transposed convs,
  7x7 conv and tanh: the mirror image of the encoder, as in the paper's network tables. ``upsample="nearest"``
  makes each 2x stage a nearest-neighbour upsampling and a 3x3 conv instead (:func:`upsampler`).
- Discriminator per domain: PatchGAN-style stride-2 4x4 convs ending in a 1x1 conv, at ``num_scales`` image scales
  (multi-scale as in the authors' ``MsImageDis``), each scale its own network.

The five networks are packaged as two registered ``Network`` classes so checkpoints work unchanged: ``unit-g``
(``enc_a``, ``enc_b``, ``shared``, ``dec_a``, ``dec_b``) and ``unit-d`` (``d_a``, ``d_b``). Domains may have
different channel counts (1 or 3); any size divisible by ``2**n_downsample`` works (fully convolutional).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.base import Network, register_network
from ganforge.models.gemm_conv import GemmConv2d

DOMAINS = ("a", "b")
DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}
NORMS = ("instance", "batch", "none")
INITS = ("kaiming", "gaussian")
UPSAMPLES = ("transposed", "nearest")


def check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


def check_direction(direction: str) -> tuple[str, str]:
    """``'a2b' -> ('a', 'b')``; anything else is a ``ValueError`` naming the choices."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
    return DIRECTIONS[direction]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels)  # no affine, no running stats: same in train and eval
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ResBlock(nn.Module):
    """``x + conv3(relu(norm(conv3(x))))`` with reflection padding: ``[N, C, H, W] -> [N, C, H, W]``."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _private_encoder(channels: int, width: int, n_downsample: int, n_res: int, norm: str) -> nn.Sequential:
    """Domain-specific front of an encoder: ``[N, C, H, W] -> [N, width * 2**n_down, H / 2**n_down, W / 2**n_down]``."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), _norm(norm, width),
                               nn.LeakyReLU(0.2, True)]
    ch = width
    for _ in range(n_downsample):
        layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), _norm(norm, ch * 2), nn.ReLU(True)]
        ch *= 2
    layers += [ResBlock(ch, norm) for _ in range(n_res)]
    return nn.Sequential(*layers)


def upsampler(kind: str, ch: int) -> list[nn.Module]:
    """One 2x upsampling stage ``[N, ch, h, w] -> [N, ch / 2, 2h, 2w]``.

    ``transposed``: a 4x4 stride-2 transposed conv (the paper's). ``nearest``: nearest-neighbour upsampling, then a
    3x3 conv (the "resize-convolution" of Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"). A transposed
    conv turns even a flat input into a period-2 pattern unless its kernel happens to be balanced; a resize-convolution
    turns a flat input into a flat output (away from the border), so a generator has no cheap stripes to draw.
    Measured on MNIST <-> USPS (BENCHMARKS.md, forty-sixth session) it did not prevent hidden-content failures, it
    changed their texture (stripes became blocky bands) and failed two seeds the transposed convs train well: not a
    default.
    """
    if kind == "transposed":
        return [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1)]
    if kind == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(ch, ch // 2, 3)]
    raise ValueError(f"upsample must be one of {UPSAMPLES}, got {kind!r}")


def _private_decoder(channels: int, width: int, n_downsample: int, n_res: int, norm: str,
                     upsample: str) -> nn.Sequential:
    """Domain-specific back of a generator: latent ``[N, L, h, w] -> [N, C, h * 2**n_down, w * 2**n_down]``."""
    ch = width * 2**n_downsample
    layers: list[nn.Module] = [ResBlock(ch, norm) for _ in range(n_res)]
    for _ in range(n_downsample):
        layers += [*upsampler(upsample, ch), _norm(norm, ch // 2), nn.LeakyReLU(0.2, True)]
        ch //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


@register_network("unit-g")
class UnitGenerator(Network):
    """Both encoders and both generators of UNIT, with the shared latent layers held once.

    Args:
        channels_a, channels_b: image channels of domain A and B (1 or 3 each).
        resolution: training resolution (recorded; inputs of any size divisible by ``2**n_downsample`` work).
        width: channels after the first conv; the latent has ``width * 2**n_downsample`` channels.
        n_downsample: stride-2 stages; the latent is ``H / 2**n_downsample`` by ``W / 2**n_downsample``.
        n_res: private residual blocks per encoder and per generator (3 in the paper).
        n_shared: shared residual blocks at the end of the encoders and, separately, at the start of the generators
            (1 in the paper); at least 1, or the latent space would not be shared.
        norm: ``instance`` (default, as in the authors' code), ``batch`` or ``none``.
        init: conv weight initialisation, ``kaiming`` (the authors' setting) or ``gaussian`` (N(0, 0.02)).
        upsample: the generators' 2x stages, ``transposed`` (the paper's 4x4 transposed convs) or ``nearest``
            (nearest-neighbour upsampling and a 3x3 conv; see :func:`upsampler`).
    """

    legacy_defaults = {"upsample": "transposed"}  # checkpoints saved before the option drew with transposed convs

    def __init__(
        self,
        channels_a: int = 3,
        channels_b: int = 3,
        resolution: int = 256,
        width: int = 64,
        n_downsample: int = 2,
        n_res: int = 3,
        n_shared: int = 1,
        norm: str = "instance",
        init: str = "kaiming",
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        for name, c in (("channels_a", channels_a), ("channels_b", channels_b)):
            if c not in (1, 3):
                raise ValueError(f"{name} must be 1 or 3, got {c}")
        if n_downsample < 0 or n_res < 0 or width < 1:
            raise ValueError(f"need width >= 1, n_downsample >= 0, n_res >= 0; got {width}, {n_downsample}, {n_res}")
        if n_shared < 1:
            raise ValueError(f"n_shared must be >= 1 (the shared layers are what ties the domains), got {n_shared}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        self.multiple = 2**n_downsample
        # Reflection padding needs >= 4 px at the 7x7 conv and >= 2 at the latent's residual blocks.
        self.min_size = max(4, 2 * self.multiple)
        if resolution < self.min_size or resolution % self.multiple:
            raise ValueError(f"UNIT resolution {resolution} must be a multiple of 2**n_downsample = {self.multiple} "
                             f"and >= {self.min_size}")
        self.channels = {"a": channels_a, "b": channels_b}
        self.resolution = resolution
        self.per_sample = norm != "batch"  # every layer maps each sample on its own: batches may be concatenated
        self.latent_channels = width * self.multiple
        self.enc_a = _private_encoder(channels_a, width, n_downsample, n_res, norm)
        self.enc_b = _private_encoder(channels_b, width, n_downsample, n_res, norm)
        self.shared = nn.ModuleDict({
            "enc": nn.Sequential(*[ResBlock(self.latent_channels, norm) for _ in range(n_shared)]),
            "dec": nn.Sequential(*[ResBlock(self.latent_channels, norm) for _ in range(n_shared)]),
        })
        self.dec_a = _private_decoder(channels_a, width, n_downsample, n_res, norm, upsample)
        self.dec_b = _private_decoder(channels_b, width, n_downsample, n_res, norm, upsample)
        _init(self, init)

    # Branch views: built on demand so the shared modules are registered (and saved) only once.
    def encoder(self, domain: str) -> nn.Sequential:
        """Domain ``domain``'s full encoder ``E_d``; its last part is ``self.shared['enc']`` itself."""
        return nn.Sequential(self.enc_a if check_domain(domain) == "a" else self.enc_b, self.shared["enc"])

    def decoder(self, domain: str) -> nn.Sequential:
        """Domain ``domain``'s full generator ``G_d``; its first part is ``self.shared['dec']`` itself."""
        return nn.Sequential(self.shared["dec"], self.dec_a if check_domain(domain) == "a" else self.dec_b)

    def compile_parts(self) -> list[nn.Module]:
        """The UNIT loss calls the encoder and generator halves, not ``forward``: ``--compile`` compiles each part."""
        return [self.enc_a, self.enc_b, self.shared["enc"], self.shared["dec"], self.dec_a, self.dec_b]

    def check_input(self, x: torch.Tensor, domain: str) -> None:
        """Images of ``domain``: ``[N, C_domain, H, W]``, H and W multiples of ``2**n_downsample``, >= min_size."""
        c = self.channels[check_domain(domain)]
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"domain {domain.upper()} images must be [N, {c}, H, W], got shape {list(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple or min(h, w) < self.min_size:
            raise ValueError(f"image size {h}x{w} must be a multiple of {self.multiple} (2**n_downsample) and at least "
                             f"{self.min_size}x{self.min_size}; pad or resize it")

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """``x [N, C_d, H, W] -> mu [N, L, H/m, W/m]``: the mean of the latent Gaussian (unit variance)."""
        return self.encode_shared(self.encode_private(x, domain))

    def decode(self, h: torch.Tensor, domain: str) -> torch.Tensor:
        """``h [N, L, h, w] -> image [N, C_d, h*m, w*m]`` in [-1, 1] in domain ``domain``."""
        return self.decode_private(self.decode_shared(h), domain)

    # The two halves of each branch, so a training step can run the shared layers once on both domains' codes
    # (with instance norm or none every layer works per sample - ``per_sample`` - so concatenating along N changes
    # nothing; batch norm would mix the domains' statistics).
    def encode_private(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Domain ``domain``'s own encoder layers: ``[N, C_d, H, W] -> [N, L, H/m, W/m]``."""
        self.check_input(x, domain)
        return (self.enc_a if domain == "a" else self.enc_b)(x)

    def encode_shared(self, f: torch.Tensor) -> torch.Tensor:
        """The shared last encoder layers: ``[N, L, h, w] -> mu [N, L, h, w]`` (codes of either domain)."""
        self._check_latent(f)
        return self.shared["enc"](f)

    def decode_shared(self, h: torch.Tensor) -> torch.Tensor:
        """The shared first generator layers: latent ``[N, L, h, w] -> [N, L, h, w]`` (codes of either domain)."""
        self._check_latent(h)
        return self.shared["dec"](h)

    def decode_private(self, s: torch.Tensor, domain: str) -> torch.Tensor:
        """Domain ``domain``'s own generator layers: ``[N, L, h, w] -> image [N, C_d, h*m, w*m]`` in [-1, 1]."""
        self._check_latent(s)
        return (self.dec_a if check_domain(domain) == "a" else self.dec_b)(s)

    def _check_latent(self, h: torch.Tensor) -> None:
        if h.ndim != 4 or h.shape[1] != self.latent_channels:
            raise ValueError(f"latent codes must be [N, {self.latent_channels}, h, w], got shape {list(h.shape)}")

    def translate(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """Deterministic translation (the latent mean, no sampling noise): ``a2b`` is ``G_b(E_a(x))``."""
        src, dst = check_direction(direction)
        return self.decode(self.encode(x, src), dst)

    def forward(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        return self.translate(x, direction)


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convs and a 1x1 conv: ``[N, C, H, W] -> logits [N, 1, H/2**n, W/2**n]``."""

    def __init__(self, channels: int, width: int, n_layers: int, norm: str, max_width: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(n_layers - 1):
            nxt = min(ch * 2, max_width)
            # at 32 px the last of these has a 2x2 output map, where one GEMM beats oneDNN's convolution
            layers += [GemmConv2d(ch, nxt, 4, 2, 1), _norm(norm, nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MultiScaleDiscriminator(nn.Module):
    """One patch discriminator per scale; scale ``s`` sees the image average-pooled ``s`` times (3x3, stride 2)."""

    def __init__(self, channels: int, width: int, n_layers: int, num_scales: int, norm: str) -> None:
        super().__init__()
        self.scales = nn.ModuleList([PatchDiscriminator(channels, width, n_layers, norm) for _ in range(num_scales)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, d in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))  # [N, 1, h_s, w_s]
        return out


@register_network("unit-d")
class UnitDiscriminator(Network):
    """The two domain discriminators ``D_a`` and ``D_b`` (attributes ``d_a``, ``d_b``).

    ``forward(img, domain)`` returns a list of patch logits ``[N, 1, h_s, w_s]``, one per scale. The coarsest scale
    sees ``resolution / 2**(num_scales - 1)`` pixels and needs at least ``2**n_layers`` of them.
    (The authors' defaults at 256x256 are ``n_layers=4, num_scales=3``.)
    """

    def __init__(
        self,
        channels_a: int = 3,
        channels_b: int = 3,
        resolution: int = 256,
        width: int = 64,
        n_layers: int = 3,
        num_scales: int = 2,
        norm: str = "none",
    ) -> None:
        super().__init__()
        for name, c in (("channels_a", channels_a), ("channels_b", channels_b)):
            if c not in (1, 3):
                raise ValueError(f"{name} must be 1 or 3, got {c}")
        if n_layers < 1 or num_scales < 1 or width < 1:
            raise ValueError(f"need width, n_layers, num_scales >= 1; got {width}, {n_layers}, {num_scales}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        coarsest = resolution / 2 ** (num_scales - 1)
        if coarsest < 2**n_layers:
            raise ValueError(
                f"resolution {resolution} is too small for n_layers={n_layers}, num_scales={num_scales}: the coarsest "
                f"scale sees {coarsest:g} px and needs >= {2**n_layers}; lower n_layers or num_scales"
            )
        last = last_normalised_size(resolution, n_layers, num_scales)
        if norm == "instance" and last is not None and last < 2:
            raise ValueError(
                f"norm='instance' needs more than one pixel to normalise, but at resolution {resolution} the last "
                f"normalised layer of the coarsest scale is {last}x{last} (n_layers={n_layers}, "
                f"num_scales={num_scales}); lower n_layers or num_scales, or use norm='none'"
            )
        self.channels = {"a": channels_a, "b": channels_b}
        self.resolution = resolution
        self.per_sample = norm != "batch"  # as UnitGenerator.per_sample
        self.d_a = MultiScaleDiscriminator(channels_a, width, n_layers, num_scales, norm)
        self.d_b = MultiScaleDiscriminator(channels_b, width, n_layers, num_scales, norm)
        _init(self, "gaussian")

    def forward(self, img: torch.Tensor, domain: str) -> list[torch.Tensor]:
        c = self.channels[check_domain(domain)]
        if img.ndim != 4 or img.shape[1] != c:
            raise ValueError(f"domain {domain.upper()} images must be [N, {c}, H, W], got shape {list(img.shape)}")
        return (self.d_a if domain == "a" else self.d_b)(img)


def last_normalised_size(resolution: int, n_layers: int, num_scales: int) -> int | None:
    """Side of the last normalised feature map at the coarsest scale (``None``: no layer is normalised)."""
    if n_layers < 2:
        return None
    size = resolution
    for _ in range(num_scales - 1):
        size = (size - 1) // 2 + 1  # 3x3 average pool, stride 2, padding 1
    for _ in range(n_layers):
        size //= 2  # 4x4 conv, stride 2, padding 1
    return size


def _init(module: nn.Module, kind: str) -> None:
    """Kaiming-normal convs for the generators, N(0, 0.02) for the discriminators (the authors' 'kaiming' and
    'gaussian' initialisations); zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
