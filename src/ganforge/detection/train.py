"""Training a detector: splits, spectrum statistics, balanced augmented batches, then temperature scaling.

Procedure (Wang et al. 2020 for the classifier and augmentation; Frank et al. 2020 for spectrum standardisation;
Guo et al. 2017 for calibration):

1. Every source (the real set and each fake source) is split at random (seeded) into train / calibration / test.
   The held-out splits are scored with the deterministic test view (the calibration reals also augmented, step 4).
2. Per-frequency mean and standard deviation of the pooled log spectra of up to ``stats_images`` training images
   (half real, half fake, test view) are installed in the network; with a JPEG step in the processing head, its
   recogniser (a logistic model on the DCT-lattice fit) is fitted on augmented training images
   (``_fit_jpeg_recogniser``).
3. Each step draws ``batch / 2`` real and ``batch / 2`` fake training images (each fake from a source chosen
   uniformly, so a large source does not drown a small one), augments them, and takes one Adam step on the binary
   cross-entropy (fake = 1), plus the binary cross-entropy of the processing head's other steps (resize, blur)
   against the augmentation's record of what it applied.
4. Thresholds. With a processing head: every calibration real is scored as stored and once per processing cell
   (each combination of the head's steps forced on or off), and each cell's threshold is put where ``real_fpr`` of
   its reals score above it; with ``threshold="fewest-errors"`` (the default) the calibration fakes are scored the
   same way, and a cell where they overlap the reals takes the lower threshold with the fewest errors, down to
   ``max_real_fpr`` of its reals (``set_cell_thresholds``). Without one: a single threshold from the calibration
   reals as stored and once augmented (``set_real_fpr``).
5. The temperature is fitted on the calibration split (reals and generated fakes; simulated fakes, a training
   aid, are left out when there are others); the report gives NLL and ECE on the test split (the same sources)
   before and after, and AUC / AP / accuracy on the whole test split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.detection.calibration import calibrate
from ganforge.detection.data import VIEWS, Augment, ImageSet, inference_view, to_tensor
from ganforge.detection.evaluate import summarize
from ganforge.detection.predict import score_arrays
from ganforge.models.detector import DEFAULT_PROCESSING, Detector, cell_index, parse_processing

THRESHOLD_RULES = ("real-fpr", "fewest-errors")


@dataclass
class DetectorTrainConfig:
    """Options of ``train_detector``; unknown keys are errors (``from_dict``)."""

    crop: int = 64
    channels: int | None = None  # None: 3 if any training image has colour, else 1
    steps: int = 1000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    calib_fraction: float = 0.15
    test_fraction: float = 0.15
    stats_images: int = 512
    view: str = "center-crop"
    real_fpr: float | None = 0.01  # None: keep the threshold where training put it
    threshold: str = "fewest-errors"  # or "real-fpr"; see set_cell_thresholds
    max_real_fpr: float = 0.03  # fewest-errors never puts more calibration reals of a cell above the threshold
    seed: int = 0
    device: str = "cpu"
    augment: dict[str, Any] = field(default_factory=dict)  # Augment fields
    model: dict[str, Any] = field(default_factory=dict)  # Detector kwargs other than channels and crop

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(self.crop >= 8, f"crop must be >= 8, got {self.crop}")
        need(self.channels in (None, 1, 3), f"channels must be 1 or 3, got {self.channels}")
        need(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        need(self.batch >= 2 and self.batch % 2 == 0, f"batch must be an even number >= 2, got {self.batch}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(0 < self.calib_fraction < 1 and 0 < self.test_fraction < 1
             and self.calib_fraction + self.test_fraction < 1,
             f"calib_fraction and test_fraction must be in (0, 1) with sum < 1, got {self.calib_fraction}, "
             f"{self.test_fraction}")
        need(self.real_fpr is None or 0 < self.real_fpr < 0.5,
             f"real_fpr must be in (0, 0.5) or None, got {self.real_fpr}")
        need(self.real_fpr is None or self.real_fpr <= self.max_real_fpr < 0.5,
             f"max_real_fpr must be in [real_fpr, 0.5), got {self.max_real_fpr} with real_fpr {self.real_fpr}")
        need(self.threshold in THRESHOLD_RULES,
             f"threshold must be one of {THRESHOLD_RULES}, got {self.threshold!r}")
        need(self.stats_images >= 2, f"stats_images must be >= 2, got {self.stats_images}")
        need(self.view in VIEWS, f"view must be one of {VIEWS}, got {self.view!r}")
        bad = {"channels", "crop"} & set(self.model)
        need(not bad, f"set {sorted(bad)} as top-level options, not inside model")
        aug = Augment(**self.augment)  # validates names and ranges
        for step in parse_processing(self.model.get("processing", DEFAULT_PROCESSING)):
            prob = getattr(aug, f"{step}_prob")
            need(0 < prob < 1, f"the detector's processing head learns to recognise {step!r}, so the augmentation "
                 f"must apply it to some images and not others ({step}_prob in (0, 1)), got {prob}; drop it from "
                 "model.processing or change the probability")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorTrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown detector training option(s): {', '.join(unknown)}")
        return cls(**d)


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


@torch.no_grad()
def spectrum_stats(net: Detector, images: list[np.ndarray], view: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frequency mean and std ``[2 * spec_c, S, S]`` of ``net.spectrum_features`` over ``images``.

    The std is floored at 1e-3 so frequencies that never vary (e.g. constant borders) do not divide by zero.
    """
    feats = []
    for start in range(0, len(images), 128):
        chunk = [inference_view(a, net.crop, net.channels, view) for a in images[start : start + 128]]
        feats.append(net.spectrum_features(to_tensor(chunk)))
    f = torch.cat(feats)  # [N, 2*spec_c, S, S]
    return f.mean(dim=0), f.std(dim=0).clamp_min(1e-3)


