"""Training recipe of DCGAN (Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional GANs", ICLR 2016).

Networks: ``ganforge.models.dcgan`` (resolution ``s * 2**n`` with ``3 <= s <= 7``). Loss: non-saturating. Optimiser:
Adam(2e-4, betas 0.5, 0.999) as in the paper (sec. 4). Data, schedule and preview: the defaults.
"""

from __future__ import annotations

from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.train.recipes.base import Recipe, register_recipe

RECIPE = register_recipe(
    Recipe(
        name="dcgan",
        description="Radford et al. 2016 DCGAN (resolution s*2^n, 3<=s<=7: 28, 32, 64, 128, ...)",
        loss="non-saturating",
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        # Adam(2e-4, 0.5) as in the paper; batch 32 gives more steps per CPU-second (digits in ~2 minutes on 2 cores).
        defaults={"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "batch": 32, "ema_kimg": 1.0},
    )
)
