"""Training recipe of the FastGAN-style lightweight family (Liu et al. 2021, "Towards Faster and Stabilized GAN
Training for High-fidelity Few-shot Image Synthesis"), narrowed for a 2-core CPU.

Networks: ``ganforge.models.fastgan`` (skip-layer excitation in G; D with self-supervised decoders; resolutions 32,
64 and 128). Loss: ``fastgan`` in ``ganforge.losses.fastgan`` (hinge, as in the paper, plus D's L1 reconstruction
term, with DiffAugment colour + translation + cutout on every image D sees; options via ``--loss-kwargs``, e.g.
``{"recon_weight": 0.5}``). Optimiser: Adam(2e-4, betas 0.5, 0.999) as in the paper's code. G EMA and x-flip on.
Data, schedule and preview: the defaults.
"""

from __future__ import annotations

from ganforge.models.fastgan import FastGANDiscriminator, FastGANGenerator
from ganforge.train.recipes.base import Recipe, register_recipe

RECIPE = register_recipe(
    Recipe(
        name="fastgan",
        description="Liu et al. 2021 FastGAN-style lightweight GAN with DiffAugment (resolution 32, 64 or 128)",
        loss="fastgan",
        generator=FastGANGenerator,
        discriminator=FastGANDiscriminator,
        # The paper's Adam(2e-4, 0.5, 0.999); batch 32 as the other CPU recipes; a 2 kimg EMA half-life suits runs of
        # tens of kimg (the paper's per-step decay 0.999 at batch 8 is ~5.5 kimg, meant for much longer runs).
        defaults={"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "batch": 32, "ema_kimg": 2.0, "xflip": True},
    )
)
