"""Training recipe of the classic GAN (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014).

Networks: ``ganforge.models.gan`` (MLP G and D, any resolution; 2-D toy points as ``[N, 2, 1, 1]``). Loss: the
non-saturating G loss of sec. 3 (``--loss minimax`` gives the paper's value function, ``--d-steps k`` its k).
Data, schedule and preview: the defaults (one dataset plus noise, no schedule, samples on fixed noise).
"""

from __future__ import annotations

from ganforge.models.gan import MLPDiscriminator, MLPGenerator
from ganforge.train.recipes.base import Recipe, register_recipe

RECIPE = register_recipe(
    Recipe(
        name="gan",
        description="Goodfellow et al. 2014 MLP GAN (any resolution; also 2-D toy data as [N, 2, 1, 1])",
        loss="non-saturating",
        generator=MLPGenerator,
        discriminator=MLPDiscriminator,
    )
)
