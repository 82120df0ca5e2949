"""Augmentation pipelines for the discriminator's inputs, shared by losses and training recipes.

One module per method; this package re-exports what losses and recipes use:

- ``ada.py``: ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"): the
  differentiable :class:`AugmentPipe`, its operation presets and the :class:`AdaController` that adapts ``p``.

A new method (e.g. DiffAugment) is one new module here plus its names below. This package imports only torch: it
sits beside ``models/`` in the layering, so ``losses/`` and ``train/recipes/`` may both import it.
"""

from __future__ import annotations

from ganforge.augment.ada import AUGMENT_MODES, OPS, PRESETS, AdaController, AugmentPipe, parse_ops

__all__ = ["AUGMENT_MODES", "OPS", "PRESETS", "AdaController", "AugmentPipe", "parse_ops"]
