"""Augmentation pipelines for the discriminator's inputs, shared by losses and training recipes.

One module per method; this package re-exports what losses and recipes use:

- ``ada.py``: ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"): the
  differentiable :class:`AugmentPipe`, its operation presets and the :class:`AdaController` that adapts ``p``.
- ``diffaugment.py``: DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): colour, translation and cutout, the same on real and fake, with a strength ``p``.

A new method is one new module here plus its names below. This package imports only torch: it
sits beside ``models/`` in the layering, so ``losses/`` and ``train/recipes/`` may both import it.
"""

from __future__ import annotations

from ganforge.augment.ada import AUGMENT_MODES, OPS, PRESETS, AdaController, AugmentPipe, parse_ops
from ganforge.augment.diffaugment import AUGMENT_CHOICES as DIFFAUGMENT_CHOICES
from ganforge.augment.diffaugment import DEFAULT_POLICY as DIFFAUGMENT_POLICY
from ganforge.augment.diffaugment import DiffAugment, make_diffaugment

__all__ = [
    "AUGMENT_MODES",
    "DIFFAUGMENT_CHOICES",
    "DIFFAUGMENT_POLICY",
    "OPS",
    "PRESETS",
    "AdaController",
    "AugmentPipe",
    "DiffAugment",
    "make_diffaugment",
    "parse_ops",
]
