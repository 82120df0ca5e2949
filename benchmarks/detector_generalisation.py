"""Generalisation matrix of the fake-image detector across generator families, clean and perturbed (issue 7).

Setup (all on the CPU, everything at 32x32 grey):
- real: the built-in digits (5,000 MNIST digits) zero-padded 28 -> 32 for training the GANs and the detector; the
  official MNIST *test* split (../shared/data/mnist, padded the same way) as held-out real images.
- generators: one small generator per family (``dcgan``, ``gan`` (MLP), ``progan``, ``stylegan``) trained on the padded
  digits with ganforge's own training loop for ``--gen-kimg`` thousand images (weak, short runs).
- simulated fakes (``--simulate``, on by default): reals re-synthesised by small auto-encoders with each generator
  upsampler (AutoGAN), half of each set from a 150-step and half from a 600-step auto-encoder
  (``--simulate-steps``), part of every detector's training fakes (not of its temperature fit).
- detector: for each held-out family, trained on real digits vs fakes of the *other* families (training seeds),
  calibrated on its held-out split, then tested on MNIST-test reals vs fakes of the held-out family (unseen seeds),
  clean and after a 0.5x resize + JPEG q=75. Reported: AUC, AP, accuracy at 0.5 (calibrated and raw), the best
  accuracy any threshold reaches (what the ranking allows), ECE (calibrated and raw).
- peers (``--peer NAME=DIR``): fakes of generators written elsewhere (e.g. PyTorch-GAN's ``dcgan`` trained on the
  same padded digits), never used to choose anything, scored by the detector trained on every ganforge family
  (``held_out`` "peer NAME" in the output).
- faces smoke check: ../shared/data/real_fake_faces (Test split only; mixed provenance, see SOURCES.md): a 3-channel
  detector trained on one stratified half and scored on the other, next to a "bigger image = fake" baseline that
  shows how much of that set is separable by image size alone.

One JSON line per measurement on stdout. The recorded configuration:

    flock /tmp/ganforge-cpu.lock python benchmarks/detector_generalisation.py --workdir /tmp/ganforge-detbench \
        --gen-kimg 30,stylegan=20
    python benchmarks/detector_generalisation.py --gen-kimg 0.2 --steps 20 --n-fake 100 --families dcgan,gan \
        --simulate ''  # smoke

Generators are reused from ``--workdir`` when a run of the same family and length is already there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data import load_dataset
from ganforge.data.formats import read_idx
from ganforge.detection.data import ImageSet, Perturbation, read_images, sample_generator
from ganforge.detection.evaluate import summarize
from ganforge.detection.predict import score_arrays
from ganforge.detection.train import DetectorTrainConfig, train_detector

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FAMILY_KWARGS = {  # small networks: minutes on two CPU cores
    "dcgan": {"g_kwargs": {"width": 16}, "d_kwargs": {"width": 16}, "z_dim": 64},
    "gan": {"g_kwargs": {"hidden": 256, "layers": 2}, "d_kwargs": {"hidden": 256, "layers": 2}, "z_dim": 64},
    "progan": {"g_kwargs": {"fmap_base": 256, "fmap_max": 64}, "d_kwargs": {"fmap_base": 256, "fmap_max": 64},
               "z_dim": 64},
    "stylegan": {"g_kwargs": {"w_dim": 64, "mapping_layers": 2, "channel_base": 1024, "channel_max": 64},
                 "d_kwargs": {"channel_base": 1024, "channel_max": 64}, "z_dim": 64},
}
PERTURBED = Perturbation(jpeg_quality=75, scale=0.5)
# CNNDetection's blur and JPEG (milder blur for 32x32 digits) plus downscaling (images met in the wild are more often
# shrunk than enlarged), JPEG and downscaling 80 % of the time each: rarer, and shrunk, re-compressed reals score
# like fakes and cross the threshold (run C in BENCHMARKS.md used 50 %). Of the downscales, 30 % halve exactly:
# the test view scales a halved 32x32 image back up 2x, which leaves the 2x2 pattern generator upsampling leaves
# (real digits halved then scored: 34 % above the threshold at JPEG 30, 2 % at JPEG 75, none at a 0.55x scale), and
# a continuous draw almost never halves exactly (run F in BENCHMARKS.md).
DIGITS_AUGMENT = {"blur_sigma": (0.0, 1.0), "jpeg_prob": 0.8, "resize_prob": 0.8, "resize_scale": (0.5, 1.0),
                  "resize_exact": (0.5,), "resize_exact_prob": 0.3}


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def pad32(images_hw: np.ndarray) -> list[np.ndarray]:
    """uint8 ``[N, 28, 28]`` -> list of ``[32, 32, 1]`` with a 2-pixel black border (as benchmarks/progan_digits)."""
    return list(np.pad(images_hw, ((0, 0), (2, 2), (2, 2)))[..., None])


def padded_digits_npz(path: Path) -> Path:
    ds = load_dataset("digits")
    np.savez(path, images=F.pad(ds.data, (2, 2, 2, 2)).numpy(), labels=ds.labels.numpy())
    return path


def train_generator(family: str, kimg: float, workdir: Path, data: Path, seed: int) -> tuple[Path, float]:
    """A short ganforge training run of ``family`` on the padded digits; reused if already in ``workdir``."""
    from ganforge.checkpoint import list_checkpoints
    from ganforge.train.config import TrainConfig
    from ganforge.train.loop import Trainer

    outdir = workdir / f"gen-{family}-{kimg:g}kimg"
    runs = sorted(p for p in outdir.glob("*") if p.is_dir() and list_checkpoints(p)) if outdir.is_dir() else []
    if runs:
        return runs[-1], 0.0
    from ganforge.train.recipes import get_recipe

    extra = FAMILY_KWARGS[family]
    cfg = TrainConfig.from_dict({
        **get_recipe(family).defaults, "model": family, "data": str(data), "kimg": kimg, "seed": seed,
        "device": "cpu", "outdir": str(outdir), "grid_kimg": kimg, "snapshot_kimg": kimg, "keep_checkpoints": 1,
        **extra,
    })
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # the loop's own messages; stdout stays one JSON line per record
        run = Trainer.from_config(cfg, progress=sys.stderr.isatty()).run()
    return run, time.time() - t0


def parse_kimg(text: str, families: list[str]) -> dict[str, float]:
    """``"5"`` (every family) or ``"5,stylegan=2.5"`` (a default and per-family overrides)."""
    out: dict[str, float] = {}
    default = None
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" in part:
            fam, v = part.split("=", 1)
            if fam not in families:
                raise SystemExit(f"--gen-kimg names {fam!r}, which is not among --families {families}")
            out[fam] = float(v)
        else:
            default = float(part)
    missing = [f for f in families if f not in out and default is None]
    if missing:
        raise SystemExit(f"--gen-kimg gives no length for {missing}")
    return {f: out.get(f, default) for f in families}


def evaluate(net, real: list[np.ndarray], fake: list[np.ndarray], perturb: Perturbation | None) -> dict:
    logits = score_arrays(net, real + fake, perturb=perturb)  # each image on its tiles at native resolution
    y = np.array([0] * len(real) + [1] * len(fake))
    t = float(net.temperature)
    cal, raw = summarize(logits, y, t), summarize(logits, y, 1.0)
    order = np.sort(logits)
    best = max(np.mean((logits >= thr) == (y == 1)) for thr in np.r_[order, np.inf])
    return {"auc": cal["auc"], "ap": cal["ap"], "acc": cal["acc"], "acc_real": cal["acc_real"],
            "acc_fake": cal["acc_fake"], "acc_uncalibrated": raw["acc"], "acc_best_threshold": float(best),
            "ece": cal["ece"], "ece_uncalibrated": raw["ece"], "n_real": cal["n_real"], "n_fake": cal["n_fake"]}


def generalisation(args: argparse.Namespace, workdir: Path) -> None:
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILY_KWARGS))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; expected some of {sorted(FAMILY_KWARGS)}")
    peer_dirs = parse_peers(args.peer, families)
    data = padded_digits_npz(workdir / "digits32.npz")
    kimgs = parse_kimg(args.gen_kimg, families)
    gens = {}
    for fam in families:
        run, secs = train_generator(fam, kimgs[fam], workdir, data, args.seed)
        gens[fam] = run
        emit({"stage": "generator", "family": fam, "data": "digits padded to 32x32", "kimg": kimgs[fam],
              "run": str(run), "train_seconds": round(secs, 1), **FAMILY_KWARGS[fam]})
    digits = pad32(load_dataset("digits").data[:, 0].numpy())
    real_train = ImageSet("digits32", digits, [f"digits#{i}" for i in range(len(digits))])
    test_hw = read_idx(SHARED / "mnist" / "t10k-images-idx3-ubyte.gz")[: args.n_test]
    real_test = pad32(test_hw)
    fakes_train = {f: sample_generator(gens[f], args.n_fake, seed=0) for f in families}
    simulated = []
    if args.simulate:
        from ganforge.detection.simulate import simulated_fakes

        t0 = time.time()
        lengths = tuple(int(v) for v in args.simulate_steps.split(","))
        simulated = simulated_fakes(real_train, args.simulate.split(","), args.n_fake, crop=32, steps=lengths,
                                    seed=args.seed)
        emit({"stage": "simulated", "upsamplers": args.simulate.split(","), "images_each": args.n_fake,
              "steps": lengths,
              "seconds": round(time.time() - t0, 1)})
    fakes_test = {f: sample_generator(gens[f], args.n_test, seed=10_000_000).images for f in families}
    for fam in families:
        emit({"stage": "fake-stats", "family": fam, "mean": float(np.mean(fakes_test[fam])),
              "std": float(np.std(fakes_test[fam])), "real_test_mean": float(np.mean(real_test)),
              "real_test_std": float(np.std(real_test))})
    peers = {name: read_images(folder, max_images=args.n_test).images for name, folder in peer_dirs}
    held_outs = families if len(families) > 1 and not args.no_family_holdout else []
    for held in held_outs + ["none"]:
        train_fams = [f for f in families if f != held]
        cfg = DetectorTrainConfig(crop=32, steps=args.steps, batch=args.batch, seed=args.seed,
                                  model={"width": 16, "depth": 3, "spectrum_size": 16, "hidden": 64},
                                  augment=DIGITS_AUGMENT)
        t0 = time.time()
        net, report = train_detector(real_train, [fakes_train[f] for f in train_fams] + simulated, cfg,
                                     progress=sys.stderr.isatty())
        secs = time.time() - t0
        emit({"stage": "detector", "held_out": held, "trained_on": train_fams, "train_seconds": round(secs, 1),
              "steps": args.steps, "batch": args.batch, "calibration": report["calibration"],
              "thresholds": report["processing_thresholds"], "calibration_real_fpr": report["processing_real_fpr"],
              "in_distribution_test": report["test"]})
        targets = {held: fakes_test[held]} if held != "none" else {**fakes_test, **peers}
        for fam, fake in targets.items():
            for perturb in (None, PERTURBED):
                emit({"stage": "generalisation", "held_out": held if fam not in peers else f"peer {fam}",
                      "trained_on": train_fams, "tested_on": fam, "condition": perturb.name if perturb else "clean",
                      **evaluate(net, real_test, fake, perturb)})


def parse_peers(specs: list[str], families: list[str]) -> list[tuple[str, Path]]:
    """``NAME=DIR`` pairs of ``--peer``, checked before any training: a missing folder, or a name that is one of
    ``families`` (its fakes would replace the family's), stops the run."""
    out = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not Path(folder).is_dir():
            raise SystemExit(f"--peer expects NAME=DIR with an existing folder of fakes, got {spec!r}")
        if name in families:
            raise SystemExit(f"--peer name {name!r} is a ganforge family; name the peer differently")
        out.append((name, Path(folder)))
    return out


def faces(args: argparse.Namespace) -> None:
    root = SHARED / "real_fake_faces" / "Fake_Dataset" / "Test"
    if not root.is_dir():
        emit({"stage": "faces", "skipped": f"{root} is absent"})
        return
    real, fake = read_images(root / "Real_Faces"), read_images(root / "Fake_Faces")
    rng = np.random.default_rng(args.seed)
    halves = {}
    for name, s in (("real", real), ("fake", fake)):
        perm = rng.permutation(len(s))
        halves[name] = (s.subset(perm[: len(s) // 2]), s.subset(perm[len(s) // 2 :]))
    sizes = {n: [min(im.shape[:2]) for im in halves[n][1].images] for n in ("real", "fake")}
    y = np.array([0] * len(sizes["real"]) + [1] * len(sizes["fake"]))
    size_only = summarize(np.log(np.array(sizes["real"] + sizes["fake"], dtype=np.float64)), y)
    emit({"stage": "faces-size-baseline", "score": "log short side (bigger = fake)", "auc": size_only["auc"],
          "ap": size_only["ap"], "n_real": size_only["n_real"], "n_fake": size_only["n_fake"]})
    cfg = DetectorTrainConfig(crop=64, steps=args.face_steps, batch=args.batch, seed=args.seed, calib_fraction=0.2,
                              test_fraction=0.2, model={"width": 16, "depth": 4, "spectrum_size": 32, "hidden": 64})
    t0 = time.time()
    net, report = train_detector(halves["real"][0], [halves["fake"][0]], cfg, progress=sys.stderr.isatty())
    secs = time.time() - t0
    test_real, test_fake = halves["real"][1].images, halves["fake"][1].images
    for perturb in (None, PERTURBED):
        emit({"stage": "faces", "train": "half of Test (stratified)", "test": "other half",
              "condition": perturb.name if perturb else "clean", "train_seconds": round(secs, 1),
              "temperature": report["calibration"]["temperature"],
              **evaluate(net, test_real, test_fake, perturb)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/ganforge-detbench", help="Generators and data go here (reused).")
    ap.add_argument("--families", default="dcgan,gan,progan,stylegan")
    ap.add_argument("--gen-kimg", default="5,stylegan=2.5",
                    help="Generator training length in kimg: one value, and/or per-family FAMILY=KIMG overrides.")
    ap.add_argument("--n-fake", type=int, default=2000, help="Training fakes per family.")
    ap.add_argument("--n-test", type=int, default=1000, help="Test reals (MNIST test) and test fakes per family.")
    ap.add_argument("--steps", type=int, default=2000, help="Detector optimisation steps.")
    ap.add_argument("--face-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-faces", action="store_true")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=DIR",
                    help="Fakes of a generator from another codebase (32x32 grey images, as the padded digits), "
                    "scored by the detector that saw every ganforge family; repeatable.")
    ap.add_argument("--no-family-holdout", action="store_true",
                    help="Train only the detector that sees every family (for --peer), not one per held-out family.")
    ap.add_argument("--simulate", default="transposed,nearest,bilinear,pixelshuffle",
                    help="Also train on simulated fakes (reals re-synthesised by auto-encoders with these upsamplers: "
                    "transposed,nearest,bilinear,pixelshuffle; AutoGAN, Zhang et al. 2019); '' for none.")
    ap.add_argument("--simulate-steps", default="150,600",
                    help="Training steps of the simulating auto-encoders; several split each set between "
                    "auto-encoders of those lengths (run N in BENCHMARKS.md; runs A-M used 300).")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    emit({"benchmark": "detector_generalisation", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
          "cpus": torch.get_num_threads(), "torch": torch.__version__, "args": vars(args)})
    t0 = time.time()
    generalisation(args, workdir)
    if not args.skip_faces:
        faces(args)
    emit({"stage": "done", "seconds": round(time.time() - t0, 1)})


if __name__ == "__main__":
    main()
