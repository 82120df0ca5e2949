"""In-memory datasets and the reproducible, resumable, rank-aware batch sampler the training loop uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganforge.data.errors import DataError


@dataclass
class GanDataset:
    """Samples held in memory, ready for training.

    ``data`` is either uint8 images ``[N, C, R, R]`` (0..255, converted to [-1, 1] per batch) or float32 samples
    already in model space (toy point sets ``[N, D, 1, 1]``). ``labels`` are class indices ``[N]`` or None.
    ``info`` records where the data came from and which policies were applied (saved in the run's config).
    ``class_prior`` (float64 ``[num_classes]``, summing to 1) is set when the labels are a random sample of a known
    population (Stacked MNIST: three independent draws from a digit pool); the mode metric compares generated class
    histograms with it rather than with the sample's own histogram, whose sampling noise would add to every KL.
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None = None
    num_classes: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    class_prior: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 4:
            raise DataError(f"dataset {self.name!r}: data must be [N, C, H, W], got shape {list(self.data.shape)}")
        if len(self.data) == 0:
            raise DataError(f"dataset {self.name!r} is empty")
        if self.labels is not None:
            if len(self.labels) != len(self.data):
                raise DataError(f"dataset {self.name!r}: {len(self.labels)} labels for {len(self.data)} samples")
            if self.num_classes == 0:
                self.num_classes = int(self.labels.max()) + 1
            if int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes:
                raise DataError(f"dataset {self.name!r}: labels must be in [0, {self.num_classes})")
        if self.class_prior is not None:
            self._check_prior()

    def _check_prior(self) -> None:
        p = np.asarray(self.class_prior, dtype=np.float64)
        if self.labels is None or p.shape != (self.num_classes,):
            raise DataError(f"dataset {self.name!r}: a class prior needs labels and shape [{self.num_classes}], "
                            f"got shape {list(p.shape)}")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-6:
            raise DataError(f"dataset {self.name!r}: the class prior must be non-negative and sum to 1, "
                            f"got sum {p.sum():.6g}")
        if np.any(p[np.unique(self.labels.numpy())] == 0):
            raise DataError(f"dataset {self.name!r}: the class prior gives probability 0 to a class the labels hold")
        self.class_prior = p

    def __len__(self) -> int:
        return len(self.data)

    @property
    def resolution(self) -> int:
        return int(self.data.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def is_image(self) -> bool:
        return self.data.dtype == torch.uint8

    def batch(self, idx: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        """Samples ``idx`` as float32 in model space ``[B, C, H, W]``; ``flip`` (bool ``[B]``) mirrors horizontally."""
        x = self.data[idx]
        x = x.float() / 127.5 - 1.0 if self.is_image else x.float()
        if flip is not None and bool(flip.any()):
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x

    def onehot(self, idx: torch.Tensor) -> torch.Tensor:
        """One-hot labels ``[B, num_classes]`` for conditional training."""
        if self.labels is None:
            raise DataError(f"dataset {self.name!r} has no labels; conditional training needs them")
        return torch.nn.functional.one_hot(self.labels[idx], self.num_classes).float()

    def class_counts(self) -> np.ndarray | None:
        if self.labels is None:
            return None
        return np.bincount(self.labels.numpy(), minlength=self.num_classes)


class BatchSampler:
    """Reproducible infinite batches: epoch ``e`` visits a permutation drawn from ``seed + e``.

    Under DDP every rank draws the same global batch of ``batch_size`` indices and keeps its own contiguous slice
    (``batch_size / world_size`` each), so the union over ranks equals the single-process batch. The state (epoch,
    position) is saved in checkpoints, so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size != 0:
            raise ValueError(f"batch size {batch_size} must be divisible by the number of processes {world_size}")
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def next(self) -> torch.Tensor:
        """The next global batch, sliced to this rank: ``[batch_size / world_size]`` indices."""
        out = []
        need = self.batch_size
        while need > 0:
            take = self._perm[self.pos : self.pos + need]
            out.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= self.n:
                self.epoch += 1
                self.pos = 0
                self._perm = self._permutation(self.epoch)
        idx = torch.cat(out)
        per = self.batch_size // self.world_size
        return idx[self.rank * per : (self.rank + 1) * per]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)
