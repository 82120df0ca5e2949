"""Loss objects, registered by name; each knows which phases it runs (see ``base.py``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.losses.base import Batch, Loss, Phase
from ganforge.losses.classic import AdversarialLoss
from ganforge.registry import Registry

__all__ = ["LOSSES", "Batch", "Loss", "Phase", "build_loss", "register_loss"]

# Factory signature: (networks: dict[str, nn.Module], **kwargs) -> Loss
LOSSES: Registry[Callable[..., Loss]] = Registry("loss")


def register_loss(name: str):
    return LOSSES.register(name)


def _classic(kind: str) -> Callable[..., Loss]:
    def build(networks: dict[str, nn.Module], **kwargs) -> Loss:
        return AdversarialLoss(networks["G"], networks["D"], kind=kind, **kwargs)

    build.__doc__ = AdversarialLoss.__doc__
    return build


for _kind in ("minimax", "non-saturating", "hinge", "wgan-gp"):
    register_loss(_kind)(_classic(_kind))


def build_loss(name: str, networks: dict[str, nn.Module], **kwargs) -> Loss:
    """Build the registered loss ``name`` over ``networks``; unknown kwargs raise ``TypeError`` naming them."""
    _import_family_losses()
    try:
        return LOSSES.get(name)(networks, **kwargs)
    except TypeError as e:
        raise ValueError(f"bad options for loss {name!r}: {e}") from None


def loss_names() -> list[str]:
    _import_family_losses()
    return LOSSES.names()


def _import_family_losses() -> None:
    """Family-specific losses register themselves on import (explicit imports, no dotted strings)."""
    from ganforge.losses import (
        stylegan,  # noqa: F401
        unit,  # noqa: F401
    )
