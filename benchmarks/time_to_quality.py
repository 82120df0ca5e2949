"""Time to quality: train the default digits run (`ganforge train` with no options) from scratch, in process, and
report the training seconds until generated digits pass the bar of the metrics issue:

- the digit classifier (``digits`` extractor) is at least 90 % confident on at least 90 % of 1000 samples, and
- all 10 classes are covered: each gets at least 10 % of its fair share (>= 10 of the 1000) of the confident samples.

Every ``--every`` seconds of training the EMA generator (or G) is evaluated on fixed latents; evaluation time is not
counted. Prints one JSON line per evaluation and one final line. Run it alone (2 CPU cores are shared):

    flock /tmp/ganforge-cpu.lock python benchmarks/time_to_quality.py --threads 2

Other configurations are experiments on top of the default (``--set KEY=JSON`` per training option); power-of-two
models train on the digits scaled to 32x32 and are judged scaled back to 28x28:

    python benchmarks/time_to_quality.py --set model='"stylegan"' --set resolution=32 --set resize='"pad"' \
        --max-seconds 1800 --every 60
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time

import torch

from ganforge.cli.train import resolve_config
from ganforge.metrics import get_extractor
from ganforge.metrics.context import SampleSet
from ganforge.train.build import build
from ganforge.train.loop import Trainer


class Reached(Exception):
    """Raised from the training step to stop the run once the bar is passed."""


def quality(G: torch.nn.Module, extractor, n: int = 1000, seed: int = 10_000) -> dict[str, float]:
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            fake = SampleSet.from_generator(G, n, seed, None, next(G.parameters()).device)
            logits = torch.cat([extractor(_to28(b)).logits for b in fake.batches(250)])  # [n, 10]
    finally:
        G.train(was_training)
    p = logits.softmax(dim=1)
    conf, cls = p.max(dim=1)
    confident = conf >= 0.9
    counts = torch.bincount(cls[confident], minlength=10)
    covered = int((counts >= 0.1 * n / 10).sum())
    share = float(confident.double().mean())
    return {"confident_share": share, "classes_covered": covered, "passed": share >= 0.9 and covered == 10}


def _to28(x: torch.Tensor) -> torch.Tensor:
    """Judge power-of-two models (trained with ``--resolution 32 --resize pad``, i.e. the digits scaled to 32x32) at the
    classifier's 28x28, scaled back with an antialiased bilinear filter."""
    if x.shape[-1] == 28:
        return x
    return torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)


class TimedTrainer(Trainer):
    def __init__(self, cfg, every: float, max_seconds: float) -> None:
        super().__init__(build(cfg), progress=False)
        self.every, self.max_seconds = every, max_seconds
        self.extractor = get_extractor("digits", self.device)
        self.train_seconds, self.evals = 0.0, 0
        self.result: dict = {}
        self._mark: float | None = None

    def train_step(self) -> dict[str, float]:
        if self._mark is None:
            self._mark = time.perf_counter()
        stats = super().train_step()
        now = time.perf_counter()
        if now - self._mark >= self.every:
            self.train_seconds += now - self._mark
            q = quality(self.generator_for_samples(), self.extractor)
            self.evals += 1
            self.result = {"train_seconds": round(self.train_seconds, 1), "kimg": self.nimg / 1000, **q}
            print(json.dumps({"bench": "time_to_quality", "eval": self.evals, **self.result}), flush=True)
            if q["passed"] or self.train_seconds >= self.max_seconds:
                raise Reached
            self._mark = time.perf_counter()
        return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=float, default=5.0, help="Seconds of training between evaluations.")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="Give up after this much training time.")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kimg", type=float, default=None, help="Override the default run's length (kimg) only.")
    ap.add_argument("--outdir", default=None,
                    help="Keep the run (checkpoints, grids) here; default: a temporary folder removed at the end.")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="Override one training option for an experiment, e.g. --set ema_kimg=5 (repeatable).")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        given = {"outdir": args.outdir or tmp, "seed": args.seed, "device": args.device}
        if args.threads:
            given["threads"] = args.threads
        if args.kimg:
            given["kimg"] = args.kimg
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                ap.error(f"--set expects KEY=JSON, got {item!r}")
            given[key] = json.loads(value)
        cfg = resolve_config(given, None, None)
        trainer = TimedTrainer(cfg, args.every, args.max_seconds)
        wall = time.perf_counter()
        try:
            trainer.run()
        except Reached:
            pass
        wall = time.perf_counter() - wall
    r = trainer.result
    print(json.dumps({
        "bench": "time_to_quality", "final": True, "reached": bool(r.get("passed")), **r,
        "wall_seconds_with_evals": round(wall, 1), "evaluations": trainer.evals, "eval_every_s": args.every,
        "config": {k: cfg.to_dict()[k] for k in ("model", "data", "batch", "lr_g", "lr_d", "z_dim", "ema_kimg",
                                                 "kimg", "loss", "g_kwargs", "d_kwargs")},
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "classifier_test_accuracy": trainer.extractor.test_accuracy,
    }))
    return 0 if r.get("passed") else 1


if __name__ == "__main__":
    sys.exit(main())
