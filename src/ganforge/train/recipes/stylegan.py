"""Training recipe of StyleGAN2 with ADA (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"; Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data").

Networks: ``ganforge.models.stylegan`` (resolution a power of two >= 8). Loss: ``stylegan2`` in
``ganforge.losses.stylegan`` (logistic loss, lazy R1, path-length regularisation, style mixing, and ADA through
``ganforge.augment``; options via ``--loss-kwargs``, e.g. ``{"augment": "ada"}``). Optimiser and EMA: the
StyleGAN2-ADA "auto" configuration. Data, schedule and preview: the defaults.
"""

from __future__ import annotations

from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator
from ganforge.train.recipes.base import Recipe, register_recipe

RECIPE = register_recipe(
    Recipe(
        name="stylegan",
        description="Karras et al. 2020 StyleGAN2 with ADA (resolution a power of two >= 8)",
        loss="stylegan2",
        generator=StyleGenerator,
        discriminator=StyleDiscriminator,
        # StyleGAN2-ADA's "auto" configuration: Adam(0.0025, betas 0, 0.99), G EMA with a 10 kimg half-life at
        # batch 32 ramped up over the first 5% of training.
        defaults={"z_dim": 512, "batch": 32, "lr_g": 0.0025, "lr_d": 0.0025, "betas": (0.0, 0.99),
                  "ema_kimg": 10.0, "ema_rampup": 0.05},
    )
)