@torch.no_grad()
def set_real_fpr(net: Detector, real_logits: np.ndarray, fpr: float) -> float:
    """Move the decision threshold (logit 0, probability 0.5) to where a fraction ``fpr`` of held-out *real* images
    score above it, by subtracting that logit quantile from the head's bias; returns the shift.

    Why: training puts the threshold between the reals and the fakes it saw. Fakes of a generator it never saw
    usually score between the two (Wang et al. 2020: AP 98-99 % but accuracy 68-87 % at 0.5), and temperature
    scaling cannot move a threshold. The real class is the one the detector knows, so the threshold is set by a
    false-positive rate on reals (Neyman-Pearson), and the temperature is fitted afterwards on the shifted logits.
    """
    if len(real_logits) == 0:
        raise ValueError("need held-out real images to set the threshold")
    shift = float(np.quantile(real_logits, 1.0 - fpr))
    net.head.bias.sub_(shift)
    return shift


def cell_name(steps: tuple[str, ...], cell: int) -> str:
    """``("jpeg", "resize"), 3`` -> ``"jpeg+resize"``; cell 0 is ``"none"``."""
    return "+".join(s for j, s in enumerate(steps) if cell >> j & 1) or "none"


def fewest_errors_threshold(real: np.ndarray, fake: np.ndarray) -> float:
    """The lowest threshold at which ``P(real >= t) + P(fake < t)`` is smallest (reals and fakes weighted equally,
    as the accuracy on a balanced test set weighs them); a score ``>= t`` is called fake."""
    if len(real) == 0 or len(fake) == 0:
        raise ValueError(f"need real and fake scores, got {len(real)} and {len(fake)}")
    cand = np.unique(np.r_[real, fake])  # sorted
    fp = len(real) - np.searchsorted(np.sort(real), cand, side="left")  # reals >= t
    fn = np.searchsorted(np.sort(fake), cand, side="left")  # fakes < t
    return float(cand[int(np.argmin(fp / len(real) + fn / len(fake)))])


