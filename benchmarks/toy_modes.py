"""Mode coverage on the toy point sets (ring8, grid25): train with ``ganforge train`` itself, then count modes.

For every seed, runs ``ganforge train --data DATA --seed SEED --outdir OUTDIR --quiet`` plus the extra options given
after ``--`` (none: the default, the ``points`` preset), times it (wall clock and the CPU seconds of the training
process), then measures the final checkpoint's sampling generator (G_ema, else G) on ``--n`` samples (default 2,500,
the protocol of Unrolled GAN and VEEGAN; sample i from latent seed i): modes covered (at least 10 % of a mode's fair
share of high-quality samples), the share of high-quality samples (within 3 standard deviations of a mode centre),
and KL(generated || uniform) over the nearest modes (``ganforge.metrics.toy.toy_modes``). One JSON line per run:

    {"dataset", "seed", "options", "modes", "total", "hq", "kl", "kimg", "steps", "seconds", "cpu_seconds"}

The default recipe was tuned on seeds 0 and 1; BENCHMARKS.md says which seeds were held out for each change (for
the latest, R1 gamma 0.03: 13, 14 and 15). Examples (BENCHMARKS.md):

    OMP_NUM_THREADS=1 python benchmarks/toy_modes.py --data ring8 --seeds 13,14,15
    OMP_NUM_THREADS=1 python benchmarks/toy_modes.py --data grid25 --seeds 13,14,15
    OMP_NUM_THREADS=1 python benchmarks/toy_modes.py --data ring8 --seeds 2 -- --preset paper
    OMP_NUM_THREADS=1 python benchmarks/toy_modes.py --data ring8 --seeds 2 -- --preset paper --pack 2

``seconds`` is wall time on a possibly shared machine; ``cpu_seconds`` (user + system of the training process) is the
time the run would take alone on one core, and ``steps``/``kimg`` say how much training that was.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from ganforge.checkpoint import list_checkpoints, load_networks, read_config
from ganforge.data import load_dataset
from ganforge.metrics.context import SampleSet
from ganforge.metrics.toy import toy_modes


def run_ganforge(args: list[str]) -> tuple[float, float]:
    """Run ``python -m ganforge ARGS`` to completion (stdout dropped); returns its wall and CPU seconds."""
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "ganforge", *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)


def train_once(data: str, seed: int, outdir: Path, extra: list[str]) -> tuple[Path, float, float]:
    """One ``ganforge train`` run; returns its run directory, wall seconds and CPU seconds."""
    before = set(outdir.glob("*")) if outdir.is_dir() else set()
    wall, cpu = run_ganforge(
        ["train", "--data", data, "--seed", str(seed), "--outdir", str(outdir), "--quiet", *extra]
    )
    new = sorted(set(outdir.glob("*")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new run directory in {outdir}, found {new}")
    return new[0], wall, cpu


def measure(run: Path, data: str, n: int) -> dict[str, float]:
    """Mode statistics of the last checkpoint's sampling generator on ``n`` samples (latent seeds 0..n-1)."""
    ckpt = list_checkpoints(run)[-1]
    meta = read_config(ckpt)
    nets = load_networks(ckpt)
    G = nets.get("G_ema", nets["G"])
    samples = torch.cat(list(SampleSet.from_generator(G, n, 0).batches(500)))  # [n, D, 1, 1]
    stats = toy_modes(samples, load_dataset(data).info)
    return stats | {"kimg": meta["nimg"] / 1000, "steps": meta["step"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ring8", help="toy point set (ring8, grid25)")
    parser.add_argument("--seeds", default="13,14,15", help="comma-separated training seeds (13,14,15: held out)")
    parser.add_argument("--n", type=int, default=2500, help="generated samples per measurement")
    parser.add_argument("--outdir", default="bench-toy-modes", help="where the runs go (a folder per data and seed)")
    parser.add_argument("extra", nargs="*", help="options for ganforge train, after --")
    args = parser.parse_args()
    outdir = Path(args.outdir)
    for seed in (int(s) for s in args.seeds.split(",")):
        run, wall, cpu = train_once(args.data, seed, outdir / f"{args.data}-seed{seed}", args.extra)
        stats = measure(run, args.data, args.n)
        record = {
            "dataset": args.data, "seed": seed, "options": " ".join(args.extra) or "(default)",
            "modes": stats["modes"], "total": stats["modes/total"], "hq": round(stats["modes/hq"], 4),
            "kl": round(stats["modes/kl"], 4), "kimg": stats["kimg"], "steps": stats["steps"],
            "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "run": str(run),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
