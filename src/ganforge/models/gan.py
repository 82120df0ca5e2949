"""The classic multilayer-perceptron GAN of Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.

G maps noise z to a sample through fully connected layers; D maps a sample to one logit. The original D used maxout
units and dropout; we keep dropout and use LeakyReLU (maxout is a drop-in option that changes nothing essential).
Samples are shaped as images ``[N, C, H, W]`` so 2-D toy points are ``[N, 2, 1, 1]`` and digits ``[N, 1, 28, 28]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network


@register_network("gan-g")
class MLPGenerator(Network):
    """Fully connected generator: ``z [N, z_dim] (+ c [N, c_dim]) -> x [N, C, R, R]`` in [-1, 1] (tanh)."""

    def __init__(
        self,
        z_dim: int = 64,
        c_dim: int = 0,
        resolution: int = 28,
        channels: int = 1,
        hidden: int = 512,
        layers: int = 3,
        out_activation: str = "tanh",
    ) -> None:
        super().__init__()
        if out_activation not in ("tanh", "linear"):
            raise ValueError(f"out_activation must be 'tanh' or 'linear', got {out_activation!r}")
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, resolution, channels
        dims = [z_dim + c_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        blocks.append(nn.Linear(dims[-1], channels * resolution * resolution))
        if out_activation == "tanh":
            blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, z.shape[0])
        h = z if c is None else torch.cat([z, c], dim=1)  # [N, z_dim + c_dim]
        return self.net(h).view(-1, self.channels, self.resolution, self.resolution)


@register_network("gan-d")
class MLPDiscriminator(Network):
    """Fully connected discriminator: ``x [N, C, R, R] (+ c) -> logit [N]``."""

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 28,
        channels: int = 1,
        hidden: int = 512,
        layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.c_dim, self.resolution, self.channels = c_dim, resolution, channels
        dims = [channels * resolution * resolution + c_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
        blocks.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, img.shape[0])
        h = img.flatten(1)  # [N, C*R*R]
        if c is not None:
            h = torch.cat([h, c], dim=1)
        return self.net(h).squeeze(1)  # [N]
