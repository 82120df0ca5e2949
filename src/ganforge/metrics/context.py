"""What a metric sees: the fake and real sample sets, the feature extractor, and features cached per set.

A :class:`SampleSet` yields batches of samples: uint8 images (datasets, folders), float images in [-1, 1] (a
generator; each image comes from its own seed, so the images do not depend on the batch size) or float points (toy
data). :class:`EvalContext` extracts features once per set and extractor and caches them, so ``fid,kid,pr`` cost one
Inception pass; with a :class:`~ganforge.metrics.feature_cache.FeatureCache` the reals' features outlive the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge.data import GanDataset
from ganforge.data.clusters import CLASS_PRIOR
from ganforge.metrics import extractor_names, get_extractor
from ganforge.metrics.feature_cache import PREPROCESSING_KEYS, FeatureCache, content_key, extractor_identity
from ganforge.metrics.features import FeatureExtractor, Features


@dataclass
class SampleSet:
    """``count`` samples, produced in batches by ``make(start, stop) -> [stop - start, C, H, W]``.

    ``description`` says where they come from (recorded in results). ``dataset`` is set when the samples are (a subset
    of) a dataset, whose labels and info (toy mode centres) the metrics may read. ``feature_memo``: for sets whose
    images never change (datasets), the features computed so far, per extractor identity; None for generated sets.
    """

    description: str
    count: int
    make: Callable[[int, int], torch.Tensor]
    dataset: GanDataset | None = None
    labels: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    feature_memo: dict[str, Features] | None = None

    def remember(self, extractor_identity: str, features: Features) -> Features:
        """Keep ``features`` on a fixed set (no-op for generated sets); returns them."""
        if self.feature_memo is not None:
            self.feature_memo[extractor_identity] = features
        return features

    def preprocessing(self) -> dict[str, Any]:
        """The resolution, channel and resize policies the images were prepared with (those the set records)."""
        return {k: self.info[k] for k in PREPROCESSING_KEYS if k in self.info}

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
        return SampleSet(desc, len(idx), lambda a, b: ds.data[idx[a:b]], ds, labels, dict(ds.info), {})

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
        a conditional G, a class drawn from ``class_probs`` (default: the G's own class prior when it is
        self-conditioned, else uniform) with a seeded generator."""
        from ganforge.sampling import latents

        c_dim = int(getattr(G, "c_dim", 0))
        labels = None
        if c_dim:
            probs = class_probs if class_probs is not None else getattr(G, CLASS_PRIOR, None)
            probs = torch.full((c_dim,), 1.0 / c_dim) if probs is None else probs.double()
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
    """Inputs of one evaluation. Extractors, features and samples are computed on first use and cached.

    Each metric reads the features of the extractor it is defined with (``fid``: ``inception-v3``, ``fd-digits``:
    ``digits``), built here on first use. ``extractor``: the context's own extractor, by registry name or built,
    for the metrics that take theirs from the context (PPL, separability); a built one is also reused by every metric
    defined with its name. ``extractor_options``: factory options per extractor name, e.g.
    ``{"inception-v3": {"weights": path}}``. ``feature_cache``: keeps the real set's features on disk by content
    (:mod:`ganforge.metrics.feature_cache`). ``seed`` drives every random choice a metric makes (KID subsets).
    ``generator``: the network, for metrics that sample it themselves (PPL). ``extractors``: a dict the context
    reads built extractors from and adds the ones it builds to, so repeated contexts build each network once.
    """

    def __init__(
        self,
        fake: SampleSet,
        real: SampleSet | None = None,
        extractor: str | FeatureExtractor = "digits",
        extractor_options: dict[str, dict[str, Any]] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        seed: int = 0,
        generator: nn.Module | None = None,
        progress: bool = False,
        feature_cache: FeatureCache | None = None,
        extractors: dict[str, FeatureExtractor] | None = None,
    ) -> None:
        self.fake, self.real = fake, real
        self.default_extractor = extractor if isinstance(extractor, str) else extractor.name
        # Shared with the caller when given: extractors built here stay there for the next context (the monitor).
        self._extractors: dict[str, FeatureExtractor] = extractors if extractors is not None else {}
        if isinstance(extractor, FeatureExtractor):
            self._extractors[extractor.name] = extractor
        self._options = {name: dict(opts) for name, opts in (extractor_options or {}).items()}
        for name in self._options:
            if name not in extractor_names():
                raise ValueError(f"options given for unknown feature extractor {name!r}; expected one of "
                                 f"{extractor_names()}")
        self.device = torch.device(device)
        self.batch_size, self.seed = batch_size, seed
        self.generator, self.progress = generator, progress
        self.feature_cache = feature_cache
        self._features: dict[tuple[str, str], Features] = {}
        self._samples: dict[str, torch.Tensor] = {}
        # what a metric chose that its values cannot say (e.g. which class histogram ``modes`` compared with);
        # ``run_metrics`` empties it before each metric and stores it with that metric's result
        self.notes: dict[str, str] = {}

    def note(self, key: str, text: str) -> None:
        """Record ``key: text`` with the result of the metric being computed."""
        self.notes[key] = text

    def has_extractor(self, name: str) -> bool:
        return name in self._extractors

    @property
    def num_gen(self) -> int:
        return self.fake.count

    @property
    def extractor(self) -> FeatureExtractor:
        """The context's own extractor (see the class docstring)."""
        return self.extractor_for(self.default_extractor)

    def extractor_for(self, name: str | None = None) -> FeatureExtractor:
        """The extractor registered as ``name`` (default: the context's own), built on first use."""
        name = name or self.default_extractor
        if name not in self._extractors:
            self._extractors[name] = get_extractor(name, self.device, **self._options.get(name, {}))
        return self._extractors[name]

    def sample_set(self, which: str) -> SampleSet:
        if which not in ("real", "fake"):
            raise ValueError(f"which must be 'real' or 'fake', got {which!r}")
        s = self.fake if which == "fake" else self.real
        if s is None:
            raise ValueError("this metric compares with real data: pass --real DATASET (or the run's dataset)")
        return s

    def features(self, which: str, extractor: str | None = None) -> Features:
        """Features of all ``which`` samples under extractor ``extractor`` (default: the context's own), cached.

        Looked up in this context, then on the sample set (a dataset's features are kept there per extractor, so
        contexts sharing the set compute them once), then for the reals in :attr:`feature_cache`; else computed.
        """
        name = extractor or self.default_extractor
        if (name, which) not in self._features:
            s = self.sample_set(which)
            if s.info.get("kind") == "toy":
                raise ValueError(f"{s.description}: toy point sets have no image features; measure them with the "
                                 "'modes' metric")
            self._features[(name, which)] = self._lookup_or_compute(s, which, self.extractor_for(name))
        return self._features[(name, which)]

    def _lookup_or_compute(self, s: SampleSet, which: str, ex: FeatureExtractor) -> Features:
        ident = json.dumps(extractor_identity(ex), sort_keys=True)
        if s.feature_memo is not None and ident in s.feature_memo:
            return s.feature_memo[ident]
        cache, key = (self.feature_cache if which == "real" else None), ""
        if cache is not None:
            key, _ = content_key(s.batches(self.batch_size), s.preprocessing(), ex)
            cached = cache.load(key, s.count)
            if cached is not None:
                return s.remember(ident, cached)
        parts = [ex(b) for b in tqdm(s.batches(self.batch_size), total=-(-s.count // self.batch_size),
                                     desc=f"{ex.name} features ({which})", disable=not self.progress, leave=False)]
        feats = Features.concat(parts)
        if cache is not None:
            cache.save(key, feats, {"description": s.description, "count": s.count, "preprocessing": s.preprocessing(),
                                    "extractor": ex.describe()})
        return s.remember(ident, feats)

    def cache_features(self, which: str, features: Features, extractor: str | None = None) -> None:
        """Reuse features computed earlier for the same samples with the same extractor (the monitor's reals)."""
        self.sample_set(which)
        self._features[(extractor or self.default_extractor, which)] = features

    def cached_features(self, which: str, extractor: str | None = None) -> Features | None:
        return self._features.get((extractor or self.default_extractor, which))

    def samples(self, which: str) -> torch.Tensor:
        """All ``which`` samples as one tensor ``[N, C, H, W]`` (cached; for metrics on raw points)."""
        if which not in self._samples:
            s = self.sample_set(which)
            self._samples[which] = torch.cat(list(s.batches(self.batch_size)))
        return self._samples[which]
