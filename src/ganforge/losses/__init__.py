"""Loss objects, registered by name; each knows which phases it runs (see ``base.py``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

# Explicit imports (no dotted strings): the family-specific modules register their losses on import.
from ganforge.losses import fastgan, stylegan, unit  # noqa: F401
from ganforge.losses.base import LOSSES, Batch, Loss, Phase, register_loss
from ganforge.losses.classic import KINDS, AdversarialLoss

__all__ = ["LOSSES", "Batch", "Loss", "Phase", "build_loss", "loss_names", "register_loss"]


def _classic(kind: str) -> Callable[..., Loss]:
    def build(networks: dict[str, nn.Module], **kwargs) -> Loss:
        return AdversarialLoss(networks["G"], networks["D"], kind=kind, **kwargs)

    build.__doc__ = AdversarialLoss.__doc__
    return build


for _kind in KINDS:
    register_loss(_kind)(_classic(_kind))


def build_loss(name: str, networks: dict[str, nn.Module], **kwargs) -> Loss:
    """Build the registered loss ``name`` over ``networks``; unknown kwargs raise ``ValueError`` naming them."""
    try:
        return LOSSES.get(name)(networks, **kwargs)
    except TypeError as e:
        raise ValueError(f"bad options for loss {name!r}: {e}") from None


def loss_names() -> list[str]:
    return LOSSES.names()
