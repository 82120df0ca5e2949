"""Faces on a CPU: train the photo recipe on a folder of face photos at 64x64 for a fixed wall-clock budget, keep the
EMA generator at given wall-clock times (default 15 min, 30 min, 1 h and 2 h of training), then measure Inception FID
and KID of ``--n-fake`` generated faces (default 2,000) against ``--n-real`` real faces (default 5,000) for each.

The real faces are THE TRAINING SET, prepared as training prepares them (centre square crop, resized to 64x64, RGB):
the numbers say how close the generator comes to its own training data, not how it generalises. Training time counts
from the first training step (data loading is reported apart as ``load_seconds``); sample grids are off and
snapshots are written by this script, so the clock covers training steps and the EMA only. Prints one JSON line per
snapshot after training (and a line per snapshot as it is taken, with ``"measured": false``).

    OMP_NUM_THREADS=2 python benchmarks/faces_cpu.py --data ../shared/data/celeba_subset/celebA --threads 2 \\
        --snapshots 15,30,60,120 --outdir bench-faces > faces_cpu.jsonl

Run it alone on the machine: where other processes oversubscribe the cores, 2 OpenMP threads spend most of their
time waiting at barriers (a training step measured ~8x the CPU seconds of the same step on 1 thread).

The reals' Inception features are cached on disk by content (``ganforge evaluate --clear-cache`` removes them), so
only the first evaluation against a folder pays for them. A run stopped after training (or one whose scoring should
be repeated) is scored from its snapshots with ``--score-only --outdir DIR``. At the last snapshot the run's full
training state is saved as well (``DIR/run/<run>/checkpoints``), so ``ganforge train --resume DIR/run/<run> --kimg N``
continues it past the benchmark's budget (how the packaged ``faces`` generator can be trained further).

Smoke test (minutes, tiny): ``--snapshots 0.5 --n-fake 50 --n-real 50``. Other families or options for an experiment:
``--set model='"dcgan"' --set d_kwargs='{"norm": "spectral"}' --set loss_kwargs='{"augment": "diffaugment"}'``.

Peers (same data, preprocessing and time points; run them alone, one at a time, each in its own venv, never
committed): make a venv with the peers' pinned versions,

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.14.1 torchvision==0.29.1

1. pytorch/examples ``dcgan/main.py`` (git clone https://github.com/pytorch/examples), its defaults at 64 px on an
   image folder; its ImageFolder loader wants one sub-folder, so point it at the folder above ``celebA``:
   ``OMP_NUM_THREADS=2 timeout -s INT 900 /tmp/peers/bin/python examples/dcgan/main.py --dataset folder
   --dataroot ../shared/data/celeba_subset --imageSize 64 --workers 0 --niter 1000 --outf peer-dcgan``
   (repeat with 1800 and 3600 s; it saves ``netG_epoch_K.pth`` after each epoch: take the last one before the
   time point). Its transform (resize the short side to 64, centre crop 64) is the same preparation as ours.
2. PyTorch-GAN ``implementations/dcgan/dcgan.py`` (git clone https://github.com/eriklindernoren/PyTorch-GAN) is
   written for 32x32 MNIST: set ``--img_size 64 --channels 3`` and replace its MNIST loader with an ImageFolder over
   the same folder and transform (Resize(64), CenterCrop(64), ToTensor, Normalize(0.5, 0.5)); save the generator's
   state_dict at the time points.

For each peer checkpoint, write ``--n-fake`` PNGs with the peer's own generator class (in the peers' venv; images
mapped from [-1, 1] to 0-255), then score the folders here with the same reals and extractor:

    python benchmarks/faces_cpu.py --data ../shared/data/celeba_subset/celebA --fakes peer-dcgan-15min=DIR ...

To compare per core instead, run both peers at once, one thread each pinned with ``taskset``, against this
script's ``--threads 1`` run (BENCHMARKS.md does both).

lucidrains ``lightweight-gan`` cannot be run on these machines: it asserts a CUDA GPU at import.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.checkpoint import save_checkpoint
from ganforge.cli.train import resolve_config
from ganforge.data import load_dataset
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.evaluate import run_metrics
from ganforge.metrics.feature_cache import FeatureCache
from ganforge.sampling import load_generator
from ganforge.train.build import build
from ganforge.train.loop import Trainer
from ganforge.train.recipes.photo import photo_defaults

BENCH = "faces_cpu"
RESOLUTION = 64
REALS_NOTE = "the training set (centre square crop, resized to 64x64, RGB)"
CONFIG_KEYS = ("model", "batch", "lr_g", "lr_d", "betas", "z_dim", "ema_kimg", "xflip", "loss", "loss_kwargs",
               "g_kwargs", "d_kwargs")  # the training options each result line repeats


class Done(Exception):
    """Raised from the training step once the last snapshot is taken."""


class SnapshotTrainer(Trainer):
    """A Trainer that saves its EMA generator at given seconds of training (wall clock from the first step)."""

    def __init__(self, cfg, snapshots_min: list[float], outdir: Path) -> None:
        super().__init__(build(cfg), progress=False)
        self.pending = sorted(snapshots_min)
        self.outdir = outdir
        self.taken: list[dict[str, Any]] = []
        self._start: float | None = None

    def train_step(self) -> dict[str, float]:
        if self._start is None:
            self._start = time.perf_counter()
        stats = super().train_step()
        seconds = time.perf_counter() - self._start
        while self.pending and seconds >= self.pending[0] * 60:
            self.taken.append(self.snapshot(self.pending.pop(0), seconds))
        if not self.pending:  # keep the full state too, so `ganforge train --resume` can continue the run
            print(json.dumps({"bench": BENCH, "measured": False, "state": str(self.save())}), flush=True)
            raise Done
        return stats

    def snapshot(self, minutes: float, seconds: float) -> dict[str, Any]:
        self.refresh_ema_statistics()  # as a checkpoint's G_ema
        G = self.generator_for_samples()
        path = self.outdir / f"snapshot-{minutes:g}min"
        record = {"minutes": minutes, "train_seconds": round(seconds, 1), "kimg": round(self.nimg / 1000, 3),
                  "img_per_s": round(self.nimg / seconds, 2)}
        save_checkpoint(path, {"G_ema": G}, {"family": self.cfg.model, "train": self.cfg.to_dict(), **record})
        print(json.dumps({"bench": BENCH, "measured": False, "snapshot": str(path), **record}), flush=True)
        return {**record, "checkpoint": str(path)}


def train(args: argparse.Namespace, outdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the photo recipe (plus ``--set`` overrides) until the last snapshot; the snapshots and the config."""
    given: dict[str, Any] = {**photo_defaults(args.data), "data": args.data, "resolution": RESOLUTION,
                             "outdir": str(outdir / "run"), "seed": args.seed, "device": "cpu", "kimg": 1e6,
                             "grid_kimg": 1e6, "snapshot_kimg": 1e6, "diagnostics": False, "threads": args.threads}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=JSON, got {item!r}")
        given[key] = json.loads(value)
    if "model" not in given:
        raise SystemExit(f"{args.data} is not a folder of colour photos; name a family with --set model='\"NAME\"'")
    cfg = resolve_config(given, None, None)
    t0 = time.perf_counter()
    trainer = SnapshotTrainer(cfg, args.snapshots, outdir)
    load_seconds = time.perf_counter() - t0
    try:
        trainer.run()
    except Done:
        pass
    return trainer.taken, {"load_seconds": round(load_seconds, 1), **{k: cfg.to_dict()[k] for k in CONFIG_KEYS}}


