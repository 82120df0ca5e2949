"""What a training recipe is: one family's loss, defaults, network builder, data source, schedule and preview.

A :class:`Recipe` names the network classes it trains (from ``ganforge.models``) and the loss it trains them with
(a key of ``ganforge.losses.LOSSES``); the optional hooks replace the defaults below for families that need more
than "G and D of the model contract, one image dataset, noise":

==================  ==========================================================  ===================================
hook                signature                                                   default
==================  ==========================================================  ===================================
``build_networks``  ``(cfg, dataset, source) -> {"G": ..., "D": ...}``           :func:`contract_networks`
``make_source``     ``(cfg, dataset, device, rank, world_size) -> DataSource``  :func:`image_source`
``make_schedule``   ``(cfg, dataset) -> Schedule | None``                       none (``schedule_kwargs`` refused)
``preview``         ``(networks, source, n, seed) -> images [N, C, H, W]``       :func:`latent_preview`
``loss_defaults``   ``(cfg, dataset, source) -> loss_kwargs``                    none (the loss's own defaults)
==================  ==========================================================  ===================================

The source is built before the networks, so a builder can size the networks from the data the source holds (UNIT's
second domain is loaded once, by its source). A preview hook receives what it needs, never the Trainer; the
Trainer calls it under ``torch.no_grad`` with the networks in eval mode and the global RNG forked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.losses import loss_names
from ganforge.media import save_grid
from ganforge.metrics.toy import save_scatter
from ganforge.registry import Registry
from ganforge.train.config import TrainConfig
from ganforge.train.source import DataSource, ImageSource

NetworkBuilder = Callable[[TrainConfig, GanDataset, DataSource], dict[str, nn.Module]]
SourceFactory = Callable[[TrainConfig, GanDataset, torch.device, int, int], DataSource]
ScheduleFactory = Callable[[TrainConfig, GanDataset], Any]
PreviewHook = Callable[[Mapping[str, nn.Module], DataSource, int, int], torch.Tensor]
LossDefaults = Callable[[TrainConfig, GanDataset, DataSource], dict[str, Any]]

PREVIEW_SEED_OFFSET = 123_456  # the fixed noise of progress grids: seed + this, never the training draws


@dataclass(frozen=True)
class Recipe:
    """How one family trains. Registered by :func:`register_recipe`; ``ganforge train --model NAME`` picks it.

    Args:
        name: the ``--model`` name (lowercase, ``-``/``_``), stored as ``family`` in checkpoints.
        description: one line for ``ganforge train --help`` and errors (cite the paper, name the resolutions).
        loss: default loss, a key of ``ganforge.losses.LOSSES`` (``--loss`` overrides it).
        generator, discriminator: the network classes (``ganforge.models``) the default builder constructs.
        defaults: ``TrainConfig`` values this family trains with unless the user gives them (optimiser, batch, EMA).
        data_defaults: per built-in dataset name, ``TrainConfig`` values over ``defaults`` (a loss with its penalties
            for a benchmark set); the entry's loss and ``loss_kwargs`` drop out when the user names a loss.
        bare_run: ``TrainConfig`` values for a run that names neither ``data`` nor ``cond`` (the bare
            ``ganforge train``), over ``defaults``; any of them the user sets wins.
        build_networks, make_source, make_schedule, preview: optional hooks (module docstring); None = default.
        loss_defaults: optional; ``loss_kwargs`` of the family's own loss that depend on the loaded data (e.g. on its
            resolution, or on the source's second domain), under the user's ``loss_kwargs``; ignored when the run
            trains another loss. ``build`` writes the merged weights into the run's config, so checkpoints save them
            and a resumed run keeps them.
    """

    name: str
    description: str
    loss: str
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    data_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    bare_run: dict[str, Any] = field(default_factory=dict)
    build_networks: NetworkBuilder | None = None
    make_source: SourceFactory | None = None
    make_schedule: ScheduleFactory | None = None
    preview: PreviewHook | None = None
    loss_defaults: LossDefaults | None = None

    def __post_init__(self) -> None:
        if self.loss not in loss_names():
            raise ValueError(f"recipe {self.name!r}: unknown loss {self.loss!r}; expected one of {loss_names()}")
        known = {f.name for f in fields(TrainConfig)}
        entries = [("defaults", self.defaults), ("bare_run", self.bare_run), *self.data_defaults.items()]
        for where, values in entries:
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"recipe {self.name!r}: {where} has unknown TrainConfig key(s) {unknown}")
        for hook in ("build_networks", "make_source", "make_schedule", "preview", "loss_defaults"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise ValueError(f"recipe {self.name!r}: {hook} must be callable or None, got {value!r}")

    def defaults_for(self, data: str, given: Collection[str]) -> dict[str, Any]:
        """``defaults`` under ``bare_run`` (when ``given``, the options the user set, names none of ``data``,
        ``cond`` and ``clusters``: the labels to train on) under the ``data_defaults`` entry of ``data``; a loss in
        ``given`` drops the entry's loss and its penalties together, so ``--loss NAME`` is that loss as the family
        trains it."""
        extra = dict(self.data_defaults.get(data, {}))
        if "loss" in given:
            extra.pop("loss", None)
            extra.pop("loss_kwargs", None)
        bare = {} if {"data", "cond", "clusters"} & set(given) else self.bare_run
        return {**self.defaults, **bare, **extra}

    def adds_loss_defaults(self, loss_name: str) -> bool:
        """Whether a run of loss ``loss_name`` takes weights from the ``loss_defaults`` hook (only the family's own
        loss does); they need the loaded data, so ``--dry-run``'s config cannot show them."""
        return self.loss_defaults is not None and loss_name == self.loss

    def loss_kwargs(self, cfg: TrainConfig, dataset: GanDataset, source: DataSource, loss_name: str) -> dict[str, Any]:
        """The keyword arguments of loss ``loss_name``: ``cfg.loss_kwargs`` over the ``loss_defaults`` hook's values
        when ``loss_name`` is this family's loss."""
        hook = self.loss_defaults if self.adds_loss_defaults(loss_name) else None
        return {**(hook(cfg, dataset, source) if hook else {}), **cfg.loss_kwargs}

    def networks(self, cfg: TrainConfig, dataset: GanDataset, source: DataSource) -> dict[str, nn.Module]:
        """The trained networks (``G``, ``D``, ...; the loop adds ``G_ema``)."""
        if self.build_networks is not None:
            return dict(self.build_networks(cfg, dataset, source))
        return contract_networks(self, cfg, dataset)

    def source(self, cfg: TrainConfig, dataset: GanDataset, device: torch.device, rank: int,
               world_size: int) -> DataSource:
        """The data source of this run (this rank's share of every global batch)."""
        factory = self.make_source or image_source
        return factory(cfg, dataset, device, rank, world_size)

    def schedule(self, cfg: TrainConfig, dataset: GanDataset) -> Any:
        """The per-step schedule (e.g. ProGAN's growth), or None; ``schedule_kwargs`` without one is an error."""
        if self.make_schedule is None:
            if cfg.schedule_kwargs:
                raise ValueError(f"schedule_kwargs {cfg.schedule_kwargs} given, but model {self.name!r} does not "
                                 "grow (only progressive models have a growth schedule)")
            return None
        return self.make_schedule(cfg, dataset)

    def preview_images(self, networks: Mapping[str, nn.Module], source: DataSource, n: int,
                       seed: int) -> torch.Tensor:
        """Progress-grid images ``[N, C, H, W]`` in [-1, 1]."""
        return (self.preview or latent_preview)(networks, source, n, seed)

    def save_preview(self, images: torch.Tensor, path: Path, dataset: GanDataset) -> torch.Tensor | None:
        """Write the preview to ``path`` (:func:`save_preview`); returns the images worth showing as a picture."""
        return save_preview(images, path, dataset)


