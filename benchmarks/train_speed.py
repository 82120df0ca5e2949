"""Training throughput of a configuration: prints one JSON line with img/s (after warm-up), steps and peak memory.

python benchmarks/train_speed.py                       # the default `ganforge train` config (DCGAN, digits)
python benchmarks/train_speed.py --model gan --kimg 5  # another family
python benchmarks/train_speed.py -- --data stacked-mnist --reg-interval 16  # any `ganforge train` options, resolved
                                                       # as the command resolves them (recipe defaults included)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time

import torch

from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer


def dry_run_config(options: list[str]) -> dict:
    """The config ``ganforge train OPTIONS`` would train, as the command resolves the recipe and the options
    (``--dry-run`` prints it without training). Shared by the benchmarks that take train options."""
    cmd = [sys.executable, "-m", "ganforge", "train", *options, "--dry-run"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def config_for(args: argparse.Namespace, outdir: str) -> TrainConfig:
    """``--model``/``--data`` as given, or the config ``ganforge train OPTIONS`` would train."""
    if not args.train_options:
        return TrainConfig(model=args.model, data=args.data, device=args.device, outdir=outdir, kimg=1e9)
    config = dry_run_config(args.train_options)
    return TrainConfig(**{**config, "device": args.device, "outdir": outdir, "kimg": 1e9, "diagnostics": False})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--kimg", type=float, default=6.4)
    ap.add_argument("--warmup-steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("train_options", nargs="*", help="after --: `ganforge train` options (replace --model/--data)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_for(args, tmp)
        t = Trainer.from_config(cfg, progress=False)
        for _ in range(args.warmup_steps):
            t.train_step()
        if t.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        n0, s0, t0 = t.nimg, t.step, time.perf_counter()
        while t.nimg - n0 < args.kimg * 1000:
            t.train_step()
        if t.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    rec = {
        "benchmark": "train_speed",
        "model": cfg.model,
        "data": cfg.data,
        "options": args.train_options,
        "batch": cfg.batch,
        "img_per_s": round((t.nimg - n0) / dt, 1),
        "steps_per_s": round((t.step - s0) / dt, 2),
        "device": str(t.device),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if t.device.type == "cuda":
        rec["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
