"""Training recipes, one file per family: its loss, defaults, network builder, data source, schedule and preview.

``ganforge train --model NAME`` runs the recipe registered under NAME. To add a family: write its networks in
``ganforge/models/<name>.py``, then ``ganforge/train/recipes/<name>.py`` with one ``register_recipe(Recipe(...))``
(see ``base.py`` for the fields and hooks, ``dcgan.py`` for the simplest case, ``progan.py`` and ``unit.py`` for
a schedule, a custom source and a custom preview), and add the module to the import list below.
"""

from __future__ import annotations

# Explicit imports (no dotted strings): each module registers its recipe on import.
from ganforge.train.recipes import dcgan, fastgan, gan, progan, stylegan, unit  # noqa: F401
from ganforge.train.recipes.base import RECIPES, Recipe, register_recipe

__all__ = ["RECIPES", "Recipe", "get_recipe", "recipe_names", "register_recipe"]


def get_recipe(name: str) -> Recipe:
    """The recipe registered as ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    return RECIPES.get(name)


def recipe_names() -> list[str]:
    return RECIPES.names()
