"""Stacked MNIST mode coverage (issue 18 part 3): train with ``ganforge train``, measure modes and KL at set lengths.

The VEEGAN / PacGAN protocol: 1,000 modes (one per triple of digits in the three channels), 26,000 samples of the
sampling generator (G_ema), each channel read by the packaged digits classifier, ``modes`` = triples with at least 10 %
of their fair share, ``kl`` = KL(generated || data) over the 1,000 triples, "data" being the uniform population the
stacked images are drawn from (the papers' "KL to uniform"; before 2026-12-05 ganforge used the 60,000 images' own
label histogram, which added ~0.006-0.009). A sampler drawing exactly from the population scores 0.019 on average
at 26,000 samples: that is the floor. For every seed the script runs ``ganforge train --data stacked-mnist --seed
SEED --kimg K1`` plus the options given after ``--``, measures the checkpoint with ``ganforge evaluate CKPT --metrics
modes --n 26000 --json``, then resumes the same run to K2 (``ganforge train --resume RUN --kimg K2``; resuming is
bitwise, so the figures are those of one uninterrupted run) and so on. One JSON line per seed and length:

    {"seed", "options", "kimg", "modes", "kl", "kl_channels", "kl_dependence", "seconds", "cpu_seconds", "run"}

``kl_channels`` + ``kl_dependence`` = ``kl``: G's digit shares per channel against the data's (floor 0.0005) and the
dependence between its channels (floor 0.0187), the split ``ganforge evaluate`` reports as ``modes/kl_*``.

``seconds`` is the wall time of that stage of training (not of the evaluation), ``cpu_seconds`` its user + system
time; both only mean something on an otherwise idle core (``--threads 1`` is passed unless the options name it).
Recipes are chosen on seed 1 and checked on the held-out seeds 2 and 3 (BENCHMARKS.md says which settings were chosen
on what). The default recipe ends with a learning-rate ramp-down over the last half of ``--kimg``, so a curve of
several lengths by resuming would not be one run's curve: several lengths need ``-- --lr-rampdown 0`` (or another
schedule of your own), one length measures the recipe as a user runs it. Examples:

    python benchmarks/stacked_mnist.py --seeds 4,5 --kimg 800
    python benchmarks/stacked_mnist.py --seeds 2,3 --kimg 100,200,300,400 -- --lr-rampdown 0
    python benchmarks/stacked_mnist.py --seeds 1 --kimg 100,200 -- --lr-rampdown 0 --d-kwargs '{"blocks": 3}'
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from toy_modes import run_ganforge, train_once  # this folder: the same timed ``ganforge train`` runs
from train_speed import dry_run_config  # this folder: the config the options resolve to

from ganforge.checkpoint import list_checkpoints


def measure(ckpt: Path, n: int) -> dict[str, float]:
    """Modes and KL of one checkpoint by ``ganforge evaluate`` (the numbers a user gets)."""
    cmd = [sys.executable, "-m", "ganforge", "evaluate", str(ckpt), "--metrics", "modes", "--n", str(n), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    values = json.loads(out[-1])["values"]
    parts = ("kl", "kl_channels", "kl_dependence")
    return {"modes": int(values["modes"]), **{name: round(values[f"modes/{name}"], 4) for name in parts}}


def bench_seed(seed: int, lengths: list[float], extra: list[str], outdir: Path, n: int) -> None:
    """Train one seed through ``lengths`` (kimg, increasing), printing a JSON line at each."""
    threads = [] if "--threads" in extra else ["--threads", "1"]
    run: Path | None = None
    for kimg in lengths:
        if run is None:
            run, wall, cpu = train_once("stacked-mnist", seed, outdir, ["--kimg", f"{kimg:g}", *threads, *extra])
        else:
            wall, cpu = run_ganforge(["train", "--resume", str(run), "--kimg", f"{kimg:g}", "--quiet", *threads])
        stats = measure(list_checkpoints(run)[-1], n)
        record = {"seed": seed, "options": " ".join(extra) or "(default)", "kimg": kimg, **stats,
                  "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "run": str(run)}
        print(json.dumps(record), flush=True)


def ramps_down(extra: list[str]) -> bool:
    """Whether ``ganforge train --data stacked-mnist EXTRA`` ramps its learning rates down, as the CLI resolves the
    recipe and the options."""
    return float(dry_run_config(["--data", "stacked-mnist", *extra])["lr_rampdown"]) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="2,3", help="comma-separated training seeds (2,3: held out; 1: selection)")
    parser.add_argument("--kimg", default="800", help="comma-separated lengths to measure at, increasing")
    parser.add_argument("--n", type=int, default=26000, help="generated samples per measurement (protocol: 26,000)")
    parser.add_argument("--outdir", default="bench-stacked-mnist", help="where the runs go (a folder per seed)")
    parser.add_argument("extra", nargs="*", help="options for ganforge train, after --")
    args = parser.parse_args()
    lengths = [float(k) for k in args.kimg.split(",")]
    if lengths != sorted(set(lengths)) or lengths[0] <= 0:
        parser.error(f"--kimg must be increasing positive lengths, got {args.kimg!r}")
    if len(lengths) > 1 and ramps_down(args.extra):
        parser.error("several lengths resume one run, but a learning-rate ramp-down ends at each run's own length: "
                     "pass -- --lr-rampdown 0 for a curve, or give one length")
    for seed in (int(s) for s in args.seeds.split(",")):
        bench_seed(seed, lengths, args.extra, Path(args.outdir) / f"seed{seed}", args.n)


if __name__ == "__main__":
    main()
