"""What a metric sees: the fake and real sample sets, the feature extractor, and features cached per set.

A :class:`SampleSet` yields batches of samples: uint8 images (datasets, folders), float images in [-1, 1] (a
generator; each image comes from its own seed, so the images do not depend on the batch size) or float points (toy
data). :class:`EvalContext` extracts features once per set and caches them, so ``fid,kid,pr`` cost one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge.data import GanDataset
from ganforge.metrics import get_extractor
from ganforge.metrics.features import FeatureExtractor, Features


@dataclass
class SampleSet:
    """``count`` samples, produced in batches by ``make(start, stop) -> [stop - start, C, H, W]``.

    ``description`` says where they come from (recorded in results). ``dataset`` is set when the samples are (a subset
    of) a dataset, whose labels and info (toy mode centres) the metrics may read.
    """

    description: str
    count: int
    make: Callable[[int, int], torch.Tensor]
    dataset: GanDataset | None = None
    labels: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        for i in range(0, self.count, batch_size):
            yield self.make(i, min(i + batch_size, self.count))

    @staticmethod
    def from_dataset(ds: GanDataset, n: int | None = None, seed: int = 0) -> SampleSet:
        """All of ``ds``, or ``n`` samples drawn from it without replacement (seeded)."""
        if n is not None and not 1 <= n <= len(ds):
            raise ValueError(f"asked for {n} samples of dataset {ds.name!r}, which has {len(ds)}")
        if n is None or n == len(ds):
            idx = torch.arange(len(ds))
        else:
            idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        labels = ds.labels[idx] if ds.labels is not None else None
        desc = f"dataset {ds.name} ({len(idx)} of {len(ds)})"
        return SampleSet(desc, len(idx), lambda a, b: ds.data[idx[a:b]], ds, labels, dict(ds.info))

    @staticmethod
    def from_tensor(x: torch.Tensor, description: str, labels: torch.Tensor | None = None) -> SampleSet:
        if x.ndim != 4:
            raise ValueError(f"samples must be [N, C, H, W], got {list(x.shape)}")
        return SampleSet(description, len(x), lambda a, b: x[a:b], None, labels)

    @staticmethod
    def from_generator(
        G: nn.Module, n: int, seed: int = 0, class_probs: torch.Tensor | None = None,
        device: str | torch.device = "cpu", description: str = "generator",
    ) -> SampleSet:
        """``n`` samples of ``G``: sample ``i`` uses the latent of seed ``seed + i`` (as ``ganforge sample``) and, for
        a conditional G, a class drawn from ``class_probs`` (default uniform) with a seeded generator."""
        from ganforge.sampling import latents

        c_dim = int(getattr(G, "c_dim", 0))
        labels = None
        if c_dim:
            probs = torch.full((c_dim,), 1.0 / c_dim) if class_probs is None else class_probs.double()
            if probs.shape != (c_dim,):
                raise ValueError(f"class_probs must have {c_dim} entries, got {list(probs.shape)}")
            labels = torch.multinomial(probs, n, replacement=True, generator=torch.Generator().manual_seed(seed))
        z_dim = int(G.z_dim)

        @torch.no_grad()
        def make(a: int, b: int) -> torch.Tensor:
            z = latents(list(range(seed + a, seed + b)), z_dim).to(device)
            c = None if labels is None else nn.functional.one_hot(labels[a:b], c_dim).float().to(device)
            return G(z, c).float().cpu()

        return SampleSet(f"{description} (seeds {seed}..{seed + n - 1})", n, make, None, labels)


class EvalContext:
    """Inputs of one evaluation. Features and samples are computed on first use and cached.

    ``extractor``: registry name (``digits``, ``inception-v3``); ``extractor_options`` go to its factory (e.g.
    ``weights``). ``seed`` drives every random choice a metric makes (KID subsets). ``generator``: the network, for
    metrics that sample it themselves (PPL).
    """

    def __init__(
        self,
        fake: SampleSet,
        real: SampleSet | None = None,
        extractor: str | FeatureExtractor = "digits",
        extractor_options: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        seed: int = 0,
        generator: nn.Module | None = None,
        progress: bool = False,
    ) -> None:
        self.fake, self.real = fake, real
        self._extractor_spec, self._extractor_options = extractor, dict(extractor_options or {})
        self._extractor: FeatureExtractor | None = extractor if isinstance(extractor, FeatureExtractor) else None
        self.device = torch.device(device)
        self.batch_size, self.seed = batch_size, seed
        self.generator, self.progress = generator, progress
        self._features: dict[str, Features] = {}
        self._samples: dict[str, torch.Tensor] = {}

    @property
    def extractor_built(self) -> bool:
        """Whether a metric has used the extractor so far (toy-set mode counts do not)."""
        return self._extractor is not None

    @property
    def num_gen(self) -> int:
        return self.fake.count

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = get_extractor(str(self._extractor_spec), self.device, **self._extractor_options)
        return self._extractor

    def sample_set(self, which: str) -> SampleSet:
        if which not in ("real", "fake"):
            raise ValueError(f"which must be 'real' or 'fake', got {which!r}")
        s = self.fake if which == "fake" else self.real
        if s is None:
            raise ValueError("this metric compares with real data: pass --real DATASET (or the run's dataset)")
        return s

    def features(self, which: str) -> Features:
        """Features of all ``which`` samples (cached)."""
        if which not in self._features:
            s = self.sample_set(which)
            if s.info.get("kind") == "toy":
                raise ValueError(f"{s.description}: toy point sets have no image features; measure them with the "
                                 "'modes' metric")
            ex = self.extractor
            parts = [ex(b) for b in tqdm(s.batches(self.batch_size), total=-(-s.count // self.batch_size),
                                         desc=f"{ex.name} features ({which})", disable=not self.progress,
                                         leave=False)]
            self._features[which] = Features.concat(parts)
        return self._features[which]

    def cache_features(self, which: str, features: Features) -> None:
        """Reuse features computed earlier for the same samples with the same extractor (the monitor's reals)."""
        self.sample_set(which)
        self._features[which] = features

    def cached_features(self, which: str) -> Features | None:
        return self._features.get(which)

    def samples(self, which: str) -> torch.Tensor:
        """All ``which`` samples as one tensor ``[N, C, H, W]`` (cached; for metrics on raw points)."""
        if which not in self._samples:
            s = self.sample_set(which)
            self._samples[which] = torch.cat(list(s.batches(self.batch_size)))
        return self._samples[which]