@torch.no_grad()
def set_cell_thresholds(
    net: Detector, real_scores: np.ndarray, cells: np.ndarray, fpr: float, min_count: int = 50,
    fake_scores: np.ndarray | None = None, fake_cells: np.ndarray | None = None, max_fpr: float | None = None,
) -> dict[str, float]:
    """Put each processing cell's threshold where a fraction ``fpr`` of the held-out reals processed that way score
    above it, or lower where held-out fakes show that a lower one makes fewer errors; returns ``{cell name:
    threshold}``.

    ``real_scores`` are scores before any threshold (``forward_parts``), ``cells`` their cell indices
    (``ganforge.models.detector.cell_index``). A cell with fewer than ``min_count`` reals cannot place a quantile
    reliably and takes the quantile of all reals instead. With ``fake_scores`` / ``fake_cells`` (held-out fakes of
    the training sources, processed the same ways), a cell with at least ``min_count`` reals and fakes takes the
    lower of its quantile and ``fewest_errors_threshold``, but never one that puts more than ``max_fpr`` of its
    reals above it. Where a processing step wipes out the traces (a halved, re-compressed image) reals and fakes
    overlap: a 1 % real false-positive rate then calls most fakes real, and the threshold with the fewest errors
    on a balanced set lies lower. Where they are apart the quantile is lower and stays. The bound: the seen fakes
    stand in for generators the detector never saw, which may overlap less (then the lowering only costs reals)
    or more; ``max_fpr`` caps what a combination may cost in reals (run M in BENCHMARKS.md). Cells that differ
    only in a JPEG applied before a resize share the larger threshold (the head cannot see that JPEG). See
    ``set_real_fpr`` for why the real class sets it.
    """
    if net.proc_head is None:
        raise ValueError("this detector has no processing head; use set_real_fpr")
    if len(real_scores) == 0 or len(real_scores) != len(cells):
        raise ValueError(f"need held-out real scores with one cell each, got {len(real_scores)} and {len(cells)}")
    if (fake_scores is None) != (fake_cells is None) or (
            fake_scores is not None and fake_cells is not None and len(fake_scores) != len(fake_cells)):
        raise ValueError("need held-out fake scores with one cell each, or neither")
    pooled = float(np.quantile(real_scores, 1.0 - fpr))
    thr = []
    for c in range(len(net.proc_thresholds)):
        own = real_scores[cells == c]
        if len(own) < min_count:
            thr.append(pooled)
            continue
        t = float(np.quantile(own, 1.0 - fpr))
        if fake_scores is not None and np.sum(fake_cells == c) >= min_count:
            lowest = float(np.quantile(own, 1.0 - max_fpr)) if max_fpr is not None else -np.inf
            t = min(t, max(fewest_errors_threshold(own, fake_scores[fake_cells == c]), lowest))
        thr.append(t)
    steps = net.proc_steps
    if "jpeg" in steps and "resize" in steps:
        # After a resize the JPEG lattice is gone, so the head cannot tell the two cells apart: both take the
        # larger threshold, the one that keeps more of the reals of either history on the real side.
        j, r = 1 << steps.index("jpeg"), 1 << steps.index("resize")
        for c in range(len(thr)):
            if c & r and not c & j:
                thr[c] = thr[c | j] = max(thr[c], thr[c | j])
    net.set_processing_thresholds(torch.tensor(thr, dtype=net.proc_thresholds.dtype))
    return {cell_name(net.proc_steps, c): t for c, t in enumerate(thr)}


