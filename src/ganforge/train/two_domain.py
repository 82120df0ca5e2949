"""The data source of two-domain (translation) families such as UNIT: unpaired images from domain A and domain B.

The two domains are sampled independently (UNIT needs no paired examples): each has its own ``BatchSampler`` with
its own reproducible permutation, so the pairing of A and B images in a batch is arbitrary and changes every epoch.
Both samplers and the flip generator are in ``state_dict``, so a resumed run sees exactly the batches it would have.
"""

from __future__ import annotations

from typing import Any

import torch

from ganforge.data import BatchSampler, DataError, GanDataset, load_dataset
from ganforge.losses import Batch

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
    ) -> None:
        for tag, ds in (("A", dataset_a), ("B", dataset_b)):
            if not ds.is_image:
                raise DataError(f"domain {tag} ({ds.name!r}) holds points, not images; translation needs images")
        if dataset_a.resolution != dataset_b.resolution:
            raise DataError(f"domain A ({dataset_a.name!r}) is {dataset_a.resolution}px and domain B "
                            f"({dataset_b.name!r}) {dataset_b.resolution}px; load both at one resolution")
        self.dataset_a, self.dataset_b = dataset_a, dataset_b
        self.device, self.xflip = torch.device(device), xflip
        self.sampler_a = BatchSampler(len(dataset_a), batch_size, seed=seed, rank=rank, world_size=world_size)
        self.sampler_b = BatchSampler(len(dataset_b), batch_size, seed=seed + B_SEED_OFFSET, rank=rank,
                                      world_size=world_size)
        self.gen = torch.Generator().manual_seed(seed * 7919 + 2 + rank)
        self.per_rank = batch_size // world_size

    def _flip(self, n: int) -> torch.Tensor | None:
        return torch.rand(n, generator=self.gen) < 0.5 if self.xflip else None

    def next(self) -> Batch:
        idx_a, idx_b = self.sampler_a.next(), self.sampler_b.next()
        real_a = self.dataset_a.batch(idx_a, self._flip(len(idx_a)))  # [B, C_a, R, R]
        real_b = self.dataset_b.batch(idx_b, self._flip(len(idx_b)))  # [B, C_b, R, R]
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


def make_two_domain_source(
    cfg: Any, dataset: GanDataset, device: torch.device, rank: int = 0, world_size: int = 1
) -> TwoDomainSource:
    """Family hook: domain A is the training ``dataset`` (``--data``), domain B is loaded from ``cfg.domain_b``."""
    return TwoDomainSource(dataset, load_domain_b(cfg), cfg.batch, cfg.seed, device, cfg.xflip, rank, world_size)
