"""Networks, registered by the stable name a checkpoint's ``config.json`` stores (STYLE.md rule 2).

This package holds networks only: no losses, optimisers, data or training schedules (those are the training recipes
in ``train/recipes/``). It imports nothing from ``train/``, ``losses/``, ``data/`` or ``cli/``.
"""

from __future__ import annotations

from ganforge.models.base import NETWORKS, Network, register_network

__all__ = ["NETWORKS", "Network", "network_class", "network_names", "register_network"]


def network_class(name: str) -> type[Network]:
    """The network class a checkpoint names; unknown names raise ``ValueError`` listing the known ones."""
    _import_builtin_networks()
    return NETWORKS.get(name)


def network_names() -> list[str]:
    _import_builtin_networks()
    return NETWORKS.names()


def _import_builtin_networks() -> None:
    # Explicit imports (no dotted strings): each module registers its networks on import.
    from ganforge.models import (  # noqa: F401
        classifier,
        dcgan,
        detector,
        fastgan,
        feature_distance,
        gan,
        progan,
        stylegan,
        unit,
    )
