"""The packaged face detector on fakes of generators written elsewhere (issue 17, "generalisation measured across
codebases").

The detector (``--detector``, default the packaged ``faces``) is scored on held-out real faces (``--real``: CelebA
faces it did not train on) against each fake folder given as ``NAME=DIR`` (fakes of peer GAN implementations trained
on the same faces; this script never downloads or trains anything), clean and after a 0.5x rescale + JPEG q=75.
For every fake folder, setting and stage (``trace``; ``distance`` when the detector has one; ``combined``, the label
``detect predict`` prints) one JSON line reports:

- ``auc``, ``ap``: ranking (threshold-free) on the logits;
- ``acc_stored``: accuracy at the detector's stored threshold (probability >= 0.5, i.e. the label ``detect
  predict`` prints), ``acc_best``: the best accuracy any single threshold reaches on this set, and their gap;
- ``real_flagged``: share of the reals called fake at the stored threshold; ``fake_caught``: share of fakes called
  fake.

``--upscaled`` adds, per enlargement of the reals alone (Lanczos 4x; Lanczos 10x then JPEG 90; bilinear 6x then
JPEG 90: CelebA-HQ's reals are CelebA faces enlarged about that much, and training enlarges with bicubic only), one
line with the share of those enlarged reals called fake (``real_flagged``): a real photo must not be called generated
because it was enlarged; and per fake folder given, the figures above for the same enlargement of reals and fakes.

A ``pooled`` line per setting scores the reals against all fake folders together (one real half, one fake half
made of every folder). ``--smoke DIR`` instead scores ``DIR/Fake_Faces`` vs ``DIR/Real_Faces`` restricted to the
files named ``000xxx.jpg`` (the 1024 px part of ../shared/data/real_fake_faces; the ``File_*`` images differ in size
by label), clean only: AP and accuracy at the stored threshold. Run it once, at the end; never choose settings on it.

    python benchmarks/face_detector.py --real /tmp/facedet/real_test \\
        pytorchgan_dcgan=/tmp/facedet/peers/pytorchgan_dcgan/t780s examples_dcgan=/tmp/facedet/peers/...
    python benchmarks/face_detector.py --smoke ../shared/data/real_fake_faces/Fake_Dataset/Test
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ganforge.detection.data import ImageSet, Perturbation, jpeg, read_images
from ganforge.detection.evaluate import average_precision, roc_auc
from ganforge.detection.predict import DEFAULT_DETECTOR, load_detector, load_distance, stage_logits

SETTINGS = {"clean": Perturbation(), "jpeg75+scale0.5": Perturbation(jpeg_quality=75, scale=0.5)}
SMOKE_NAME = re.compile(r"^000\d{3}\.jpg$")


@dataclass(frozen=True)
class Enlarge:
    """Enlarge by ``factor`` with PIL's ``method``, then JPEG at ``quality`` (None: none)."""

    factor: float
    method: int
    quality: int | None = None

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        im = Image.fromarray(arr).resize((round(arr.shape[1] * self.factor), round(arr.shape[0] * self.factor)),
                                         self.method)
        return np.asarray(im) if self.quality is None else jpeg(np.asarray(im), self.quality)


UPSCALED = {"lanczos4": Enlarge(4, Image.LANCZOS), "lanczos10+jpeg90": Enlarge(10, Image.LANCZOS, 90),
            "bilinear6+jpeg90": Enlarge(6, Image.BILINEAR, 90)}


