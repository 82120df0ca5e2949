"""A second stage for the face detector, measured before it is packaged (issue 17): how far a picture's FID Inception
features lie from those of real faces, beside the packaged trace detector.

The packaged ``faces`` detector (a trace CNN) ranks the fakes of generators from other codebases above real faces,
but after JPEG + rescaling it scores many of them below its threshold (BENCHMARKS.md). This script measures a stage
that needs no fakes at all: the squared Mahalanobis distance of a picture's Inception-v3 pool features (2048-d; the
FID network, ``ganforge.metrics.inception``) to a Gaussian fitted on real faces, the statistic FID compares sets
with, applied to one picture. Whatever lies far from real faces in that space is flagged, whichever codebase made it.

Views: each picture's centre square at native size, optionally processed (0.5x bicubic + JPEG 75, ganforge's
``Perturbation``), then the network's own resize to 299. The Gaussian is fitted on the ``--real-train`` faces as
stored and Lanczos-downscaled to 64 px (how the generators saw them), each clean and processed; its covariance is
shrunk 10 % toward its diagonal. The distance threshold is the 98.5th percentile of the ``--real-calib`` faces' (the
same four views), so about 1.5 % of real faces are flagged; the trace stage keeps its stored threshold.
The combined label is "fake" when either stage flags; the combined ranking score (for AUC) is the larger of the two
stages' calibration-real quantiles. Settings were fixed on PyTorch-GAN ``dcgan`` / ``wgan_gp`` fakes, then measured
once on PyTorch-GAN ``lsgan`` / ``relativistic_gan`` fakes (BENCHMARKS.md, forty-first session). The stage is
packaged since (``ganforge detect add-distance``, in low rank); ``benchmarks/face_detector.py`` measures the
packaged detector, stage by stage. This script keeps the full-rank prototype for comparison.

One JSON line per fake folder, setting and stage (``trace``, ``distance``, ``combined``): ``auc``, ``acc_stored``,
``acc_best``, ``real_flagged``, ``fake_caught``.

    python benchmarks/face_detector_distance.py --real-train CELEBA_1_1000 --real-calib CELEBA_3501_4000 \\
        --real CELEBA_4001_5000 lsgan=DIR relativistic_gan=DIR --first 1000
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from face_detector import best_accuracy  # this folder: the best single threshold's accuracy, ties respected

from ganforge.detection.data import Perturbation, read_images
from ganforge.detection.distance import centre_square
from ganforge.detection.distance import features as distance_features
from ganforge.detection.evaluate import roc_auc
from ganforge.detection.predict import DEFAULT_DETECTOR, load_detector, score_arrays
from ganforge.metrics.inception import InceptionExtractor

SETTINGS = {"clean": Perturbation(), "jpeg75+scale0.5": Perturbation(jpeg_quality=75, scale=0.5),
            "jpeg90+scale0.75": Perturbation(jpeg_quality=90, scale=0.75), "jpeg50": Perturbation(jpeg_quality=50)}
FIT_SETTINGS = ("clean", "jpeg75+scale0.5")  # the views the Gaussian and the threshold see
SHRINK, REAL_QUANTILE = 0.1, 0.985


def features(ext: InceptionExtractor, images: list[np.ndarray], setting: str, desc: str) -> np.ndarray:
    """Pool features ``[N, 2048]`` of the pictures' processed centre squares (the packaged stage's view)."""
    return distance_features(ext, images, SETTINGS[setting], progress=True, desc=f"{desc} {setting}")


def read(path: str, first: int | None = None) -> list[np.ndarray]:
    """A folder's pictures as RGB, whole (the trace stage tiles them; the distance stage takes their centre)."""
    return read_images(path).converted(3).images[:first]


class Distance:
    """Squared Mahalanobis distance to a Gaussian of real features, covariance shrunk toward its diagonal."""

    def __init__(self, real: np.ndarray) -> None:
        self.mean = real.mean(0)
        cov = np.cov(real, rowvar=False)
        self.precision = np.linalg.inv((1 - SHRINK) * cov + SHRINK * np.diag(np.diag(cov)))

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        d = feats - self.mean
        return np.einsum("ij,jk,ik->i", d, self.precision, d)


def stats(r: np.ndarray, f: np.ndarray, r_flag: np.ndarray, f_flag: np.ndarray) -> dict[str, float]:
    """Ranking and accuracy of scores ``r`` / ``f`` (reals / fakes) and of the labels ``r_flag`` / ``f_flag``."""
    y = np.r_[np.zeros(len(r), dtype=int), np.ones(len(f), dtype=int)]
    s = np.r_[r, f].astype(np.float64)
    return {"auc": round(roc_auc(s, y), 4), "acc_stored": round(float((np.r_[r_flag, f_flag] == y).mean()), 4),
            "acc_best": round(best_accuracy(s, y), 4), "real_flagged": round(float(r_flag.mean()), 4),
            "fake_caught": round(float(f_flag.mean()), 4)}


def quantile(calib: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(calib, x) / len(calib)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-train", required=True)
    ap.add_argument("--real-calib", required=True)
    ap.add_argument("--real", required=True, help="held-out real faces")
    ap.add_argument("fakes", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--first", type=int, default=None, help="at most this many pictures per fake folder")
    ap.add_argument("--settings", nargs="+", default=["clean", "jpeg75+scale0.5"], choices=list(SETTINGS))
    ap.add_argument("--detector", default=DEFAULT_DETECTOR)
    a = ap.parse_args()
    ext, (net, _) = InceptionExtractor(), load_detector(a.detector)
    train, calib = read(a.real_train), read(a.real_calib)
    train64, calib64 = [centre_square(im, size=64) for im in train], [centre_square(im, size=64) for im in calib]
    dist = Distance(np.concatenate([features(ext, im, s, "train") for im in (train, train64) for s in FIT_SETTINGS]))
    cal_d = np.sort(np.concatenate([dist(features(ext, im, s, "calib")) for im in (calib, calib64)
                                    for s in FIT_SETTINGS]))
    cal_t = np.sort(np.concatenate([score_arrays(net, im, perturb=SETTINGS[s]) for im in (calib, calib64)
                                    for s in FIT_SETTINGS]))
    d_thr = float(np.quantile(cal_d, REAL_QUANTILE))
    real = read(a.real)
    fakes = [(spec.split("=", 1)[0], read(spec.split("=", 1)[1], a.first)) for spec in a.fakes]
    for s in a.settings:
        rt, rd = score_arrays(net, real, perturb=SETTINGS[s]), dist(features(ext, real, s, "real"))
        for name, imgs in fakes:
            ft, fd = score_arrays(net, imgs, perturb=SETTINGS[s]), dist(features(ext, imgs, s, name))
            rows = {"trace": stats(rt, ft, rt >= 0, ft >= 0), "distance": stats(rd, fd, rd >= d_thr, fd >= d_thr),
                    "combined": stats(np.maximum(quantile(cal_t, rt), quantile(cal_d, rd)),
                                      np.maximum(quantile(cal_t, ft), quantile(cal_d, fd)),
                                      (rt >= 0) | (rd >= d_thr), (ft >= 0) | (fd >= d_thr))}
            for stage, row in rows.items():
                print(json.dumps({"fake": name, "setting": s, "stage": stage, **row}), flush=True)


if __name__ == "__main__":
    main()
