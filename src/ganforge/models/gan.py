"""The classic multilayer-perceptron GAN of Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.

G maps noise z to a sample through fully connected layers; D maps a sample to one logit. The original D used maxout
units and dropout; we keep dropout and use LeakyReLU (maxout is a drop-in option that changes nothing essential).
Samples are shaped as images ``[N, C, H, W]`` so 2-D toy points are ``[N, 2, 1, 1]`` and digits ``[N, 1, 28, 28]``.

Two mode-coverage options of D (off by default): ``pack = m`` (PacGAN, Lin et al., NeurIPS 2018) makes D judge m
samples at once, concatenated, so its input is m times wider and it returns one logit per pack; ``mbstd_group``
(ProGAN, Karras et al., ICLR 2018, sec. 3) appends the standard deviation of the last hidden features over groups of
that many samples, so D can see a batch without variety. One option of G (off by default): ``latent_categories``, a
discrete part of the latent, so separated modes need not be joined by a sheet of samples between them.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.models.base import Network, check_conditioning, register_network
from ganforge.models.layers import MinibatchStddev


@register_network("gan-g")
class MLPGenerator(Network):
    """Fully connected generator: ``z [N, z_dim] (+ c [N, c_dim]) -> x [N, C, R, R]`` in [-1, 1] (tanh).

    Args:
        hidden, layers: width and number of hidden layers (LeakyReLU 0.2).
        out_activation: ``tanh`` for images in [-1, 1], ``linear`` for points anywhere (the toy sets).
        latent_categories: 0, or ``k >= 2``: ``z[:, 0]`` picks one of ``k`` learned embeddings of ``category_dim``
            values (:class:`CategoricalLatent`), for data whose modes lie apart (the ``points`` preset uses 1,024).
    """

    def __init__(
        self,
        z_dim: int = 64,
        c_dim: int = 0,
        resolution: int = 28,
        channels: int = 1,
        hidden: int = 512,
        layers: int = 3,
        out_activation: str = "tanh",
        latent_categories: int = 0,
        category_dim: int = 16,
    ) -> None:
        super().__init__()
        if out_activation not in ("tanh", "linear"):
            raise ValueError(f"out_activation must be 'tanh' or 'linear', got {out_activation!r}")
        if latent_categories < 0 or latent_categories == 1 or (latent_categories and z_dim < 2):
            raise ValueError(f"latent_categories must be 0 (off) or >= 2 with z_dim >= 2, got {latent_categories} "
                             f"with z_dim {z_dim}")
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, resolution, channels
        self.categories = CategoricalLatent(latent_categories, category_dim) if latent_categories else None
        in_dim = z_dim + c_dim + (category_dim - 1 if latent_categories else 0)
        dims = [in_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        blocks.append(nn.Linear(dims[-1], channels * resolution * resolution))
        if out_activation == "tanh":
            blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_conditioning(c, self.c_dim, z.shape[0])
        h = z if self.categories is None else self.categories(z)  # [N, z_dim] or [N, z_dim - 1 + category_dim]
        h = h if c is None else torch.cat([h, c], dim=1)
        return self.net(h).view(-1, self.channels, self.resolution, self.resolution)


class CategoricalLatent(nn.Module):
    """A discrete part of the latent read from a Gaussian one: ``z [N, Z] -> [N, E + Z - 1]``.

    ``z[:, 0]`` picks one of ``k`` equally likely learned embeddings (its normal CDF cut into ``k`` equal slices), which
    replace it; the other coordinates stay continuous. A continuous generator of a connected latent must put mass on
    the paths between separated modes (Khayatkhoei et al., "Disconnected Manifold Learning for GANs", NeurIPS 2018);
    with a discrete part it can send whole slices to different modes. The latent stays a standard Gaussian, so
    seeds, sampling and interpolation work unchanged (the category switches where ``z[:, 0]`` crosses a slice edge).
    """

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.k = k
        self.embed = nn.Embedding(k, dim)
        nn.init.normal_(self.embed.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5))  # [N] uniform in (0, 1)
        idx = (u * self.k).long().clamp_(0, self.k - 1)
        return torch.cat([self.embed(idx), z[:, 1:]], dim=1)


@register_network("gan-d")
class MLPDiscriminator(Network):
    """Fully connected discriminator: ``x [N, C, R, R] (+ c) -> logit [N / pack]``.

    Args:
        hidden, layers: width and number of hidden layers (LeakyReLU 0.2).
        dropout: dropout after each hidden layer (Goodfellow et al. 2014 used it in D).
        pack: samples judged together (PacGAN); ``N`` must be a multiple of it, consecutive samples form a pack.
        mbstd_group: group size of the minibatch standard deviation feature before the last hidden layer (0 = off).
    """

    def __init__(
        self,
        c_dim: int = 0,
        resolution: int = 28,
        channels: int = 1,
        hidden: int = 512,
        layers: int = 3,
        dropout: float = 0.0,
        pack: int = 1,
        mbstd_group: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_coverage_options(pack, mbstd_group)
        if mbstd_group and layers < 1:
            raise ValueError(f"mbstd_group needs at least one hidden layer, got layers={layers}")
        self.c_dim, self.resolution, self.channels, self.pack = c_dim, resolution, channels, pack
        dims = [(channels * resolution * resolution + c_dim) * pack] + [hidden] * layers
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if mbstd_group and i == len(dims) - 2:
                blocks.append(_FlatStddev(mbstd_group))
                a += 1
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
        return self.net(pack_rows(h, self.pack)).squeeze(1)  # [N / pack]


def check_coverage_options(pack: int, mbstd_group: int) -> None:
    """Loud checks of the two D options shared by the MLP and DCGAN discriminators."""
    if not isinstance(pack, int) or pack < 1:
        raise ValueError(f"pack must be an integer >= 1, got {pack!r}")
    if not isinstance(mbstd_group, int) or mbstd_group < 0 or mbstd_group == 1:
        raise ValueError(f"mbstd_group must be 0 (off) or an integer >= 2, got {mbstd_group!r}")


def pack_rows(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN packing: ``[N, F, ...] -> [N / pack, pack * F, ...]``, each group of ``pack`` consecutive samples
    concatenated along dim 1; ``N`` not a multiple of ``pack`` raises."""
    if pack == 1:
        return x
    if x.shape[0] % pack != 0:
        raise ValueError(f"a packed discriminator (pack={pack}) needs a batch that is a multiple of {pack}, "
                         f"got {x.shape[0]} samples")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


class _FlatStddev(nn.Module):
    """:class:`MinibatchStddev` for feature vectors: ``[N, F] -> [N, F + 1]``."""

    def __init__(self, group_size: int) -> None:
        super().__init__()
        self.stddev = MinibatchStddev(group_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.stddev(h[:, :, None, None]).flatten(1)
