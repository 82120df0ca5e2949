"""Name -> object registries that validate their keys.

Every pluggable piece (model families, losses, datasets, metrics, feature extractors) is registered under a short
name; CLI choices are the registry keys. A duplicate or malformed name is a programming error and raises at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


class Registry(Generic[T]):
    """A validated mapping from lowercase names to objects (classes or factories)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REG.register("dcgan")`."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} name {name!r} is malformed: expected lowercase letters, digits, '-' or '_'")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")

        def deco(obj: T) -> T:
            if name in self._items:  # checked again: two register() calls may both precede their decorations
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