def measure(fake: SampleSet, real: SampleSet, args: argparse.Namespace, cache: FeatureCache) -> dict[str, float]:
    """Inception FID and KID of ``fake`` against ``real`` (the real features are computed once and kept)."""
    ctx = EvalContext(fake, real, extractor="inception-v3", device="cpu", batch_size=args.eval_batch, seed=args.seed,
                      feature_cache=cache)  # the reals' features are computed once per machine
    t0 = time.perf_counter()
    results = {r.metric: r.values for r in run_metrics(["fid", "kid"], ctx)}
    out = {"fid": results["fid"]["fid"], **{k: v for k, v in results["kid"].items()}}
    return {**out, "eval_seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Folder of face photos (e.g. ../shared/data/celeba_subset/celebA).")
    ap.add_argument("--snapshots", default="15,30,60,120",
                    help="Minutes of training at which to keep the generator, comma-separated. [15,30,60,120]")
    ap.add_argument("--n-fake", type=int, default=2000, help="Generated faces per measurement. [2000]")
    ap.add_argument("--n-real", type=int, default=5000, help="Real faces (of the training set). [5000]")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training. [2]")
    ap.add_argument("--eval-threads", type=int, default=None, help="torch threads for evaluation. [--threads]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-batch", type=int, default=50, help="Inception batch size. [50]")
    ap.add_argument("--outdir", default=None, help="Keep snapshots here (default: a temporary folder).")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="Override one training option, e.g. --set batch=64 (repeatable).")
    ap.add_argument("--fakes", action="append", default=[], metavar="NAME=DIR",
                    help="Score a folder of generated images (a peer's) instead of training (repeatable).")
    ap.add_argument("--score-only", action="store_true",
                    help="Score the snapshots already in --outdir (a run stopped after training) instead of training.")
    args = ap.parse_args(argv)
    try:
        args.snapshots = sorted(float(m) for m in args.snapshots.split(","))
    except ValueError:
        ap.error(f"--snapshots must be minutes separated by commas, got {args.snapshots!r}")
    if not args.snapshots or args.snapshots[0] <= 0:
        ap.error(f"--snapshots must be positive minutes, got {args.snapshots}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(args.outdir or tmp)
        if args.fakes:
            return score_folders(args)
        if args.score_only:
            if args.outdir is None:
                ap.error("--score-only needs the --outdir of the run that wrote the snapshots")
            return score(args, *stored_snapshots(outdir))
        return score(args, *train(args, outdir))


def _reals(args: argparse.Namespace) -> SampleSet:
    ds = load_dataset(args.data, resolution=RESOLUTION, channels=3, resize="center-crop")
    return SampleSet.from_dataset(ds, min(args.n_real, len(ds)), seed=args.seed)


def _common(args: argparse.Namespace, real: SampleSet) -> dict[str, Any]:
    return {"n_real": real.count, "reals": REALS_NOTE, "data": args.data, "threads": args.threads,
            "eval_threads": args.eval_threads or args.threads,
            "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor()}


def stored_snapshots(outdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The snapshots a run left in ``outdir`` (each one's record is in its config.json), earliest first, and the
    training options."""
    records, config = [], {}
    for path in sorted(outdir.glob("snapshot-*min"), key=lambda p: float(p.name[len("snapshot-"):-len("min")])):
        meta = json.loads((path / "config.json").read_text())
        record = {k: meta[k] for k in ("minutes", "train_seconds", "kimg", "img_per_s")}
        records.append(record | {"checkpoint": str(path)})
        config = {k: meta["train"][k] for k in CONFIG_KEYS}
    if not records:
        raise SystemExit(f"{outdir}: no snapshot-*min folders to score")
    return records, config


def score(args: argparse.Namespace, taken: list[dict[str, Any]], config: dict[str, Any]) -> int:
    """FID and KID of every snapshot in ``taken``; one JSON line each."""
    torch.set_num_threads(args.eval_threads or args.threads)
    real, cache = _reals(args), FeatureCache()
    for snap in taken:
        G, _ = load_generator(snap["checkpoint"])
        fake = SampleSet.from_generator(G, args.n_fake, seed=10_000 + args.seed, description=snap["checkpoint"])
        line = {"bench": BENCH, "measured": True, "system": "ganforge", **snap, "n_fake": args.n_fake,
                **measure(fake, real, args, cache), **_common(args, real), "config": config}
        print(json.dumps(line), flush=True)
    return 0


def score_folders(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.eval_threads or args.threads)
    real, cache = _reals(args), FeatureCache()
    for item in args.fakes:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--fakes expects NAME=DIR, got {item!r}")
        ds = load_dataset(folder, resolution=RESOLUTION, channels=3, resize="center-crop")
        fake = SampleSet.from_dataset(ds, min(args.n_fake, len(ds)), seed=args.seed)
        line = {"bench": BENCH, "measured": True, "system": name, "fakes": folder, "n_fake": fake.count,
                **measure(fake, real, args, cache), **_common(args, real)}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
