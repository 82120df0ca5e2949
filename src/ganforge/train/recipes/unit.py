"""Training recipe of UNIT (Liu, Breuel & Kautz, "Unsupervised Image-to-Image Translation Networks", NeurIPS 2017):
everything about how UNIT trains is in this file.

- Data: two unpaired image domains, A (``--data``/``--domain-a``) and B (``--domain-b``, loaded once, by
  :func:`make_source`, with A's resolution, channel, resize and error policies). :class:`TwoDomainSource` samples
  the two independently (UNIT needs no paired examples): each has its own ``BatchSampler`` with its own reproducible
  permutation, so the pairing of A and B images in a batch is arbitrary and changes every epoch. ``--translate P``
  moves every real image of both domains by a random whole-pixel offset of up to P px per axis (as the authors'
  code and PyTorch-GAN's take random crops); at 32 px and below P is 2 unless given (:func:`small_image_translate`,
  measured on digits in BENCHMARKS.md, "random translations"), above that 0. Both
  samplers and the flip / shift generator are in ``state_dict``, so a resumed run sees exactly the batches it would
  have.
- Networks: ``unit-g`` and ``unit-d`` (``ganforge.models.unit``), sized from the two domains the source holds. At
  256 px and down to 33 px the authors' sizes; at 32 px and below (digits) the sizes in :func:`small_image_kwargs`,
  measured on MNIST <-> USPS (BENCHMARKS.md). Options the user gives (``g_kwargs``, ``d_kwargs``) always win.
- Loss: ``unit`` (``ganforge.losses.unit``: VAE, GAN and cycle terms with the paper's weights; at 32 px and below a
  heavier cycle term and an identity term that fades out, :func:`small_image_loss_kwargs`). Optimiser: Adam(1e-4,
  betas 0.5, 0.999), the authors' settings. No schedule. Batch 8 and x-flips (the authors' code flips; it trains on
  one image pair per step).
- Preview: six bands of fixed real images: A, A->B, A->B->A, B, B->A, B->A->B (:func:`unit_preview`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganforge.data import BatchSampler, DataError, GanDataset, load_dataset
from ganforge.losses import Batch
from ganforge.models.unit import UnitDiscriminator, UnitGenerator, last_normalised_size
from ganforge.train.config import TrainConfig
from ganforge.train.recipes.base import Recipe, register_recipe, sampling_generator
from ganforge.train.source import DataSource, reseeded

# Domain B's permutations use seed + this offset so they are never A's permutations shifted.
B_SEED_OFFSET = 7_777


def load_domain_b(cfg: Any) -> GanDataset:
    """Domain B (``cfg.domain_b``) read with the same resolution, channel, resize and error policies as domain A."""
    if not cfg.domain_b:
        raise ValueError("a two-domain model needs --domain-b NAME|PATH (domain A is --data / --domain-a)")
    return load_dataset(cfg.domain_b, cfg.resolution, cfg.channels, cfg.resize, cfg.data_dir, cfg.on_error,
                        cfg.max_images)


class TwoDomainSource:
    """Yields ``Batch(real=A [B, C_a, R, R], real_c=None, z=[B, 1] zeros, gen_c=None, extra={"real_b": B})``.

    ``z`` is a placeholder (UNIT's randomness is its latent noise, drawn inside the loss); it keeps the ``Batch``
    contract and lets the loop split micro-batches. Under DDP each rank gets its slice of both global batches.
    """

    def __init__(
        self,
        dataset_a: GanDataset,
        dataset_b: GanDataset,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        xflip: bool = False,
        rank: int = 0,
        world_size: int = 1,
        translate: int = 0,
    ) -> None:
        if translate < 0:
            raise ValueError(f"translate must be >= 0 pixels, got {translate}")
        for tag, ds in (("A", dataset_a), ("B", dataset_b)):
            if not ds.is_image:
                raise DataError(f"domain {tag} ({ds.name!r}) holds points, not images; translation needs images")
        if dataset_a.resolution != dataset_b.resolution:
            raise DataError(f"domain A ({dataset_a.name!r}) is {dataset_a.resolution}px and domain B "
                            f"({dataset_b.name!r}) {dataset_b.resolution}px; load both at one resolution")
        self.dataset_a, self.dataset_b = dataset_a, dataset_b
        self.device, self.xflip, self.translate = torch.device(device), xflip, translate
        self.sampler_a = BatchSampler(len(dataset_a), batch_size, seed=seed, rank=rank, world_size=world_size)
        self.sampler_b = BatchSampler(len(dataset_b), batch_size, seed=seed + B_SEED_OFFSET, rank=rank,
                                      world_size=world_size)
        self.seed, self.rank = seed, rank
        self.gen = torch.Generator().manual_seed(reseeded(seed, 2, rank, 0))
        self.per_rank = batch_size // world_size

    def _flip(self, n: int) -> torch.Tensor | None:
        return torch.rand(n, generator=self.gen) < 0.5 if self.xflip else None

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        """Each image moved by its own random whole-pixel offset in ``[-translate, translate]`` per axis, the edge
        rows and columns repeated into the gap (``[B, C, R, R]`` in and out; identity at ``translate`` 0)."""
        p = self.translate
        if p == 0:
            return x
        r = x.shape[-1]
        padded = nn.functional.pad(x, (p, p, p, p), mode="replicate")  # [B, C, R + 2p, R + 2p]
        offsets = torch.randint(0, 2 * p + 1, (len(x), 2), generator=self.gen).tolist()
        return torch.stack([padded[i, :, oy : oy + r, ox : ox + r] for i, (oy, ox) in enumerate(offsets)])

    def next(self) -> Batch:
        idx_a, idx_b = self.sampler_a.next(), self.sampler_b.next()
        real_a = self._shift(self.dataset_a.batch(idx_a, self._flip(len(idx_a))))  # [B, C_a, R, R]
        real_b = self._shift(self.dataset_b.batch(idx_b, self._flip(len(idx_b))))  # [B, C_b, R, R]
        d = self.device
        return Batch(real=real_a.to(d), real_c=None, z=torch.zeros(self.per_rank, 1, device=d), gen_c=None,
                     extra={"real_b": real_b.to(d)})

    def preview_batches(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed images for progress grids: ``n`` of A and ``n`` of B chosen by ``seed`` (independent of training)."""
        g = torch.Generator().manual_seed(seed)
        ia = torch.randperm(len(self.dataset_a), generator=g)[: min(n, len(self.dataset_a))]
        ib = torch.randperm(len(self.dataset_b), generator=g)[: min(n, len(self.dataset_b))]
        k = min(len(ia), len(ib))
        return self.dataset_a.batch(ia[:k]).to(self.device), self.dataset_b.batch(ib[:k]).to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler_a": self.sampler_a.state_dict(), "sampler_b": self.sampler_b.state_dict(),
                "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"sampler_a", "sampler_b", "gen"} - set(state)
        if missing:
            raise ValueError(f"two-domain source state lacks {sorted(missing)} (is this a UNIT checkpoint?)")
        self.sampler_a.load_state_dict(state["sampler_a"])
        self.sampler_b.load_state_dict(state["sampler_b"])
        self.gen.set_state(state["gen"])

    def reseed(self, attempt: int) -> None:
        """New flips after a rollback (the data order of both domains stays the checkpoint's)."""
        self.gen.manual_seed(reseeded(self.seed, 2, self.rank, attempt))


def make_source(
    cfg: TrainConfig, dataset: GanDataset, device: torch.device, rank: int = 0, world_size: int = 1
) -> TwoDomainSource:
    """Domain A is the training ``dataset`` (``--data``), domain B is loaded here, once, from ``cfg.domain_b``.
    ``cfg.translate`` None takes :func:`small_image_translate`."""
    shift = small_image_translate(dataset.resolution) if cfg.translate is None else cfg.translate
    return TwoDomainSource(dataset, load_domain_b(cfg), cfg.batch, cfg.seed, device, cfg.xflip, rank, world_size,
                           translate=shift)


# Largest size that gets the small-image networks below (28 px digits; 32 px when they are padded or resized).
SMALL_IMAGE = 32


def small_image_translate(resolution: int) -> int:
    """Random shifts of up to 2 px for images of at most ``SMALL_IMAGE`` px, else 0 (the default of ``--translate``).

    Measured on MNIST <-> USPS at 32 px with the 45-kimg ramp (BENCHMARKS.md, forty-fourth session): proposed on
    seeds 0 and 1 (-0.023, +0.020 selection accuracy: not a lead by its rule), then seeds 2 / 3 (+0.026, +0.034) and,
    under a default rule written before they ran, 4 / 5 (+0.022, +0.045); test accuracy over the six seeds 0.939
    against 0.924. Larger images keep their pixels where they are (not measured).
    """
    return 2 if resolution <= SMALL_IMAGE else 0


def small_image_kwargs(resolution: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generator and discriminator options for images of at most ``SMALL_IMAGE`` px, else ``({}, {})``.

    The authors' sizes (width 64, a two-scale D) are made for 256 px photos; on 28-32 px digits they train at ~3 images
    per CPU-second and fall behind a small peer. Chosen on MNIST <-> USPS by the accuracy of translated USPS
    *training* digits (labels never used in training; BENCHMARKS.md, "UNIT on digits"): G width 16, and a one-scale
    instance-normalised patch D of width 64 with as many stride-2 layers (at most 4) as leave its last normalised map
    at least 2 px. (N(0, 0.02) G weights, ``init="gaussian"``, won at 28 px and lost at 32 px: not a default.)
    """
    if resolution > SMALL_IMAGE:
        return {}, {}
    layers = 4
    while layers > 1 and (last_normalised_size(resolution, layers, 1) or 0) < 2:
        layers -= 1  # n_layers 1 normalises nothing (size None) and always fits
    return {"width": 16}, {"width": 64, "n_layers": layers, "num_scales": 1, "norm": "instance"}


def small_image_loss_kwargs(cfg: TrainConfig, dataset: GanDataset, source: DataSource) -> dict[str, Any]:
    """The ``unit`` loss's weights for images of at most ``SMALL_IMAGE`` px, else ``{}`` (the authors' weights).

    The cycle term weighs 20 instead of 10. Chosen on MNIST <-> USPS at 32 px by the accuracy of translated USPS
    *training* digits after 20 minutes (BENCHMARKS.md, thirty-ninth session): proposed on seeds 0 and 1 (-0.009,
    +0.038), then confirmed by a rule written before seeds 2 and 3 ran (+0.037, -0.003). A heavier cycle keeps the
    digit's identity through the translation; the GAN term otherwise redraws it.

    When both domains have as many channels, CycleGAN's identity term (weight 2) fades out over the first 10 kimg
    (``identity_weight``, ``identity_kimg``). Some initial generators otherwise learn a B -> A translator that draws
    stripes, not digits, from the first minutes (one seed in sixteen on digits); kept on, the term holds translations
    close to their source domain and costs content (BENCHMARKS.md, forty-seventh session).
    """
    if dataset.resolution > SMALL_IMAGE:
        return {}
    weights: dict[str, Any] = {"cycle_weight": 20.0}
    if isinstance(source, TwoDomainSource) and source.dataset_b.channels == dataset.channels:
        weights |= {"identity_weight": 2.0, "identity_kimg": 10.0}
    return weights


def build_networks(cfg: TrainConfig, dataset: GanDataset, source: DataSource) -> dict[str, nn.Module]:
    """``G`` (unit-g) and ``D`` (unit-d) for domain A = ``dataset`` and domain B = the source's second domain."""
    if cfg.conditional:
        raise ValueError("UNIT is unconditional; do not pass --cond or --clusters")
    if not isinstance(source, TwoDomainSource):
        raise ValueError(f"UNIT trains on a TwoDomainSource, got {type(source).__name__}")
    ds_b = source.dataset_b
    common = {"channels_a": dataset.channels, "channels_b": ds_b.channels, "resolution": dataset.resolution}
    g_small, d_small = small_image_kwargs(dataset.resolution)
    try:
        G = UnitGenerator(**common, **{**g_small, **cfg.g_kwargs})
        D = UnitDiscriminator(**common, **{**d_small, **cfg.d_kwargs})
    except TypeError as e:
        raise ValueError(f"bad generator/discriminator options for model 'unit': {e}") from None
    return {"G": G, "D": D}


@torch.no_grad()
def unit_preview(G: UnitGenerator, batch_a: torch.Tensor, batch_b: torch.Tensor) -> torch.Tensor:
    """Progress-grid images: six rows of ``N`` images, ``[6N, C, H, W]`` (save with ``nrow=N``).

    Rows: A inputs, A->B, A->B->A, B inputs, B->A, B->A->B (input, translated, cycled for each direction); all
    deterministic (latent means). When the domains differ in channels, 1-channel rows are repeated to 3 channels.
    """
    if batch_a.shape[0] != batch_b.shape[0]:
        raise ValueError(f"preview batches must be the same size, got {batch_a.shape[0]} and {batch_b.shape[0]}")
    if batch_a.shape[-2:] != batch_b.shape[-2:]:
        raise ValueError(f"preview batches must be the same size, got {list(batch_a.shape)} and {list(batch_b.shape)}")
    ab = G.translate(batch_a, "a2b")
    ba = G.translate(batch_b, "b2a")
    rows = [batch_a, ab, G.translate(ab, "b2a"), batch_b, ba, G.translate(ba, "a2b")]
    c = max(r.shape[1] for r in rows)
    return torch.cat([r.expand(-1, c, -1, -1) if r.shape[1] != c else r for r in rows])  # [6N, C, H, W]


def preview(networks: Mapping[str, nn.Module], source: DataSource, n: int, seed: int) -> torch.Tensor:
    """:func:`unit_preview` on fixed real images of both domains, about ``n`` images in all.

    ``6 k^2`` images per row kind with ``36 k^2 <= max(n, 36)``, so a square grid (``6k`` images across) shows the six
    row kinds as bands of ``k`` grid rows each.
    """
    if not isinstance(source, TwoDomainSource):
        raise ValueError(f"the UNIT preview needs a TwoDomainSource, got {type(source).__name__}")
    k = max(1, math.isqrt(n // 36))
    a, b = source.preview_batches(6 * k * k, seed=seed)
    return unit_preview(sampling_generator(networks), a, b)


RECIPE = register_recipe(
    Recipe(
        name="unit",
        description="Liu et al. 2017 UNIT image-to-image translation (--domain-a A --domain-b B; size multiple of 4)",
        loss="unit",
        generator=UnitGenerator,
        discriminator=UnitDiscriminator,
        # The authors' Adam betas (0.5, 0.999); their code flips. Batch 16 at lr 2e-4 (the authors' 1e-4 doubled
        # with the batch): measured on digits at 32 px against batch 8 at 1e-4, same seed side by side on four seeds
        # under a rule written before they ran (content accuracy -0.003 to +0.0025 a seed, mean -0.0005, in 0.8x the
        # training time; BENCHMARKS.md, "UNIT on digits: batch 16, paired"). Larger images are not measured.
        defaults={"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "batch": 16, "xflip": True},
        build_networks=build_networks,
        make_source=make_source,
        preview=preview,
        loss_defaults=small_image_loss_kwargs,
    )
)
