"""Data sources: where each phase's batch comes from. The default serves one image dataset plus latents."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ganforge.data import BatchSampler, GanDataset
from ganforge.losses import Batch


class DataSource(Protocol):
    """Yields ``losses.Batch`` objects; its state makes resumed runs see exactly the batches they would have seen."""

    def next(self) -> Batch: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def reseed(self, attempt: int) -> None:
        """Draw different randomness from here on, a pure function of the run seed and ``attempt`` (>= 1).

        Called after a rollback to the last good checkpoint, so the same non-finite step does not come back
        deterministically; ``state_dict`` then captures the new state like any other."""
        ...


def reseeded(seed: int, stream: int, rank: int, attempt: int) -> int:
    """The seed of a source's generator: ``stream`` separates a source's generators, ``attempt`` rollbacks."""
    return seed * 7919 + stream + rank + 1_000_000 * attempt


class ImageSource:
    """Real images (this rank's share of each global batch), latents ``z ~ N(0, I)`` and, when conditional, labels.

    Generator labels are drawn from the dataset's class frequencies so G sees classes as often as D does.
    All randomness comes from one ``torch.Generator`` whose state is saved, seeded by ``seed`` and the rank.
    """

    def __init__(
        self,
        dataset: GanDataset,
        batch_size: int,
        z_dim: int,
        cond: bool,
        xflip: bool,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.dataset, self.z_dim, self.cond, self.xflip, self.device = dataset, z_dim, cond, xflip, device
        self.seed, self.rank = seed, rank
        self.sampler = BatchSampler(len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size)
        self.gen = torch.Generator().manual_seed(reseeded(seed, 1, rank, 0))
        self.per_rank = batch_size // world_size
        if cond and dataset.labels is None:
            raise ValueError(f"conditional training needs labels, and dataset {dataset.name!r} has none")

    @property
    def c_dim(self) -> int:
        return self.dataset.num_classes if self.cond else 0

    def next(self) -> Batch:
        idx = self.sampler.next()
        flip = torch.rand(len(idx), generator=self.gen) < 0.5 if self.xflip else None
        real = self.dataset.batch(idx, flip)
        z, gen_c = self.latents(self.per_rank, self.gen)
        d = self.device
        return Batch(
            real=real.to(d, non_blocking=True),
            real_c=self.dataset.onehot(idx).to(d) if self.cond else None,
            z=z,
            gen_c=gen_c,
        )

    def latents(
        self, n: int, generator: torch.Generator, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` generator inputs (``z [n, z_dim]``, one-hot labels at the data's class frequencies when conditional)
        on the device, drawn from ``generator``: ``next`` draws its own with this source's generator, G_ema's
        batch-norm re-estimate with one of its own (this source's state untouched) and its own ``z [n, z_dim]``
        (quasi-random normals); the labels are drawn from ``generator`` either way."""
        if z is None:
            z = torch.randn(n, self.z_dim, generator=generator)
        elif tuple(z.shape) != (n, self.z_dim):
            raise ValueError(f"z must have shape {[n, self.z_dim]}, got {list(z.shape)}")
        c = self.dataset.onehot(torch.randint(len(self.dataset), (n,), generator=generator)) if self.cond else None
        return z.to(self.device), None if c is None else c.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.gen.set_state(state["gen"])

    def reseed(self, attempt: int) -> None:
        """New latents, labels and flips after a rollback (the data order stays the checkpoint's)."""
        self.gen.manual_seed(reseeded(self.seed, 1, self.rank, attempt))