@torch.no_grad()
def _scores_and_cells(
    net: Detector, images: list[np.ndarray], augment: Augment, crop: int, view: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scores before any threshold, and cells, of ``images`` as stored (cell 0) and once per processing cell."""
    patches = list(images)  # as stored: score_arrays brings them to the test view
    cells = [0] * len(images)
    k = len(net.proc_steps)
    for c in range(2**k):
        force = {step: bool(c >> j & 1) for j, step in enumerate(net.proc_steps)}
        for a in images:
            patch, applied = augment.apply(a, crop, rng, force)
            patches.append(patch)
            cells.append(cell_index([applied[s] for s in net.proc_steps]))
    return score_arrays(net, patches, view, raw=True), np.array(cells)


def _fit_jpeg_recogniser(
    net: Detector, real_imgs: list[np.ndarray], real_train: np.ndarray, fake_imgs: list[list[np.ndarray]],
    fake_splits: list[Split], augment: Augment, cfg: DetectorTrainConfig, rng: np.random.Generator,
) -> None:
    """Fit the processing head's JPEG recogniser on ``stats_images`` augmented training images (half real, half
    fake; at least 128), half of them forced to keep their size, where the lattice can show."""
    patches, jpeg_done, resized = [], [], []
    for j in range(max(cfg.stats_images, 128)):
        if j % 2 == 0:
            src = real_imgs[rng.choice(real_train)]
        else:
            k = int(rng.integers(len(fake_imgs)))
            src = fake_imgs[k][rng.choice(fake_splits[k].train)]
        patch, applied = augment.apply(src, cfg.crop, rng, {"resize": False} if j // 2 % 2 == 0 else None)
        patches.append(patch)
        jpeg_done.append(applied["jpeg"])
        resized.append(applied["resize"])
    net.proc_head.fit_jpeg(to_tensor(patches), torch.tensor(jpeg_done), torch.tensor(resized))


def train_detector(
    real: ImageSet, fakes: list[ImageSet], cfg: DetectorTrainConfig, progress: bool = True
) -> tuple[Detector, dict[str, Any]]:
    """Train, calibrate and evaluate a detector; returns it (on ``cfg.device``) and a JSON-able report."""
    if not fakes:
        raise ValueError("need at least one source of fake images")
    for s in [real, *fakes]:
        if len(s) == 0:
            raise ValueError(f"{s.source}: no readable images")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    channels = cfg.channels or infer_channels([real, *fakes])
    augment = Augment(**cfg.augment)
    real_imgs = real.converted(channels).images
    fake_imgs = [f.converted(channels).images for f in fakes]
    real_split = split_indices(len(real_imgs), cfg.calib_fraction, cfg.test_fraction, rng, real.source)
    fake_splits = [split_indices(len(f), cfg.calib_fraction, cfg.test_fraction, rng, s.source)
                   for f, s in zip(fake_imgs, fakes, strict=True)]

    net = Detector(channels=channels, crop=cfg.crop, **cfg.model)
    half = cfg.stats_images // 2
    stats_real = [real_imgs[i] for i in rng.choice(real_split.train, min(half, len(real_split.train)), replace=False)]
    stats_fake = [fake_imgs[k][i] for k in range(len(fakes))
                  for i in rng.choice(fake_splits[k].train, min(half // len(fakes) + 1, len(fake_splits[k].train)),
                                      replace=False)]
    net.set_spectrum_stats(*spectrum_stats(net, stats_real + stats_fake, cfg.view))
    if net.proc_head is not None and net.proc_head.jpeg is not None:
        _fit_jpeg_recogniser(net, real_imgs, real_split.train, fake_imgs, fake_splits, augment, cfg, rng)
    net = net.to(cfg.device).train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)

    b = cfg.batch // 2
    labels = torch.cat([torch.zeros(b), torch.ones(b)]).to(cfg.device)
    bar = tqdm(range(cfg.steps), desc="training detector", unit="step", disable=not progress)
    losses = []
    for step in bar:
        drawn = [augment.apply(real_imgs[i], cfg.crop, rng) for i in rng.choice(real_split.train, b)]
        for k in rng.integers(len(fakes), size=b):
            drawn.append(augment.apply(fake_imgs[k][rng.choice(fake_splits[k].train)], cfg.crop, rng))
        x = to_tensor([d[0] for d in drawn]).to(cfg.device)
        scores, proc = net.forward_parts(x, learned_only=True)  # [batch], [batch, steps learned here]
        loss = F.binary_cross_entropy_with_logits(scores, labels)
        if proc is not None and proc.shape[1]:
            done = torch.tensor([[d[1][s] for s in net.proc_head.others] for d in drawn], dtype=proc.dtype)
            loss = loss + F.binary_cross_entropy_with_logits(proc, done.to(cfg.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    net.eval()

    def held_out(role: str, sources: list[int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Images of the split ``role``: the reals, then the fakes of ``sources``; labels and source (-1: real)."""
        imgs = [real_imgs[i] for i in getattr(real_split, role)]
        src = [-1] * len(imgs)
        for k in sources:
            part = [fake_imgs[k][i] for i in getattr(fake_splits[k], role)]
            imgs += part
            src += [k] * len(part)
        return imgs, (np.array(src) >= 0).astype(int), np.array(src)

    aug_rng = np.random.default_rng(cfg.seed + 1)
    shift, thresholds, cell_fpr = 0.0, None, None
    if cfg.real_fpr is not None:
        calib_reals = [real_imgs[i] for i in real_split.calib]
        if net.proc_head is not None:
            scores, cells = _scores_and_cells(net, calib_reals, augment, cfg.crop, cfg.view, aug_rng)
            fake_scores = fake_cells = None
            if cfg.threshold == "fewest-errors":
                calib_fakes = [fake_imgs[k][i] for k in range(len(fakes)) for i in fake_splits[k].calib]
                fake_scores, fake_cells = _scores_and_cells(net, calib_fakes, augment, cfg.crop, cfg.view, aug_rng)
            thresholds = set_cell_thresholds(net, scores, cells, cfg.real_fpr, fake_scores=fake_scores,
                                             fake_cells=fake_cells, max_fpr=cfg.max_real_fpr)
            # What each cell's threshold costs on its calibration reals (fewest-errors may give up more than
            # real_fpr where the processing leaves reals and fakes overlapping).
            cell_fpr = {name: float(np.mean(scores[cells == c] >= t)) if np.any(cells == c) else None
                        for c, (name, t) in enumerate(thresholds.items())}
        else:
            # Reals as the detector will meet them: as stored and after the training augmentation.
            processed = [augment(a, cfg.crop, aug_rng) for a in calib_reals]
            shift = set_real_fpr(net, score_arrays(net, calib_reals + processed, cfg.view), cfg.real_fpr)
    # The temperature is fitted on generated fakes only: simulated ones are a training aid, and where they are
    # near copies of the reals they would soften every probability (run N in BENCHMARKS.md).
    generated = [k for k, f in enumerate(fakes) if not f.simulated] or list(range(len(fakes)))
    calib_imgs, calib_y, _ = held_out("calib", generated)
    calib_logits = score_arrays(net, calib_imgs, cfg.view)
    test_imgs, test_y, test_src = held_out("test", list(range(len(fakes))))
    test_logits = score_arrays(net, test_imgs, cfg.view)
    gen_test = np.isin(test_src, [-1, *generated])
    cal = calibrate(calib_logits, calib_y, test_logits[gen_test], test_y[gen_test])
    net.set_temperature(cal["temperature"])
    report = {
        "channels": channels,
        "sources": {"real": {"source": real.source, "images": len(real)},
                    "fake": [{"source": f.source, "images": len(f)} for f in fakes]},
        "splits": {"train": len(real_split.train) + sum(len(s.train) for s in fake_splits),
                   "calib": len(calib_y), "test": len(test_y)},
        "final_loss": float(np.mean(losses[-50:])),
        "threshold_shift": shift,
        "processing_thresholds": thresholds,
        "processing_real_fpr": cell_fpr,
        "calibration": cal,
        "calibrated_on": [fakes[k].source for k in generated],
        "test_uncalibrated": summarize(test_logits, test_y, 1.0),
        "test": summarize(test_logits, test_y, cal["temperature"]),
    }
    return net, report
