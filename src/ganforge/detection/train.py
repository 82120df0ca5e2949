"""Training a detector in named stages (Wang et al. 2020 for the classifier and augmentation; Frank et al. 2020 for
spectrum standardisation; Guo et al. 2017 for calibration):

1. ``split``: every source (the reals and each fake source) is split at random (seeded) into train / calibration /
   test (:class:`Sources`).
2. ``fit_normalisers``: per-frequency mean and standard deviation of the pooled log spectra of up to
   ``stats_images`` training images (half real, half fake, central patch) are installed in the network; the
   processing head's JPEG recogniser is fitted on augmented training images (``ganforge.detection.processing``).
3. ``fit``: each step draws ``batch / 2`` real and ``batch / 2`` fake training images (each fake from a source chosen
   uniformly, so a large source does not drown a small one), augments them, and takes one Adam step on the binary
   cross-entropy (fake = 1), plus the binary cross-entropy of the processing head's probed steps (resize, blur)
   against the augmentation's record of what it applied.
4. ``place_thresholds``: the calibration reals and fakes are scored as stored and once per processing cell, and each
   cell's threshold is placed by the one rule of ``ganforge.detection.thresholds``.
5. ``calibrate``: the temperature is fitted on the calibration split (reals and generated fakes; simulated fakes, a
   training aid, are left out when there are others).
6. ``report``: NLL and ECE on the test split (the same sources) before and after, AUC / AP / accuracy on the whole
   test split, thresholds and what each costs in calibration reals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.detection.calibration import calibrate
from ganforge.detection.config import DetectorTrainConfig
from ganforge.detection.data import Augment, ImageSet, inference_view, to_tensor
from ganforge.detection.evaluate import summarize
from ganforge.detection.predict import score_arrays
from ganforge.detection.processing import fit_jpeg_recogniser
from ganforge.detection.thresholds import (
    cell_real_fpr,
    fewest_errors_threshold,
    scores_and_cells,
    set_cell_thresholds,
)
from ganforge.models.detector import Detector

__all__ = ["DetectorTrainConfig", "Sources", "Split", "fewest_errors_threshold", "infer_channels",
           "set_cell_thresholds", "split_indices", "spectrum_stats", "train_detector"]


@dataclass
class Split:
    """Index lists into one source for the three roles."""

    train: np.ndarray
    calib: np.ndarray
    test: np.ndarray


def split_indices(n: int, calib_fraction: float, test_fraction: float, rng: np.random.Generator, name: str) -> Split:
    """Random disjoint train / calibration / test indices; every part gets at least one image."""
    n_calib, n_test = max(1, round(n * calib_fraction)), max(1, round(n * test_fraction))
    if n - n_calib - n_test < 1:
        raise ValueError(f"{name}: {n} image(s) are too few to split into train, calibration and test (need >= 3)")
    perm = rng.permutation(n)
    return Split(perm[n_calib + n_test :], perm[:n_calib], perm[n_calib : n_calib + n_test])


def infer_channels(sets: list[ImageSet]) -> int:
    """3 if any image has colour (3 or 4 channels), else 1."""
    return 3 if any(im.shape[2] >= 3 for s in sets for im in s.images) else 1


@dataclass
class Sources:
    """The images of every source with ``channels`` channels (index 0: the reals, then each fake source), their
    splits, names and which fake sources are simulated."""

    images: list[list[np.ndarray]]
    splits: list[Split]
    names: list[str]
    simulated: list[bool]
    channels: int

    def role(self, k: int, role: str) -> list[np.ndarray]:
        """The images of source ``k`` in split ``role`` ("train", "calib" or "test")."""
        return [self.images[k][i] for i in getattr(self.splits[k], role)]

    def held_out(self, role: str, fakes: list[int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The reals of split ``role``, then the fakes of the sources ``fakes``; labels and source (0: real)."""
        imgs, src = [], []
        for k in [0, *fakes]:
            part = self.role(k, role)
            imgs += part
            src += [k] * len(part)
        return imgs, (np.array(src) > 0).astype(int), np.array(src)

    @property
    def generated(self) -> list[int]:
        """Fake sources the temperature is fitted on: the generated ones, or every fake source if all simulated."""
        fakes = range(1, len(self.images))
        return [k for k in fakes if not self.simulated[k]] or list(fakes)


