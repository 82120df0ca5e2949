"""The one contract every model family follows, config capture for rebuilding networks from JSON, and the registry
of network classes by the name checkpoints store.

Contract (STYLE.md rule 2):
- ``Generator(z_dim, c_dim, resolution, channels, **family_kwargs)``; ``forward(z [N, z_dim], c [N, c_dim] | None)``
  returns images ``[N, channels, resolution, resolution]`` in [-1, 1].
- ``Discriminator(c_dim, resolution, channels, **family_kwargs)``; ``forward(img [N, C, H, W], c | None)`` returns
  logits ``[N]``.

Networks know nothing about training (no optimizer, loss or device placement inside).
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

import torch
from torch import nn

from ganforge.registry import Registry


class Network(nn.Module):
    """Base class that records its constructor arguments as a JSON-able ``config``.

    Subclasses only write a normal ``__init__``; the arguments actually passed (with defaults filled in) are captured
    so ``type(net)(**net.config)`` rebuilds the same architecture. Unknown arguments raise ``TypeError`` as in plain
    Python, and values that are not JSON-serialisable are rejected at construction, not at save time.
    """

    config: dict[str, Any]
    # Arguments added after checkpoints were already saved, with the value that reproduces the older behaviour: a
    # saved config that lacks one is rebuilt with this value, not with today's default (see ``saved_config``).
    legacy_defaults: dict[str, Any] = {}

    @classmethod
    def saved_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments for a config read from a checkpoint: ``legacy_defaults`` fill what it lacks."""
        return {**cls.legacy_defaults, **config}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self: Network, *args: Any, **kw: Any) -> None:
            outermost = not getattr(self, "_capturing", False)
            if outermost:
                object.__setattr__(self, "_capturing", True)
            try:
                init(self, *args, **kw)
            finally:
                if outermost:
                    object.__setattr__(self, "_capturing", False)
            if outermost:
                bound = sig.bind(self, *args, **kw)
                bound.apply_defaults()
                cfg = {k: v for k, v in bound.arguments.items() if k != "self"}
                var_kw = [p.name for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD]
                for name in var_kw:
                    cfg.update(cfg.pop(name))
                try:
                    json.dumps(cfg)
                except TypeError as e:
                    raise TypeError(f"{cls.__name__} arguments must be JSON-serialisable: {e}") from None
                object.__setattr__(self, "config", cfg)

        cls.__init__ = wrapped  # type: ignore[method-assign]

    def compile_parts(self) -> list[nn.Module]:
        """The modules ``--compile`` compiles in place: the network itself (``torch.compile`` compiles ``forward``).
        A network whose training calls other methods than ``forward`` names the sub-modules they run instead."""
        return [self]


def check_conditioning(c: torch.Tensor | None, c_dim: int, n: int) -> torch.Tensor | None:
    """Validate a class-conditioning tensor against the network's ``c_dim``: ``[N, c_dim]`` or None."""
    if c_dim == 0:
        return None
    if c is None:
        raise ValueError(f"this network is conditional (c_dim={c_dim}) and needs c of shape [N, {c_dim}]")
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] != c_dim:
        raise ValueError(f"c must have shape [{n}, {c_dim}], got {list(c.shape)}")
    return c


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


NETWORKS: Registry[type[Network]] = Registry("network class")


def register_network(name: str):
    """Decorator registering a network class under a stable name stored in checkpoints (``config.json``)."""

    def deco(cls: type[Network]) -> type[Network]:
        NETWORKS.register(name)(cls)
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco
