"""UNIT on MNIST <-> USPS: content preservation and digits-FID after a fixed wall-clock training budget.

The domain pair of the UNIT paper's domain-adaptation experiment (Liu, Breuel & Kautz 2017) and of CoGAN,
trained here as pure unpaired translation (no labels are used in training):

- domain A: the MNIST test split (10,000 digits, 28x28; the only MNIST images in ../shared/data);
- domain B: the USPS training split (7,291 digits, 16x16 resized to 28x28, Lanczos);
- evaluation: the 2,007 USPS *test* digits, never seen in training, translated B -> A (USPS -> MNIST style).

Measures (one JSON line each):
- ``classifier``: the digits classifier (``ganforge.metrics`` ``digits`` extractor: the packaged one, or, if none is
  packaged yet, one trained here by ``ganforge.metrics.train_classifier`` on the offline ``digits`` set of 5,000 MNIST
  *training* digits) and its accuracy on the MNIST test split.
- ``baseline``: that classifier on the raw USPS test digits, and their digits-FID to MNIST (what translation has to
  beat).
- ``unit``: after training, accuracy on translated USPS test digits against their USPS labels (content preservation,
  the direction the UNIT paper scores), digits-FID of the translated digits to the MNIST test split, digits-FID of
  translated MNIST digits (first 2,007) to the USPS test split, and the USPS cycle error (L1, [-1, 1] scale).
  ``selection_usps_train_accuracy`` is the same accuracy on the 7,291 USPS *training* digits (translated without
  their labels, which training never uses): settings are chosen on it, so the test figure stays held out.

``--resolution 32`` trains on both domains resized to 32 px (as PyTorch-GAN's UNIT needs); scoring then resizes the
28 px digits to 32 and the translations back to 28. ``--score-translations NPZ`` scores another system's
translations of the same digits (the peer's, made in its own venv), so both are measured by one classifier.

Digits-FID: Fréchet distance between Gaussians fitted to the classifier's pooled features (``ganforge.metrics.fid``).

The peer (PyTorch-GAN ``implementations/unit``, run beside ganforge in its own venv with ``torch==2.14.1
torchvision==0.29.1``, never committed), as BENCHMARKS.md runs it:

1. ``--export-peer-data DIR/data/digits`` writes the benchmark's digits as RGB PNGs in the peer's layout
   (``train/A`` the MNIST test split, ``train/B`` the USPS training digits at 28 px, ``test/A`` the first 2,007 MNIST
   digits, ``test/B`` the USPS test digits; the peer reads ``test/*`` only for its sample grids).
2. From ``DIR/implementations/unit``: ``OMP_NUM_THREADS=1 python unit.py --dataset_name digits --batch_size 32
   --img_height 32 --img_width 32 --channels 3 --dim 16 --n_cpu 1 --checkpoint_interval 1`` (a checkpoint per epoch;
   the file times give the wall time).
3. With the peer's own ``Encoder`` / ``Generator`` classes, translate each epoch's checkpoint as the peer's test
   transform sees a digit: the PNG bicubic to 35 px, centre crop 32, the encoder's mean decoded (no noise), the 32 px
   output padded back into the 35 px frame with -1 and area-resized to 28, the mean of its RGB channels. Save
   ``usps2mnist`` (``test/B`` through E2 -> G1), ``train2mnist`` (``train/B``) and ``mnist2usps`` (``test/A`` through E1
   -> G2) in one ``.npz`` and score it with ``--score-translations``.

Usage (wrap long runs in the shared CPU lock)::

    flock /tmp/ganforge-cpu.lock python benchmarks/unit_mnist_usps.py --minutes 12 --out runs/bench-unit
    python benchmarks/unit_mnist_usps.py --eval runs/bench-unit/run/checkpoints/t00300s   # score a timed snapshot
    python benchmarks/unit_mnist_usps.py --eval CKPT --score-ema                         # ... and its G_ema
    python benchmarks/unit_mnist_usps.py --score-translations peer.npz                    # score a peer's output
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.data import GanDataset, load_dataset
from ganforge.losses.unit import cycle_error
from ganforge.metrics.digits import DigitsExtractor, packaged_classifier
from ganforge.metrics.features import quantize
from ganforge.metrics.fid import frechet_distance, gaussian_stats
from ganforge.train.config import PRECISIONS, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RES = 28  # the digits classifier's input size


def emit(record: dict) -> None:
    print(json.dumps({"bench": "unit_mnist_usps", **record}), flush=True)


def load_data(mnist_dir: Path, usps: Path) -> dict[str, GanDataset]:
    mnist = load_dataset(str(mnist_dir / "t10k-images-idx3-ubyte.gz"))
    return {
        "mnist": mnist,
        "usps_train": load_dataset(f"{usps}:train", resolution=RES, resize="stretch"),
        "usps_test": load_dataset(f"{usps}:test", resolution=RES, resize="stretch"),
    }


def digits_classifier(out: Path, weights: Path | None = None) -> DigitsExtractor:
    """``weights``, else the packaged digits classifier, else one trained once here (cached under ``out``) by the
    metrics helper."""
    if weights is not None:
        return DigitsExtractor(weights=weights)
    if (packaged_classifier() / "config.json").is_file():
        return DigitsExtractor()
    cached = out / "digits-classifier"
    if not (cached / "config.json").is_file():
        from ganforge.metrics.train_classifier import save_classifier, train_classifier

        net, record = train_classifier(load_dataset("digits"), epochs=15, progress=True)
        save_classifier(cached, net, record | {"note": "trained by benchmarks/unit_mnist_usps.py"})
    return DigitsExtractor(weights=cached)


@torch.no_grad()
def features(ext: DigitsExtractor, images: torch.Tensor, batch: int = 500):
    """Features of model-space images ``[N, 1, 28, 28]`` in [-1, 1] (quantised to uint8 like saved pictures)."""
    from ganforge.metrics.features import Features

    return Features.concat([ext.extract(quantize(images[i : i + batch])) for i in range(0, len(images), batch)])


def accuracy(feats, labels: torch.Tensor) -> float:
    return float((feats.logits.argmax(1) == labels).double().mean())


def fid(f1, f2) -> float:
    return frechet_distance(gaussian_stats(f1.pool), gaussian_stats(f2.pool))


def all_images(ds: GanDataset) -> torch.Tensor:
    return ds.batch(torch.arange(len(ds)))  # [N, 1, 28, 28] in [-1, 1]


@torch.no_grad()
def reference_features(ext: DigitsExtractor, data: dict[str, GanDataset]) -> dict:
    """Features of the real MNIST test and USPS test digits: extracted once per run, shared by every score."""
    return {name: features(ext, all_images(data[name])) for name in ("mnist", "usps_test")}


@torch.no_grad()
def evaluate(ext: DigitsExtractor, data: dict[str, GanDataset], refs: dict, b2a: Callable, a2b: Callable,
             batch: int = 250) -> dict:
    """Content preservation and digits-FIDs of a translator given as two functions on ``[N, 1, 28, 28]`` batches."""
    usps, usps_train = all_images(data["usps_test"]), all_images(data["usps_train"])
    mnist = all_images(data["mnist"])[: len(usps)]

    def run(f: Callable, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([f(x[i : i + batch]) for i in range(0, len(x), batch)])

    return score_translations(ext, data, refs, run(b2a, usps), run(b2a, usps_train), run(a2b, mnist))


@torch.no_grad()
def score_translations(ext: DigitsExtractor, data: dict[str, GanDataset], refs: dict, usps2mnist: torch.Tensor,
                       train2mnist: torch.Tensor, mnist2usps: torch.Tensor) -> dict:
    """Measures of translations ``[N, 1, 28, 28]`` in [-1, 1]: the USPS test digits to MNIST, the USPS training
    digits to MNIST (``selection_*``: where settings are chosen; their labels are never used in training) and the
    first 2,007 MNIST test digits to USPS."""
    f_t = features(ext, usps2mnist)
    return {
        "usps2mnist_accuracy": accuracy(f_t, data["usps_test"].labels),
        "selection_usps_train_accuracy": accuracy(features(ext, train2mnist), data["usps_train"].labels),
        "fid_usps2mnist_to_mnist": fid(f_t, refs["mnist"]),
        "fid_mnist2usps_to_usps": fid(features(ext, mnist2usps), refs["usps_test"]),
    }


def train_ganforge(args: argparse.Namespace, run_dir: Path):
    """Train UNIT through ``ganforge.train.Trainer`` for ``args.minutes`` of wall-clock time; returns the trainer.

    Every ``args.snapshot_every`` seconds a checkpoint ``checkpoints/t<seconds>s`` is written (and listed in
    ``snapshots.jsonl``) so the model can be scored at the same training time as another system (``--eval``).
    """
    from ganforge.train.loop import Trainer

    cfg = TrainConfig(
        model="unit", data=str(args.mnist / "t10k-images-idx3-ubyte.gz"), domain_b=f"{args.usps}:train",
        resolution=args.resolution, resize="stretch", batch=args.batch, lr_g=args.lr, lr_d=args.lr, betas=(0.5, 0.999),
        g_kwargs={"width": args.width, "n_res": args.n_res, "n_shared": 1, **json.loads(args.g_kwargs)},
        d_kwargs={"width": args.d_width, "n_layers": args.d_layers, "num_scales": args.d_scales,
                  "norm": args.d_norm},
        loss_kwargs=json.loads(args.loss_kwargs), xflip=args.xflip, translate=args.translate, seed=args.seed,
        device="cpu",
        threads=args.threads, outdir=str(run_dir.parent), kimg=args.kimg or 1e6, lr_rampdown=args.lr_rampdown,
        precision=args.precision, channels_last=args.channels_last, ema_kimg=args.ema_kimg,
    )
    trainer = Trainer.from_config(cfg, progress=False, run_dir=run_dir)
    start = time.time()
    next_snap = args.snapshot_every
    bar = tqdm(desc="ganforge UNIT", unit="step")

    def snapshot(seconds: float) -> None:
        path = trainer.save(tag=f"t{int(seconds):05d}s")
        with open(run_dir / "snapshots.jsonl", "a") as f:
            f.write(json.dumps({"checkpoint": str(path), "seconds": round(seconds, 1), "step": trainer.step}) + "\n")

    try:
        while (elapsed := time.time() - start) < args.minutes * 60 and trainer.nimg < cfg.kimg * 1000:
            if elapsed >= next_snap:
                snapshot(elapsed)
                next_snap += args.snapshot_every
            stats = trainer.train_step()
            bar.update(1)
            if trainer.step % 20 == 0:
                bar.set_postfix(G=f"{stats['loss/G']:.2f}", D=f"{stats['loss/D']:.2f}",
                                cyc=f"{stats['loss/cycle']:.3f}")
    except KeyboardInterrupt:
        print("interrupted: evaluating what was trained so far", flush=True)
    bar.close()
    snapshot(time.time() - start)
    trainer.write_grid()
    return trainer


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, size, size]``, bilinear with antialiasing (for downscaling)."""
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def at_resolution(G, direction: str) -> Callable:
    """``G.translate`` on 28 px digits for a G trained at another size: inputs resized 28 -> R, outputs R -> 28."""
    if G.resolution == RES:
        return lambda x: G.translate(x, direction)
    return lambda x: resized(G.translate(resized(x, G.resolution), direction), RES).clamp(-1, 1)


TRANSLATIONS = ("usps2mnist", "train2mnist", "mnist2usps")


def load_translations(path: Path, data: dict[str, GanDataset]) -> dict[str, torch.Tensor]:
    """Another system's translations from an ``.npz`` (``TRANSLATIONS``, each ``[N, 28, 28]`` in [-1, 1], N as the
    digits it translated) as ``[N, 1, 28, 28]`` tensors; a missing array or a wrong shape is an error naming both."""
    sizes = {"usps2mnist": len(data["usps_test"]), "train2mnist": len(data["usps_train"]),
             "mnist2usps": len(data["usps_test"])}
    with np.load(path) as arrays:
        out = {}
        for key in TRANSLATIONS:
            if key not in arrays:
                raise SystemExit(f"{path}: no array {key!r}; expected {', '.join(TRANSLATIONS)}")
            if arrays[key].shape != (sizes[key], RES, RES):
                raise SystemExit(f"{path}: {key} has shape {arrays[key].shape}, expected ({sizes[key]}, {RES}, {RES})")
            out[key] = torch.from_numpy(arrays[key]).float()[:, None]
    return out


def score(ext: DigitsExtractor, data: dict[str, GanDataset], refs: dict, G, record: dict,
          system: str = "ganforge") -> None:
    G = G.eval()
    result = evaluate(ext, data, refs, at_resolution(G, "b2a"), at_resolution(G, "a2b"))
    emit({"measure": "unit", "system": system, **record, "g_params": sum(p.numel() for p in G.parameters()),
          **result, "cycle_l1_usps": cycle_error(G, resized(all_images(data["usps_test"]), G.resolution), "b")})