def split(real: ImageSet, fakes: list[ImageSet], cfg: DetectorTrainConfig, rng: np.random.Generator) -> Sources:
    """Stage 1: check the sources, convert channels, split each into train / calibration / test."""
    if not fakes:
        raise ValueError("need at least one source of fake images")
    for s in [real, *fakes]:
        if len(s) == 0:
            raise ValueError(f"{s.source}: no readable images")
    channels = cfg.channels or infer_channels([real, *fakes])
    images = [s.converted(channels).images for s in [real, *fakes]]
    splits = [split_indices(len(im), cfg.calib_fraction, cfg.test_fraction, rng, s.source)
              for im, s in zip(images, [real, *fakes], strict=True)]
    return Sources(images, splits, [s.source for s in [real, *fakes]], [False] + [f.simulated for f in fakes],
                   channels)


@torch.no_grad()
def spectrum_stats(net: Detector, images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frequency mean and std ``[2 * spec_c, S, S]`` of ``net.spectrum_features`` over the central patches of
    ``images``. The std is floored at 1e-3 so frequencies that never vary (e.g. constant borders) do not divide by
    zero."""
    feats = []
    for start in range(0, len(images), 128):
        chunk = [inference_view(a, net.crop, net.channels) for a in images[start : start + 128]]
        feats.append(net.spectrum_features(to_tensor(chunk)))
    f = torch.cat(feats)  # [N, 2*spec_c, S, S]
    return f.mean(dim=0), f.std(dim=0).clamp_min(1e-3)


def fit_normalisers(net: Detector, data: Sources, augment: Augment, cfg: DetectorTrainConfig,
                    rng: np.random.Generator) -> None:
    """Stage 2: spectrum statistics on up to ``stats_images`` training images (half real, the rest shared by the
    fake sources), then the JPEG recogniser if the processing head has one."""
    half, n_fake = cfg.stats_images // 2, len(data.images) - 1
    picked = []
    for k in range(len(data.images)):
        train = data.splits[k].train
        m = min(half if k == 0 else half // n_fake + 1, len(train))
        picked += [data.images[k][i] for i in rng.choice(train, m, replace=False)]
    net.set_spectrum_stats(*spectrum_stats(net, picked))
    if net.proc_head.jpeg is not None:
        pools = [data.role(k, "train") for k in range(len(data.images))]
        fit_jpeg_recogniser(net, pools, augment, cfg.stats_images, rng)


def _train_step(net: Detector, opt: torch.optim.Optimizer, drawn: list[tuple[np.ndarray, dict]],
                labels: torch.Tensor) -> float:
    """One Adam step on the detection loss plus the processing probe's loss; returns the loss."""
    x = to_tensor([d[0] for d in drawn]).to(labels.device)
    scores, probed = net.training_parts(x)  # [batch], [batch, probed steps]
    loss = F.binary_cross_entropy_with_logits(scores, labels)
    if probed.shape[1]:
        done = torch.tensor([[d[1][s] for s in net.proc_head.learned] for d in drawn], dtype=probed.dtype)
        loss = loss + F.binary_cross_entropy_with_logits(probed, done.to(labels.device))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def fit(net: Detector, data: Sources, augment: Augment, cfg: DetectorTrainConfig, rng: np.random.Generator,
        progress: bool) -> list[float]:
    """Stage 3: ``cfg.steps`` balanced, augmented steps; returns the losses."""
    net.train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    b = cfg.batch // 2
    labels = torch.cat([torch.zeros(b), torch.ones(b)]).to(cfg.device)
    real, n_fake = data.images[0], len(data.images) - 1
    bar = tqdm(range(cfg.steps), desc="training detector", unit="step", disable=not progress)
    losses = []
    for step in bar:
        drawn = [augment.apply(real[i], cfg.crop, rng) for i in rng.choice(data.splits[0].train, b)]
        for k in 1 + rng.integers(n_fake, size=b):
            drawn.append(augment.apply(data.images[k][rng.choice(data.splits[k].train)], cfg.crop, rng))
        losses.append(_train_step(net, opt, drawn, labels))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    net.eval()
    return losses


def place_thresholds(net: Detector, data: Sources, augment: Augment, cfg: DetectorTrainConfig,
                     rng: np.random.Generator) -> tuple[dict[str, float], dict[str, float | None]]:
    """Stage 4: every cell's threshold by the one rule; returns the thresholds and what each costs in calibration
    reals."""
    real, real_cells = scores_and_cells(net, data.role(0, "calib"), augment, rng)
    calib_fakes = [im for k in range(1, len(data.images)) for im in data.role(k, "calib")]
    fake, fake_cells = scores_and_cells(net, calib_fakes, augment, rng)
    thresholds = set_cell_thresholds(net, real, real_cells, fake, fake_cells, cfg.real_fpr, cfg.max_real_fpr)
    return thresholds, cell_real_fpr(thresholds, real, real_cells)


def calibrate_temperature(net: Detector, data: Sources) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Stage 5: fit the temperature on the calibration split's reals and generated fakes, report it on the test
    split's (simulated fakes are a training aid; near copies of the reals, they would soften every probability,
    BENCHMARKS.md run N); returns the report and the whole test split's logits and labels."""
    calib_imgs, calib_y, _ = data.held_out("calib", data.generated)
    calib_logits = score_arrays(net, calib_imgs)
    test_imgs, test_y, test_src = data.held_out("test", list(range(1, len(data.images))))
    test_logits = score_arrays(net, test_imgs)
    gen = np.isin(test_src, [0, *data.generated])
    cal = calibrate(calib_logits, calib_y, test_logits[gen], test_y[gen])
    net.set_temperature(cal["temperature"])
    return cal, test_logits, test_y