RECIPES: Registry[Recipe] = Registry("training recipe")


def register_recipe(recipe: Recipe) -> Recipe:
    """Register ``recipe`` under ``recipe.name``; a duplicate or malformed name raises ``ValueError``."""
    RECIPES.register(recipe.name)(recipe)
    return recipe


# ------------------------------------------------------------------------ the defaults
def contract_networks(recipe: Recipe, cfg: TrainConfig, dataset: GanDataset) -> dict[str, nn.Module]:
    """``G`` and ``D`` of the model contract, sized from the dataset, with ``cfg.g_kwargs``/``cfg.d_kwargs``."""
    c_dim = dataset.num_classes if cfg.conditional else 0
    common = {"c_dim": c_dim, "resolution": dataset.resolution, "channels": dataset.channels}
    try:
        G = recipe.generator(z_dim=cfg.z_dim, **common, **cfg.g_kwargs)
        D = recipe.discriminator(**common, **cfg.d_kwargs)
    except TypeError as e:
        raise ValueError(f"bad generator/discriminator options for model {recipe.name!r}: {e}") from None
    return {"G": G, "D": D}


def image_source(cfg: TrainConfig, dataset: GanDataset, device: torch.device, rank: int,
                 world_size: int) -> ImageSource:
    """Real images of one dataset, ``z ~ N(0, I)`` of ``cfg.z_dim`` and, when conditional, labels."""
    return ImageSource(dataset, cfg.batch, cfg.z_dim, cfg.conditional, cfg.xflip, cfg.seed, device, rank, world_size)


def sampling_generator(networks: Mapping[str, nn.Module]) -> nn.Module:
    """The generator to show and measure: ``G_ema`` when the run keeps one, else ``G``."""
    return networks["G_ema"] if "G_ema" in networks else networks["G"]


def fixed_latents(G: nn.Module, source: DataSource, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same ``n`` latents ``[n, z_dim]`` (and one-hot labels cycling through the classes) at every grid."""
    device = next(G.parameters()).device
    g = torch.Generator().manual_seed(seed + PREVIEW_SEED_OFFSET)
    z = torch.randn(n, int(G.z_dim), generator=g)  # type: ignore[arg-type]
    c_dim = int(getattr(source, "c_dim", 0))
    c = nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    return z.to(device), None if c is None else c.to(device)


def save_preview(images: torch.Tensor, path: Path, dataset: GanDataset) -> torch.Tensor | None:
    """A square grid of ``images [N, C, H, W]`` (returned, for TensorBoard); for point data (2-D toys, samples
    ``[N, D, 1, 1]``) a scatter plot over the true modes instead (returns None: there is no image to show)."""
    if dataset.is_image:
        save_grid(images, path, nrow=int(math.sqrt(len(images))) or None)
        return images
    save_scatter(images.flatten(1).cpu(), dataset, path)
    return None


def latent_preview(networks: Mapping[str, nn.Module], source: DataSource, n: int, seed: int) -> torch.Tensor:
    """``n`` samples of G_ema (or G) on fixed latents, in chunks of 64: ``[n, C, H, W]``."""
    G = sampling_generator(networks)
    z, c = fixed_latents(G, source, n, seed)
    return torch.cat([G(z[i : i + 64], None if c is None else c[i : i + 64]) for i in range(0, n, 64)])