def best_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The highest accuracy of any threshold ``t`` (a score ``>= t`` called fake), including calling everything one
    class."""
    cand = np.r_[np.unique(logits), np.inf]
    fp = (labels == 0).sum() - np.searchsorted(np.sort(logits[labels == 0]), cand, side="left")
    fn = np.searchsorted(np.sort(logits[labels == 1]), cand, side="left")
    return float(1.0 - (fp + fn).min() / len(labels))


def measure(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """The figures of the module docstring from the logits of reals ``[R]`` and fakes ``[F]`` (0 = stored
    threshold)."""
    s = np.r_[real, fake].astype(np.float64)
    y = np.r_[np.zeros(len(real), dtype=int), np.ones(len(fake), dtype=int)]
    acc = float(np.mean((s >= 0) == (y == 1)))
    best = best_accuracy(s, y)
    return {"auc": roc_auc(s, y), "ap": average_precision(s, y), "acc_stored": acc, "acc_best": best,
            "acc_gap": best - acc, "real_flagged": float(np.mean(real >= 0)), "fake_caught": float(np.mean(fake >= 0)),
            "n_real": len(real), "n_fake": len(fake)}


Scorer = Callable[..., dict[str, np.ndarray]]


def scorer(det: str) -> Scorer:
    """``score(images, perturb=None)``: every stage's logits (0 = its stored threshold) and ``combined``, the
    label ``detect predict`` prints (``ganforge.detection.predict.stage_logits``)."""
    net, meta = load_detector(det)
    distance, view = load_distance(det), (meta.get("preprocess") or {}).get("view", "tiles")
    return lambda images, perturb=None: stage_logits(net, images, view, perturb, distance)[0]


def _read(path: str, pattern: re.Pattern | None = None) -> ImageSet:
    images = read_images(path)
    if images.errors:
        raise SystemExit(f"{path}: {len(images.errors)} unreadable file(s), e.g. {images.errors[0]}")
    if pattern is not None:
        images = images.subset([i for i, n in enumerate(images.names) if pattern.match(Path(n).name)])
    if not len(images):
        raise SystemExit(f"{path}: no images")
    return images


def _named(fakes: list[str]) -> list[tuple[str, str]]:
    """``NAME=DIR`` (or ``DIR``, named by its last part) -> (name, dir)."""
    return [tuple(f.split("=", 1)) if "=" in f else (Path(f).name, f) for f in fakes]  # type: ignore[misc]


def run_peers(det: str, real: str, fakes: list[str], settings: list[str]) -> None:
    score = scorer(det)
    named = _named(fakes)
    real_set = _read(real)
    for setting in settings:
        perturb, t0 = SETTINGS[setting], time.time()
        r = score(real_set.images, perturb)
        pooled: dict[str, list[np.ndarray]] = {k: [] for k in r}
        for name, path in named:
            f = score(_read(path).images, perturb)
            for stage in r:
                pooled[stage].append(f[stage])
                print(json.dumps({"detector": det, "fake": name, "fake_dir": path, "setting": setting,
                                  "stage": stage, **measure(r[stage], f[stage])}), flush=True)
        for stage in r:
            print(json.dumps({"detector": det, "fake": "pooled", "setting": setting, "stage": stage,
                              **measure(r[stage], np.concatenate(pooled[stage])),
                              "seconds": round(time.time() - t0, 1)}), flush=True)


def run_upscaled(det: str, real: str, fakes: list[str]) -> None:
    score = scorer(det)
    images = _read(real).images
    fake_sets = [(fake, path, _read(path).images) for fake, path in _named(fakes)]  # read once, enlarged 3 ways
    for name, enlarge in UPSCALED.items():
        r = score(images, enlarge)["combined"]
        print(json.dumps({"detector": det, "real_dir": real, "setting": name, "real_flagged": float(np.mean(r >= 0)),
                          "median_logit": float(np.median(r)), "n_real": len(r)}), flush=True)
        for fake, path, fake_images in fake_sets:
            f = score(fake_images, enlarge)["combined"]
            print(json.dumps({"detector": det, "fake": fake, "fake_dir": path, "setting": name, **measure(r, f)}),
                  flush=True)


def run_smoke(det: str, root: str) -> None:
    score = scorer(det)
    real = score(_read(str(Path(root) / "Real_Faces"), SMOKE_NAME).images)
    fake = score(_read(str(Path(root) / "Fake_Faces"), SMOKE_NAME).images)
    for stage in real:
        print(json.dumps({"detector": det, "set": "real_fake_faces 000xxx.jpg (1024 px)", "setting": "clean",
                          "stage": stage, **measure(real[stage], fake[stage])}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fakes", nargs="*", metavar="NAME=DIR", help="Folders of peer fakes (NAME= optional).")
    ap.add_argument("--real", help="Held-out real faces (a folder).")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help="Detector folder or packaged name.")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="Comma-separated, of: " + ", ".join(SETTINGS))
    ap.add_argument("--upscaled", action="store_true", help="Also the share of --real flagged after enlargements.")
    ap.add_argument("--smoke", metavar="DIR", help="Score the smoke set's 1024 px part instead (once, at the end).")
    args = ap.parse_args()
    if args.smoke:
        run_smoke(args.detector, args.smoke)
    elif args.real and args.fakes:
        settings = args.settings.split(",")
        if not set(settings) <= set(SETTINGS):
            ap.error(f"--settings: unknown {sorted(set(settings) - set(SETTINGS))}; expected some of {list(SETTINGS)}")
        run_peers(args.detector, args.real, args.fakes, settings)
    if args.upscaled and args.real:
        run_upscaled(args.detector, args.real, args.fakes)
    elif not args.smoke and not (args.real and args.fakes):
        ap.error("give --real and at least one fake folder (or --upscaled), or --smoke DIR")


if __name__ == "__main__":
    main()
