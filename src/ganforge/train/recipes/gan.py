"""Training recipe of the classic GAN (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014).

Networks: ``ganforge.models.gan`` (MLP G and D, any resolution; 2-D toy points as ``[N, 2, 1, 1]``). Loss: the
non-saturating G loss of sec. 3 (``--loss minimax`` gives the paper's value function, ``--d-steps k`` its k).
Data, schedule and preview: the defaults (one dataset plus noise, no schedule, samples on fixed noise).

Point sets (the built-in toy sets ``ring8``, ``grid25``, ``gauss1d``: resolution 1) train this family by default, with
one of two presets (``ganforge train --preset NAME``):

- ``points`` (the default for point sets): a linear output, a latent with a discrete part (``latent_categories``:
  a continuous G of a connected latent must leave mass on the paths between separated modes), R1 on reals (Mescheder
  et al. 2018), a G EMA, Adam (5e-4, betas 0.5, 0.9, ramped down over the second half) and batch 256; tuned on
  ring8 and grid25 seeds 0 and 1 to cover every mode with sharp samples within the CPU budget (BENCHMARKS.md, mode
  coverage).
- ``paper``: the same networks and number of steps with none of those fixes (a 16-d Gaussian latent, the
  non-saturating loss of the paper, minibatch 64, Adam at the library's 2e-4, no R1, no EMA, no packing): the classic
  run in which G gathers onto a few modes and hops between them, so a student can watch collapse happen.

Each of the fixes can be switched on alone on top of ``paper`` (``--r1-gamma``, ``--ema-kimg``, ``--pack``,
``--mbstd-group``, ``--lr-g``/``--lr-d``) to see what it does.
"""

from __future__ import annotations

from typing import Any

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

# What both point presets share: the networks (3 x 256 LeakyReLU, linear output: points are not in [-1, 1]) and
# outputs sized for points (a scatter of 1,000 samples; few grids and checkpoints, each costs steps).
_POINT_BASE: dict[str, Any] = {
    "z_dim": 16,
    "g_kwargs": {"hidden": 256, "layers": 3, "out_activation": "linear"},
    "d_kwargs": {"hidden": 256, "layers": 3},
    "loss": "non-saturating",
    "grid_size": 1000,
    "log_every": 100,
}

PRESETS: dict[str, dict[str, Any]] = {
    "points": _POINT_BASE | {
        # A mixed latent: one coordinate picks one of 1,024 learned embeddings (CategoricalLatent), two stay
        # continuous, so G can send whole slices of the latent to separate modes instead of stretching one connected
        # sheet over them; many small slices share out among any number of modes almost equally. The learning rates
        # fall to 0 over the second half. Tuning seeds 0 and 1, 2,500 samples: grid25 97.9 / 95.8 % high-quality
        # (64 slices: 95.5 / 96.3 % with a slice or two stuck between modes on held-out seeds; a continuous 2-d
        # latent: 76 %). R1 gamma 0.03 (was 0.1): a sharper D pulls in the few slices left 3-6 std off a mode (ring8
        # seeds 0 / 1: 100 / 100 %; grid25 95.6 / 96.5 %). BENCHMARKS.md, issue 18: held-out seeds.
        "z_dim": 3,
        "g_kwargs": _POINT_BASE["g_kwargs"] | {"latent_categories": 1024},
        "lr_rampdown": 0.5,
        "loss_kwargs": {"r1_gamma": 0.03},
        "batch": 256,
        "lr_g": 5e-4,
        "lr_d": 5e-4,
        "betas": (0.5, 0.9),
        "ema_kimg": 17.7,  # decay 0.99 per step at batch 256
        "kimg": 3072.0,  # 12,000 steps: ~4 CPU-minutes; HQ still rises (ring8 58 % at 4,000 steps, 78 % at 12,000)
        "grid_kimg": 256.0,
        "snapshot_kimg": 512.0,
    },
    # Goodfellow et al. 2014: the non-saturating loss, k = 1, a small minibatch, no averaging or penalty; Adam at the
    # library's 2e-4 (the paper used SGD with momentum). 12,000 steps, like the points preset.
    "paper": _POINT_BASE | {
        "loss_kwargs": {},
        "batch": 64,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "ema_kimg": 0.0,
        "kimg": 768.0,
        "grid_kimg": 64.0,
        "snapshot_kimg": 128.0,
    },
}


def is_point_set(data: str | None) -> bool:
    """Whether ``data`` names a built-in point set (resolution 1: ``ring8``, ``grid25``, ``gauss1d``)."""
    from ganforge.data import dataset_names
    from ganforge.data.builtin import DATASETS

    return data is not None and data in dataset_names() and DATASETS.get(data).resolution == 1


def default_model(data: str | None) -> str:
    """The family ``ganforge train --data DATA`` trains without ``--model``: ``gan`` for point sets, else ``dcgan``."""
    return RECIPE.name if is_point_set(data) else "dcgan"


def resolve_preset(model: str, data: str | None, preset: str | None) -> tuple[str | None, dict[str, Any]]:
    """The preset a run uses and the config values it sets (under ``--config`` and the options given).

    ``None`` with ``gan`` on a point set resolves to ``points``; a preset for another family or for image data raises
    ``ValueError``, as does an unknown name.
    """
    if preset is None:
        preset = "points" if model == RECIPE.name and is_point_set(data) else None
        return preset, dict(PRESETS[preset]) if preset else {}
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    if model != RECIPE.name or not is_point_set(data):
        raise ValueError(f"preset {preset!r} is for --model {RECIPE.name} on a built-in point set (ring8, grid25, "
                         f"gauss1d), got --model {model} --data {data}")
    return preset, dict(PRESETS[preset])
