"""Model families, registered by name. Swapping a family is changing one name (STYLE.md rule 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganforge.models.base import Network
from ganforge.registry import Registry


@dataclass(frozen=True)
class Family:
    """A GAN family: its generator and discriminator classes and training defaults.

    ``default_loss`` names an entry of ``ganforge.losses.LOSSES``; ``image_size_rule`` describes which resolutions the
    family accepts (shown in errors and ``ganforge train --help``).
    """

    name: str
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    default_loss: str
    description: str
    g_defaults: dict = field(default_factory=dict)
    d_defaults: dict = field(default_factory=dict)
    train_defaults: dict = field(default_factory=dict)
    # Optional training hooks for families that need more than "G, D, one image dataset, a loss"
    # (see ganforge.train.loop): each receives (cfg: TrainConfig, dataset: GanDataset, ...).
    build_networks: Callable[..., dict[str, nn.Module]] | None = None  # default: G, D from the classes above
    make_source: Callable[..., Any] | None = None  # default: ganforge.train.source.ImageSource
    make_schedule: Callable[..., Any] | None = None  # e.g. ProGAN's resolution/alpha growth
    # preview(trainer) -> images [N, C, H, W] in [-1, 1] for the progress grid (default: G_ema/G on fixed noise)
    preview: Callable[..., Any] | None = None


FAMILIES: Registry[Family] = Registry("model family")
NETWORKS: Registry[type[Network]] = Registry("network class")


def register_family(family: Family) -> Family:
    FAMILIES.register(family.name)(family)
    return family


def get_family(name: str) -> Family:
    _import_builtin_families()
    return FAMILIES.get(name)


def family_names() -> list[str]:
    _import_builtin_families()
    return FAMILIES.names()


def register_network(name: str):
    """Decorator registering a network class under a stable name stored in checkpoints (``config.json``)."""

    def deco(cls: type[Network]) -> type[Network]:
        NETWORKS.register(name)(cls)
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def network_class(name: str) -> type[Network]:
    """The network class a checkpoint names; unknown names raise ``ValueError`` listing the known ones."""
    _import_builtin_families()
    return NETWORKS.get(name)


def _import_builtin_families() -> None:
    # Explicit imports (no dotted strings): each module registers its family on import.
    from ganforge.models import (  # noqa: F401
        classifier,  # noqa: F401
        dcgan,
        detector,
        gan,
        progan,
        stylegan,
        unit,
    )
