"""ProGAN grown 4 -> 8 -> 16 -> 32 on the offline digits (5,000 28x28 MNIST digits zero-padded to 32x32), on the CPU.

Prints one JSON line per growth phase (kind, resolution, thousands of images, seconds, images/s) and one summary line:
total training seconds and, when the ``digits`` extractor of ``ganforge.metrics`` is available, the digits quality
bar on 1000 samples (share the digits classifier labels with confidence >= 0.9 and the classes among them; the bar:
>= 90 % and 10/10) and the ``modes`` counts / KL. Samples are cropped back to 28x28 (undoing the padding) first.

    flock /tmp/ganforge-cpu.lock python benchmarks/progan_digits.py                 # the recorded configuration
    python benchmarks/progan_digits.py --phase-kimg 0.2 --final-kimg 0.2 --n-eval 100  # a quick smoke run
    python benchmarks/progan_digits.py --evaluate runs/00000-progan-digits32.npz     # quality of a kept run
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.data import load_dataset
from ganforge.sampling import generate, load_generator
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer


def padded_digits(path: Path) -> Path:
    """The built-in digits (5,000 x 28x28) zero-padded by 2 pixels to 32x32, saved as an npz with labels."""
    ds = load_dataset("digits")
    images = F.pad(ds.data, (2, 2, 2, 2)).numpy()  # [N, 1, 32, 32] uint8, black border
    np.savez(path, images=images, labels=ds.labels.numpy())
    return path


def quality_bar(G: torch.nn.Module, n: int) -> dict[str, float | int | str]:
    """The digits quality bar on ``n`` samples (confident share, classes among them) plus the ``modes`` counts."""
    try:
        from ganforge.metrics import get_extractor
        from ganforge.metrics.modes import class_counts, mode_counts

        extractor = get_extractor("digits")
    except Exception as e:  # the metrics helper's classifier may not be shipped yet: say so, do not guess
        return {"quality": f"not measured: digits extractor unavailable ({type(e).__name__}: {e})"}
    imgs = generate(G, list(range(n)), None)[:, :, 2:30, 2:30]  # [n, 1, 28, 28]: undo the padding
    prob = torch.as_tensor(extractor(imgs).logits).softmax(dim=1)  # [n, 10]
    conf, label = prob.max(dim=1)
    confident = conf >= 0.9
    reference = class_counts(load_dataset("digits").labels, 10)
    modes = mode_counts(class_counts(label, 10), reference)
    return {
        "confident_share": round(float(confident.float().mean()), 4),
        "classes_confident": int(label[confident].unique().numel()),
        "modes": int(modes["modes"]),
        "modes_kl": round(modes["modes/kl"], 4),
        "bar_met": bool(float(confident.float().mean()) >= 0.9 and int(label[confident].unique().numel()) == 10
                        and int(modes["modes"]) == 10),
        "n_eval": n,
        "classifier_sha256": extractor.weights_sha256[:16],
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase-kimg", type=float, default=4.0, help="Images per fade-in and per stabilise phase (k).")
    ap.add_argument("--final-kimg", type=float, default=60.0, help="At most this many more images at 32x32 (k).")
    ap.add_argument("--eval-every-kimg", type=float, default=4.0, help="Quality bar every N kimg once grown (0: end).")
    ap.add_argument("--stop-at-bar", action="store_true", help="Stop as soon as the quality bar is met.")
    ap.add_argument("--loss", default="wgan-gp", help="The family default (wgan-gp) or another registered loss.")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cond", action="store_true", help="Class-conditional on the digits' labels.")
    ap.add_argument("--lr", type=float, default=1e-3, help="G and D learning rate (the paper's 0.001).")
    ap.add_argument("--ema-kimg", type=float, default=1.0, help="G EMA half-life (k); the paper's ~10 suits long runs.")
    ap.add_argument("--z-dim", type=int, default=128)
    ap.add_argument("--fmap-base", type=int, default=256)
    ap.add_argument("--fmap-max", type=int, default=64)
    ap.add_argument("--n-eval", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", default=None, help="Keep the run here (default: a temporary folder).")
    ap.add_argument("--evaluate", metavar="RUN_OR_CKPT", help="Only measure the quality bar of a saved run.")
    return ap.parse_args()


def build_trainer(args: argparse.Namespace, out: Path, total: int) -> Trainer:
    """The ProGAN trainer on the padded digits: fade-in and stabilise phases of ``--phase-kimg`` each."""
    fmaps = {"fmap_base": args.fmap_base, "fmap_max": args.fmap_max}
    given = dict(
        model="progan", data=str(padded_digits(out / "digits32.npz")), batch=args.batch, z_dim=args.z_dim,
        kimg=total / 1000, seed=args.seed, g_kwargs=fmaps, d_kwargs=fmaps, loss=args.loss, lr_g=args.lr,
        lr_d=args.lr, betas=(0.0, 0.99), ema_kimg=args.ema_kimg, device="cpu", threads=args.threads,
        outdir=str(out / "runs"), cond=args.cond,
        schedule_kwargs={"fade_kimg": args.phase_kimg, "stable_kimg": args.phase_kimg},
    )
    return Trainer.from_config(TrainConfig(**given), progress=False)


def train(args: argparse.Namespace, trainer: Trainer, total: int, common: dict) -> tuple[list[float], dict]:
    """Train to ``total`` images (or the quality bar with ``--stop-at-bar``); seconds of steps per phase and the last
    quality bar. Prints the bar every ``--eval-every-kimg`` once grown."""
    plan = trainer.schedule.phases()
    spent = [0.0] * len(plan)  # seconds of training steps started in each phase
    every = int(args.eval_every_kimg * 1000) or total
    next_eval, quality = trainer.schedule.growth_images, {}
    with tqdm(total=total, unit="img", unit_scale=True) as bar:
        while trainer.nimg < total:
            i = max(j for j, p in enumerate(plan) if p[2] <= trainer.nimg)
            before, t = trainer.nimg, time.perf_counter()
            trainer.train_step()
            spent[i] += time.perf_counter() - t
            bar.update(trainer.nimg - before)
            if trainer.nimg >= next_eval or trainer.nimg >= total:
                next_eval += every
                quality = quality_bar(trainer.generator_for_samples().eval(), args.n_eval)
                tqdm.write(json.dumps(common | {"kimg": trainer.nimg / 1000, "train_seconds": round(sum(spent), 1),
                                                **quality}))
                if args.stop_at_bar and quality.get("bar_met"):
                    break
    return spent, quality


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.evaluate:
        G, _ = load_generator(args.evaluate)
        print(json.dumps({"benchmark": "progan_digits", "evaluate": args.evaluate, "stage": list(G.stage),
                          **quality_bar(G, args.n_eval)}))
        return
    phase = int(args.phase_kimg * 1000)
    growth = 6 * phase  # 4x4 stabilise, fade-in + stabilise at 8 and 16, fade-in at 32
    total = growth + int(args.final_kimg * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.outdir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        trainer = build_trainer(args, out, total)
        assert trainer.schedule.growth_images == growth
        common = {"benchmark": "progan_digits", "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
                  "torch": torch.__version__, "loss": args.loss, "cond": args.cond,
                  "fmap_base": args.fmap_base, "fmap_max": args.fmap_max}
        spent, quality = train(args, trainer, total, common)
        for (kind, level, start, length), secs in zip(trainer.schedule.phases(), spent, strict=True):
            images = (length if length is not None else trainer.nimg - start) / 1000
            print(json.dumps(common | {
                "phase": kind, "resolution": 4 * 2**level, "kimg": round(images, 3), "seconds": round(secs, 1),
                "img_per_s": round(images * 1000 / max(secs, 1e-9), 1),
            }))
        if args.outdir:
            trainer.save()
            trainer.write_grid()
        G = trainer.generator_for_samples()
        print(json.dumps(common | {
            "summary": True, "kimg": trainer.nimg / 1000, "train_seconds": round(sum(spent), 1),
            "growth_seconds": round(sum(spent[:-1]), 1), "final_stage": list(G.stage),
            "params_G": sum(p.numel() for p in G.parameters()), **quality,
            "run": str(trainer.run_dir) if args.outdir else None,
        }))


if __name__ == "__main__":
    main()
