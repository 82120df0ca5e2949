"""From a training config to the parts a run is made of: ``build(cfg) -> TrainParts``, then ``Trainer(parts).run()``.

``build`` resolves the device and the process group, seeds every RNG, loads the data, and asks the family's recipe
(``ganforge.train.recipes``) for the data source, the networks and the schedule; the loss comes from
``ganforge.losses`` and the optimisers from the loss's phases. Nothing here knows a family by name.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset, load_dataset
from ganforge.data.clusters import CLASS_PRIOR, cluster_dataset, cluster_prior
from ganforge.losses import Loss, build_loss
from ganforge.models.base import Network
from ganforge.train import distributed as ddp
from ganforge.train.config import TrainConfig
from ganforge.train.recipes import Recipe, get_recipe
from ganforge.train.source import DataSource
from ganforge.train.state import seed_all


@dataclass
class TrainParts:
    """Everything one run trains with, built by :func:`build` (or by hand, e.g. in tests).

    ``nets``: ``G``, ``D`` (and ``G_ema`` when an EMA is configured), on ``device``; ``opts``: one optimiser per network
    a loss phase updates; ``schedule``: the recipe's per-step schedule or None; ``heldout``: reals kept out of
    training for the diagnostics (``cfg.heldout``), or None.
    """

    cfg: TrainConfig
    recipe: Recipe
    device: torch.device
    dist: ddp.DistInfo
    dataset: GanDataset
    heldout: GanDataset | None
    source: DataSource
    nets: dict[str, nn.Module]
    loss: Loss
    loss_name: str
    opts: dict[str, torch.optim.Optimizer]
    schedule: Any | None


def build(cfg: TrainConfig) -> TrainParts:
    """The parts of the run ``cfg`` describes, in an order that keeps runs reproducible (seed before networks)."""
    device, dist = runtime(cfg)
    recipe = get_recipe(cfg.model)
    dataset, heldout = training_data(cfg)
    source = recipe.source(cfg, dataset, device, dist.rank, dist.world_size)
    nets = build_networks(recipe, cfg, dataset, source)
    place_networks(nets, cfg, device, dist)
    loss_name = cfg.loss or recipe.loss
    # The recipe's data-dependent weights are pinned into the config that every checkpoint saves, so a resumed run
    # trains with the weights it started with even if a later version changes the recipe's defaults.
    # The same for the shifts a two-domain source resolved from the image size (``translate`` None).
    cfg = dataclasses.replace(cfg, loss_kwargs=recipe.loss_kwargs(cfg, dataset, source, loss_name),
                              translate=getattr(source, "translate", cfg.translate))
    loss = build_loss(loss_name, nets, **cfg.loss_kwargs | ({"d_steps": cfg.d_steps} if cfg.d_steps != 1 else {}))
    opts = make_optimizers(cfg, loss, nets)
    schedule = recipe.schedule(cfg, dataset)
    return TrainParts(cfg, recipe, device, dist, dataset, heldout, source, nets, loss, loss_name, opts, schedule)


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU) or the named device, which must be available."""
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    if name == "mps" and not (mps and mps.is_available()):
        raise ValueError("--device mps was asked for but MPS is not available")
    return torch.device(name)


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AMX tile units or AVX512-BF16), on which oneDNN runs bf16
    convolutions natively. Measured on a fastgan step at 64 px: with AMX 2x the images per second of fp32 (Intel
    Xeon), with AVX512-BF16 and no AMX 1.5x (AMD EPYC); with neither, bf16 is emulated and ran 1.5x slower."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(probe is not None and probe() for probe in probes)


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` (autocast on any device), or ``auto``: bf16 on a CPU with native bf16 (AMX or AVX512-BF16),
    where it was measured to win at equal FID, fp32 everywhere else (GPUs included: not measured there)."""
    if name != "auto":
        return name
    return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"


def runtime(cfg: TrainConfig) -> tuple[torch.device, ddp.DistInfo]:
    """Device and process group (``torchrun`` ranks), CPU threads, and every RNG seeded from ``cfg.seed``."""
    device = resolve_device(cfg.device)
    dist = ddp.init_from_env(device)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_all(cfg.seed)
    return device, dist


def load_training_data(cfg: TrainConfig) -> GanDataset:
    """The data as ``cfg`` names it; with ``cfg.clusters``, labelled by k-means clusters of its pixels (recomputed
    identically on resume: seeded and in float64)."""
    dataset = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.resize, cfg.data_dir, cfg.on_error,
                           cfg.max_images)
    return cluster_dataset(dataset, cfg.clusters, cfg.seed) if cfg.clusters else dataset


def training_data(cfg: TrainConfig) -> tuple[GanDataset, GanDataset | None]:
    """The training set, and the ``cfg.heldout`` reals split off it for the diagnostics (None when 0)."""
    dataset = load_training_data(cfg)
    if not cfg.heldout:
        return dataset, None
    from ganforge.train.monitor import heldout_split  # imported late: monitor pulls in the metrics stack

    if cfg.heldout >= len(dataset):
        raise ValueError(f"--heldout {cfg.heldout} leaves no training data ({len(dataset)} images)")
    return heldout_split(dataset, cfg.heldout, cfg.seed)


def build_networks(recipe: Recipe, cfg: TrainConfig, dataset: GanDataset, source: DataSource) -> dict[str, nn.Module]:
    """The recipe's networks (G and D), plus G_ema when an EMA is configured."""
    nets = recipe.networks(cfg, dataset, source)
    prior = cluster_prior(dataset.info)
    if prior is not None and "G" in nets:  # a self-conditioned G draws its cluster with the clusters' frequencies
        setattr(nets["G"], CLASS_PRIOR, prior)
    if cfg.ema_kimg > 0 and "G" in nets:
        nets["G_ema"] = copy.deepcopy(nets["G"]).eval().requires_grad_(False)
    return nets


def place_networks(nets: dict[str, nn.Module], cfg: TrainConfig, device: torch.device, dist: ddp.DistInfo) -> None:
    """Move to ``device`` (channels_last if asked), give every rank rank 0's weights, compile G and D if asked."""
    for net in nets.values():
        net.to(device)
        if cfg.channels_last:
            net.to(memory_format=torch.channels_last)
    for net in nets.values():
        ddp.broadcast_module(net, dist)
    if cfg.compile:  # in place: same module objects, same state_dict keys, so checkpoints are unaffected
        for key in ("G", "D"):
            if key in nets:
                net = nets[key]
                for part in net.compile_parts() if isinstance(net, Network) else [net]:
                    part.compile()


def make_optimizers(cfg: TrainConfig, loss: Loss, nets: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
    """Adam per network a phase updates, over its trainable parameters only; lazy regularisation rescales lr and
    betas by I/(I+1) (StyleGAN2 appendix B). On CPU and CUDA it is the fused implementation (one kernel over all
    parameters): the same update, and on the small UNIT networks on a CPU a 3-4 % faster step than one loop per
    parameter tensor."""
    opts = {}
    for key in sorted({p.network for p in loss.phases}):
        lr = cfg.lr_g if key.startswith("G") else cfg.lr_d
        b1, b2 = cfg.betas
        interval = loss.reg_interval(key)
        if interval:
            ratio = interval / (interval + 1)
            lr, b1, b2 = lr * ratio, b1**ratio, b2**ratio
        params = [p for p in nets[key].parameters() if p.requires_grad]
        fused = {p.device.type for p in params} <= {"cpu", "cuda"}
        opts[key] = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8, fused=fused or None)
    return opts
