"""StyleGAN2: Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020).

The style-based generator: a mapping network turns z (and a class embedding, when conditional) into w; a learned
4x4 constant is refined by modulated convolutions whose styles come from per-layer copies of w, with per-pixel noise
inputs, and each resolution adds its ToRGB output to the upsampled image ("skip" generator, fig. 7b). The
discriminator is residual (fig. 7c) with minibatch standard deviation, and conditional through a projection of the
label embedding (Miyato & Koyama 2018). All layers use the equalized learning rate. Pure PyTorch, no custom ops.

Layer building blocks live in ``stylegan_layers.py``; the training loss (non-saturating logistic, lazy R1, path-length
regularisation, style mixing, ADA) in ``ganforge.losses.stylegan``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network
from ganforge.models.layers import EqualizedConv2d
from ganforge.models.stylegan_layers import (
    NOISE_MODES,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MappingNetwork,
    SynthesisBlock,
    lrelu,
)


def _log2_resolution(resolution: int) -> int:
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"StyleGAN resolution must be a power of two >= 8 (8, 16, 32, ...), got {resolution!r} "
                         "(training: pass --resolution to resize the data, e.g. --resolution 32 for 28x28 digits)")
    return int(math.log2(resolution))


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at one resolution: ``min(channel_base // resolution, channel_max)`` (at least 1)."""
    return max(1, min(channel_base // resolution, channel_max))


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


def mix_styles(ws_dst: torch.Tensor, ws_src: torch.Tensor, layers: Iterable[int]) -> torch.Tensor:
    """Style mixing: a copy of ``ws_dst [N, L, w_dim]`` whose ``layers`` come from ``ws_src [N, L, w_dim]``.

    Used by mixing regularisation (StyleGAN sec. 3.1: ``layers = range(cutoff, L)``) and by ``ganforge mix``
    (coarse / middle / fine layer groups). Out-of-range layer indices raise ``ValueError``.
    """
    if ws_dst.shape != ws_src.shape or ws_dst.ndim != 3:
        raise ValueError(f"ws to mix must both be [N, L, w_dim], got {list(ws_dst.shape)} and {list(ws_src.shape)}")
    num_ws = ws_dst.shape[1]
    layers = sorted(set(layers))
    if any(not 0 <= i < num_ws for i in layers):
        raise ValueError(f"style layers must be in [0, {num_ws}), got {layers}")
    mask = torch.zeros(num_ws, dtype=torch.bool, device=ws_dst.device)
    mask[layers] = True
    return torch.where(mask[None, :, None], ws_src, ws_dst)


def style_layer_groups(num_ws: int) -> dict[str, list[int]]:
    """Named groups of style layers for mixing: ``coarse``, ``middle`` and ``fine``.

    Style layer ``i`` is attributed to resolution ``2 ** (2 + i // 2)`` (two per resolution, the convention of the
    original StyleGAN), which gives the paper's groups from R = 64 up (StyleGAN sec. 3.1, fig. 3): coarse 4-8
    (layers 0-3), middle 16-32 (4-7), fine 64 and above. Smaller models have no 64x64 layers, so there fine is the
    top resolution, middle the one below it (if above 4) and coarse the rest.
    """
    top = 2 ** ((num_ws + 2) // 2)

    def res(i: int) -> int:
        return 2 ** (2 + i // 2)

    if top >= 64:
        fine_from, middle_from = 64, 16
    else:
        fine_from, middle_from = top, top // 2 if top // 2 > 4 else top
    return {
        "coarse": [i for i in range(num_ws) if res(i) < middle_from],
        "middle": [i for i in range(num_ws) if middle_from <= res(i) < fine_from],
        "fine": [i for i in range(num_ws) if res(i) >= fine_from],
    }


@register_network("stylegan-g")
class StyleGenerator(Network):
    """Style-based generator: ``z [N, z_dim] (+ c [N, c_dim]) -> img [N, channels, R, R]``.

    :meth:`synthesis` is linear (no tanh), as in the paper, and is what the training loss, projection and PPL use;
    :meth:`forward`, the model contract's entry point for sampling and metrics, clamps it to [-1, 1].

    Args:
        z_dim, c_dim, resolution, channels: the model contract (R a power of two >= 8).
        w_dim: size of the intermediate latent w.
        mapping_layers: depth of the mapping MLP (8 in the paper).
        mapping_lr_mul: learning-rate multiplier of the mapping network (0.01 in the paper).
        channel_base, channel_max: feature maps at resolution r are ``min(channel_base // r, channel_max)``.
        w_avg_beta: decay of the tracked ``w_avg`` (truncation centre).
    """

    supports_truncation = True

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        resolution: int = 32,
        channels: int = 3,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        channel_base: int = 16384,
        channel_max: int = 512,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        log2r = _log2_resolution(resolution)
        _check_positive(z_dim=z_dim, w_dim=w_dim, channels=channels, channel_base=channel_base, channel_max=channel_max)
        if c_dim < 0:
            raise ValueError(f"c_dim must be >= 0, got {c_dim}")
        self.z_dim, self.c_dim, self.resolution, self.channels, self.w_dim = z_dim, c_dim, resolution, channels, w_dim
        blocks = []
        in_ch = 0
        for k in range(2, log2r + 1):
            out_ch = channels_at(2**k, channel_base, channel_max)
            blocks.append(SynthesisBlock(in_ch, out_ch, w_dim, 2**k, channels))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1  # = 2 log2(R) - 2
        self.mapping_net = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers, lr_mul=mapping_lr_mul, w_avg_beta=w_avg_beta
        )

    @property
    def w_avg(self) -> torch.Tensor:
        """Running mean of w ``[w_dim]`` (the truncation centre), updated by the training loss."""
        return self.mapping_net.w_avg

    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """``z [N, z_dim]`` (+ ``c``) -> ``ws [N, num_ws, w_dim]``; ``truncation_psi < 1`` pulls the first
        ``truncation_cutoff`` (default all) ws towards ``w_avg``; ``update_w_avg`` updates the running mean."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        c = check_conditioning(c, self.c_dim, z.shape[0])
        return self.mapping_net(z, c, truncation_psi, truncation_cutoff, update_w_avg)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` -> ``img [N, channels, R, R]``; ``noise_mode`` random | const | none."""
        _check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        _check_noise_mode(noise_mode)
        img = self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode)
        return img.clamp(-1.0, 1.0)  # [N, C, R, R]


@register_network("stylegan-d")
class StyleDiscriminator(Network):
    """Residual discriminator: ``img [N, channels, R, R]`` (+ ``c``) -> logit ``[N]``.

    Conditional models map the label through a small mapping network to ``cmap [N, cmap_dim]`` and output the
    projection ``<features, cmap> / sqrt(cmap_dim)`` (Miyato & Koyama 2018, as in StyleGAN2-ADA).

    Args:
        c_dim, resolution, channels: the model contract.
        channel_base, channel_max: as in the generator.
        mbstd_group, mbstd_channels: minibatch-stddev group size and statistics channels (4 and 1 in the paper).
        cmap_dim: size of the label projection (default: the 4x4 feature maps); ignored when unconditional.
        c_mapping_layers: depth of the label mapping network.
    """

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 32,
        channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        cmap_dim: int | None = None,
        c_mapping_layers: int = 8,
    ) -> None:
        super().__init__()
        log2r = _log2_resolution(resolution)
        _check_positive(channels=channels, channel_base=channel_base, channel_max=channel_max, mbstd_group=mbstd_group)
        if c_dim < 0 or mbstd_channels < 0:
            raise ValueError(f"c_dim and mbstd_channels must be >= 0, got {c_dim} and {mbstd_channels}")
        self.c_dim, self.resolution, self.channels = c_dim, resolution, channels
        top = channels_at(resolution, channel_base, channel_max)
        self.from_rgb = EqualizedConv2d(channels, top, 1)
        blocks = []
        for k in range(log2r, 2, -1):
            blocks.append(
                DiscriminatorBlock(channels_at(2**k, channel_base, channel_max), channels_at(2 ** (k - 1), channel_base,
                                                                                              channel_max))
            )
        self.blocks = nn.ModuleList(blocks)
        c4 = channels_at(4, channel_base, channel_max)
        if mbstd_channels > 0 and c4 % mbstd_channels:
            raise ValueError(f"mbstd_channels={mbstd_channels} must divide the 4x4 feature maps ({c4})")
        self.cmap_dim = (cmap_dim or c4) if c_dim > 0 else 0
        self.c_mapping = (
            MappingNetwork(0, c_dim, self.cmap_dim, None, num_layers=c_mapping_layers, w_avg_beta=None)
            if c_dim > 0
            else None
        )
        self.epilogue = DiscriminatorEpilogue(c4, self.cmap_dim or 1, mbstd_group, mbstd_channels)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(
                f"images must be [N, {self.channels}, {self.resolution}, {self.resolution}], got {list(img.shape)}"
            )
        c = check_conditioning(c, self.c_dim, img.shape[0])
        x = lrelu(self.from_rgb(img))  # [N, top, R, R]
        for block in self.blocks:
            x = block(x)  # halves the resolution
        out = self.epilogue(x)  # [N, cmap_dim or 1]
        if self.c_mapping is None:
            return out[:, 0]  # [N]
        cmap = self.c_mapping(None, c)  # [N, cmap_dim]
        return (out * cmap.to(out.dtype)).sum(dim=1) / math.sqrt(self.cmap_dim)  # [N]