def report(data: Sources, losses: list[float], thresholds: dict[str, float], cell_fpr: dict[str, float | None],
           cal: dict[str, Any], test_logits: np.ndarray, test_y: np.ndarray) -> dict[str, Any]:
    """Stage 6: the JSON-able training report."""
    counts = [len(im) for im in data.images]
    return {
        "channels": data.channels,
        "sources": {"real": {"source": data.names[0], "images": counts[0]},
                    "fake": [{"source": n, "images": c} for n, c in zip(data.names[1:], counts[1:], strict=True)]},
        "splits": {"train": sum(len(s.train) for s in data.splits), "calib": len(data.held_out("calib",
                   data.generated)[1]), "test": len(test_y)},
        "final_loss": float(np.mean(losses[-50:])),
        "processing_thresholds": thresholds,
        "processing_real_fpr": cell_fpr,
        "calibration": cal,
        "calibrated_on": [data.names[k] for k in data.generated],
        "test_uncalibrated": summarize(test_logits, test_y, 1.0),
        "test": summarize(test_logits, test_y, cal["temperature"]),
    }


def train_detector(
    real: ImageSet, fakes: list[ImageSet], cfg: DetectorTrainConfig, progress: bool = True
) -> tuple[Detector, dict[str, Any]]:
    """Train, calibrate and evaluate a detector by the stages of the module docstring; returns it (on
    ``cfg.device``) and a JSON-able report."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = split(real, fakes, cfg, rng)
    augment = Augment(**cfg.augment)
    net = Detector(channels=data.channels, crop=cfg.crop, **cfg.model)
    fit_normalisers(net, data, augment, cfg, rng)
    net = net.to(cfg.device)
    losses = fit(net, data, augment, cfg, rng, progress)
    thresholds, cell_fpr = place_thresholds(net, data, augment, cfg, np.random.default_rng(cfg.seed + 1))
    cal, test_logits, test_y = calibrate_temperature(net, data)
    return net, report(data, losses, thresholds, cell_fpr, cal, test_logits, test_y)