def export_peer_data(data: dict[str, GanDataset], root: Path) -> None:
    """The digits the benchmark trains and scores on, as 28 px RGB PNGs under ``root/{train,test}/{A,B}`` (the layout
    of PyTorch-GAN's ``ImageDataset``), numbered in the benchmark's order so the peer's translations line up."""
    from PIL import Image

    parts = {"train/A": all_images(data["mnist"]), "train/B": all_images(data["usps_train"]),
             "test/A": all_images(data["mnist"])[: len(data["usps_test"])], "test/B": all_images(data["usps_test"])}
    for name, images in parts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        pixels = ((images[:, 0].numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)  # [N, 28, 28]
        for i, digit in enumerate(tqdm(pixels, desc=name, leave=False)):
            Image.fromarray(digit).convert("RGB").save(folder / f"{i:05d}.png")
        emit({"measure": "peer_data", "folder": str(folder), "images": len(pixels)})


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, default=SHARED / "mnist", help="folder with the MNIST test IDX files")
    ap.add_argument("--usps", type=Path, default=SHARED / "usps" / "usps.h5", help="usps.h5 (train/test groups)")
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-clock training budget")
    ap.add_argument("--kimg", type=float, default=0.0,
                    help="also stop after this many thousand images per domain (0: the wall-clock budget only)")
    ap.add_argument("--lr-rampdown", type=float, default=0.0,
                    help="final fraction of --kimg over which both learning rates fall to 0 (needs --kimg)")
    ap.add_argument("--snapshot-every", type=float, default=60.0, help="seconds between timed checkpoints")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=RES,
                    help="training size: both domains resized to it; scoring resizes 28 -> R -> 28 (default 28)")
    ap.add_argument("--width", type=int, default=16, help="generator and discriminator base width")
    ap.add_argument("--d-width", type=int, default=0, help="discriminator base width (default: --width)")
    ap.add_argument("--n-res", type=int, default=3, help="private residual blocks per encoder/generator (paper: 3)")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (the authors' 1e-4)")
    ap.add_argument("--d-norm", default="none", choices=("none", "instance", "batch"), help="discriminator norm")
    ap.add_argument("--d-layers", type=int, default=3, help="stride-2 layers per discriminator scale")
    ap.add_argument("--d-scales", type=int, default=2, help="discriminator scales")
    ap.add_argument("--g-kwargs", default="{}", help='more generator options as JSON, e.g. {"init": "gaussian"}')
    ap.add_argument("--loss-kwargs", default="{}",
                    help='UNIT loss options as JSON over the recipe\'s (at <= 32 px cycle_weight 20, '
                         'identity_weight 2 fading over identity_kimg 10), '
                         'e.g. {"cycle_weight": 10}')
    ap.add_argument("--score-ema", action="store_true", help="also score the EMA generator (G_ema)")
    ap.add_argument("--ema-kimg", type=float, default=TrainConfig.ema_kimg,
                    help="G_ema half-life in thousands of images per domain (default: the trainer's, %(default)s)")
    ap.add_argument("--xflip", action="store_true", help="random horizontal flips of both domains")
    ap.add_argument("--translate", type=int, default=None, metavar="PX",
                    help="random whole-pixel shifts of both domains' real images, up to PX per axis "
                    "(default: the recipe's, 2 at 32 px and below)")
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="training precision, as `ganforge train --precision` (scoring stays fp32)")
    ap.add_argument("--channels-last", action="store_true", help="channels_last memory format in training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy shared CPU)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-unit-mnist-usps"))
    ap.add_argument("--eval", type=Path, metavar="CKPT", help="only score this checkpoint (e.g. a timed snapshot)")
    ap.add_argument("--score-translations", type=Path, metavar="NPZ",
                    help="only score another system's translations: an .npz of usps2mnist, train2mnist, mnist2usps "
                         "arrays [N, 28, 28] in [-1, 1] (the USPS test digits, the USPS training digits, the first "
                         "2,007 MNIST test digits, in the benchmark's order)")
    ap.add_argument("--classifier", type=Path, help="digits classifier checkpoint (default: the packaged one)")
    ap.add_argument("--export-peer-data", type=Path, metavar="DIR",
                    help="only write the digits as RGB PNGs in PyTorch-GAN's train/test A/B layout under DIR")
    args = ap.parse_args()
    args.d_width = args.d_width or args.width
    if args.lr_rampdown and not args.kimg:
        ap.error("--lr-rampdown needs --kimg (the ramp ends there)")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.mnist, args.usps)
    if args.export_peer_data is not None:
        export_peer_data(data, args.export_peer_data)
        return
    ext = digits_classifier(args.out, args.classifier)
    refs = reference_features(ext, data)
    if args.score_translations is not None:
        t = load_translations(args.score_translations, data)
        emit({"measure": "unit", "system": str(args.score_translations),
              **score_translations(ext, data, refs, t["usps2mnist"], t["train2mnist"], t["mnist2usps"])})
        return
    if args.eval is not None:
        from ganforge.checkpoint import load_networks, read_config

        meta = read_config(args.eval)
        wanted = ["G", "G_ema"] if args.score_ema and "G_ema" in meta["networks"] else ["G"]
        nets = load_networks(args.eval, wanted)
        for name, G in nets.items():
            score(ext, data, refs, G, {"checkpoint": str(args.eval), "steps": meta["step"], "nimg": meta["nimg"]},
                  system="ganforge" if name == "G" else f"ganforge {name}")
        return
    f_mnist, f_usps = refs["mnist"], refs["usps_test"]
    emit({"measure": "classifier", "weights": ext.weights_source, "sha256": ext.weights_sha256[:16],
          "mnist_test_accuracy": accuracy(f_mnist, data["mnist"].labels)})
    emit({"measure": "baseline", "usps_test_accuracy_raw": accuracy(f_usps, data["usps_test"].labels),
          "fid_usps_raw_to_mnist": fid(f_usps, f_mnist), "n_usps_test": len(data["usps_test"])})

    t0 = time.time()
    trainer = train_ganforge(args, args.out / "run")
    seconds = time.time() - t0
    if args.score_ema and "G_ema" in trainer.nets:
        score(ext, data, refs, trainer.nets["G_ema"], {"train_seconds": round(seconds, 1), "steps": trainer.step},
              system="ganforge G_ema")
    score(ext, data, refs, trainer.nets["G"], {
        "train_seconds": round(seconds, 1), "steps": trainer.step, "images_per_domain": trainer.step * args.batch,
        "batch": args.batch, "resolution": args.resolution,
        "width": args.width, "n_res": args.n_res, "lr": args.lr, "kimg": args.kimg,
        "lr_rampdown": args.lr_rampdown, "threads": args.threads,
        "d_norm": args.d_norm, "d_width": args.d_width,
        "d_layers": args.d_layers, "d_scales": args.d_scales, "loss_kwargs": args.loss_kwargs,
        "loss_weights": trainer.loss.w, "g_kwargs": args.g_kwargs, "xflip": args.xflip,
        "translate": trainer.cfg.translate, "seed": args.seed,
        "run": str(trainer.run_dir)})


if __name__ == "__main__":
    main()
