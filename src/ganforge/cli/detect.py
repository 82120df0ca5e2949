"""``ganforge detect ...``: train, apply, evaluate a detector of generated images, and draw average spectra.

The issue's ``ganforge detect DET IMAGE|DIR`` is spelt ``ganforge detect predict DET IMAGE|DIR`` here: a click group
cannot take a positional argument before its subcommand name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from ganforge.cli.options import csv_list, json_dict
from ganforge.data.errors import DataError
from ganforge.detection.train import THRESHOLD_RULES
from ganforge.models.detector import DEFAULT_PROCESSING


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

    Scoring is `ganforge detect predict DET IMAGE|DIR` (a command group cannot take DET before the subcommand).

    \b
    Examples:
      ganforge detect train --real digits --fake runs/00000-dcgan-digits --out det/
      ganforge detect predict det/ photo.png
      ganforge detect predict det/ ./folder --format csv > scores.csv
      ganforge detect eval det/ --real mnist-test --fake ./fakes --jpeg 75 --scale 0.5
      ganforge detect spectrum ./real --vs ./fakes --out spectrum.png
    """


def _numbers(values: list[str], option: str, kind: type = float, minimum: float | None = None) -> list:
    """``["0.5", "1"]`` -> ``[0.5, 1.0]`` (or ints with ``kind=int``); a usage error naming ``option`` otherwise."""
    what = "whole numbers" if kind is int else "numbers"
    try:
        out = [kind(v) for v in values]
    except ValueError:
        out = None
    if out is None or (minimum is not None and any(v < minimum for v in out)):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise click.BadParameter(f"expected comma-separated {what}{bound}, got {','.join(values)!r}",
                                 param_hint=option)
    return out


@detect.command("train", context_settings={"show_default": True})
@click.option("--real", required=True, metavar="NAME|PATH", help="Real images: built-in dataset or folder/zip/npz/IDX.")
@click.option("--fake", "fakes", multiple=True, metavar="PATH",
              help="Fake images: a folder, or a ganforge checkpoint/run sampled on the fly. Repeat for several.")
@click.option("--simulate", callback=csv_list, metavar="UPSAMPLERS",
              help="Also train on reals re-synthesised by auto-encoders with these generator upsamplers "
              "(transposed,nearest,bilinear,pixelshuffle; AutoGAN, Zhang et al. 2019).")
@click.option("--simulate-steps", callback=csv_list, default="150,600", metavar="STEPS",
              help="Training steps per auto-encoder; several (e.g. 150,600) split each simulated set between "
              "auto-encoders of those lengths, so it holds weak and strong upsampling traces.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Detector checkpoint folder to write.")
@click.option("--n-fake", type=click.IntRange(1), default=2000, help="Samples per checkpoint (and cap per folder).")
@click.option("--max-real", type=click.IntRange(1), help="Use at most this many real images.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding a built-in dataset's files.")
@click.option("--truncation", type=(float, float), default=(0.5, 1.0), help="Psi range for style-based generators.")
@click.option("--crop", type=click.IntRange(8), default=64, help="Patch size (random crop to train, centre at test).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Input channels. [default: 3 if any colour image]")
@click.option("--view", type=click.Choice(["center-crop", "resize"]), default="center-crop", help="Test-time view.")
@click.option("--steps", type=click.IntRange(1), default=1000, help="Optimisation steps.")
@click.option("--batch", type=click.IntRange(2), default=32, help="Batch size (half real, half fake; even).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, help="Adam learning rate.")
@click.option("--blur-prob", type=click.FloatRange(0, 1), default=0.5, help="Probability of Gaussian blur.")
@click.option("--jpeg-prob", type=click.FloatRange(0, 1), default=0.5, help="Probability of JPEG re-compression.")
@click.option("--resize-prob", type=click.FloatRange(0, 1), default=0.2, help="Probability of a random rescale.")
@click.option("--resize-scale", type=(float, float), default=(0.5, 1.5), help="Range of the random rescale.")
@click.option("--resize-exact", callback=csv_list, metavar="FACTORS",
              help="Exact rescale factors drawn with --resize-exact-prob instead of the range, e.g. 0.5 (halving: "
              "scaled back up by the test view it leaves a generator-like 2x2 pattern no nearby factor leaves).")
@click.option("--resize-exact-prob", type=click.FloatRange(0, 1), default=0.0,
              help="Probability that a rescale uses one of --resize-exact.")
@click.option("--real-fpr", type=click.FloatRange(0, 0.5, max_open=True), default=0.01,
              help="Set the 0.5 threshold where this share of held-out reals (as stored and augmented, separately "
              "for each --processing combination) score above it; 0 keeps the threshold where training put it.")
@click.option("--threshold", "threshold_rule", type=click.Choice(THRESHOLD_RULES), default="fewest-errors",
              show_default=True,
              help="fewest-errors: a --processing combination where the calibration fakes overlap the reals (a "
              "halved, re-compressed image) takes the lower threshold with the fewest errors on a balanced set "
              "instead, down to --max-real-fpr; real-fpr: every combination at --real-fpr.")
@click.option("--max-real-fpr", type=click.FloatRange(0, 0.5, max_open=True), default=0.03,
              help="The most held-out reals of one --processing combination that --threshold fewest-errors may put "
              "above the threshold.")
@click.option("--processing", default=DEFAULT_PROCESSING, metavar="STEPS",
              help="Processing the detector learns to recognise (blur, jpeg, resize joined by '+'); each "
              "combination gets its own threshold at --real-fpr. '' for one threshold for all images.")
@click.option("--model-kwargs", callback=json_dict, help='Detector options as JSON, e.g. \'{"spectrum": "dct"}\'.')
@click.option("--seed", type=int, default=0, help="Random seed (splits, batches, augmentation, fake seeds).")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(real: str, fakes: tuple[str, ...], simulate: list[str] | None, simulate_steps: list[str], out: str,
              n_fake: int, max_real: int | None, data_dir: str | None,
              truncation: tuple[float, float], crop: int, channels: str | None, view: str, steps: int, batch: int,
              lr: float, blur_prob: float, jpeg_prob: float, resize_prob: float,
              resize_scale: tuple[float, float], resize_exact: list[str] | None, resize_exact_prob: float,
              real_fpr: float, threshold_rule: str, max_real_fpr: float, processing: str, model_kwargs: dict | None,
              seed: int, device: str, dry_run: bool, quiet: bool) -> None:
    """Train a detector on real vs fake images, calibrate it on a held-out split, and save it.

    \b
    Each source is split into train / calibration / test (70/15/15). The decision threshold is set on the
    calibration reals (--real-fpr, or lower where --threshold fewest-errors finds the calibration fakes overlap
    the reals), separately for each combination of the --processing steps (the detector learns to recognise
    them), the temperature is fitted on the calibration split, and the test-split metrics
    (AUC, AP, accuracy, ECE before/after) are printed and saved.
    """
    from ganforge.detection.predict import save_detector
    from ganforge.detection.train import DetectorTrainConfig, train_detector

    cfg = DetectorTrainConfig(
        crop=crop, channels=int(channels) if channels else None, steps=steps, batch=batch, lr=lr, view=view,
        seed=seed, device=device, model={"processing": processing, **(model_kwargs or {})}, real_fpr=real_fpr or None,
        threshold=threshold_rule, max_real_fpr=max_real_fpr,
        augment={"blur_prob": blur_prob, "jpeg_prob": jpeg_prob, "resize_prob": resize_prob,
                 "resize_scale": resize_scale, "resize_exact": _numbers(resize_exact or [], "--resize-exact"),
                 "resize_exact_prob": resize_exact_prob},
    )
    sim_steps = tuple(_numbers(simulate_steps or [""], "--simulate-steps", int, minimum=1))
    if not fakes and not simulate:
        raise click.UsageError("give fake images with --fake (and/or simulated ones with --simulate)")
    from ganforge.detection.simulate import check_upsamplers

    try:
        check_upsamplers(simulate or [])
    except ValueError as e:
        raise click.UsageError(f"--simulate: {e}") from None
    sources = {"real": real, "fake": list(fakes), "n_fake": n_fake, "max_real": max_real,
               "truncation": list(truncation), "simulate": simulate or [], "simulate_steps": list(sim_steps)}
    if dry_run:
        click.echo(json.dumps({"train": cfg.to_dict(), "sources": sources}, indent=2))
        return
    (real_set,) = _load_sources((real,), max_real, seed, truncation, data_dir, device, quiet, "real")
    fake_sets = _load_sources(fakes, n_fake, seed + 1, truncation, data_dir, device, quiet, "fake")
    if simulate:
        from ganforge.detection.simulate import simulated_fakes
        from ganforge.detection.train import infer_channels

        c = int(channels) if channels else infer_channels([real_set, *fake_sets])
        fake_sets += simulated_fakes(real_set.converted(c), simulate, n_fake, crop, sim_steps, seed,
                                     progress=not quiet)
    try:
        net, report = train_detector(real_set, fake_sets, cfg, progress=not quiet)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    path = save_detector(out, net.cpu(), {"train": cfg.to_dict(), "data": sources, "report": report}, view)
    click.echo(json.dumps(report, indent=2))
    cal = report["calibration"]
    click.echo(f"wrote {path} (temperature {cal['temperature']:.3f}; test ECE {cal['ece_before']:.4f} -> "
               f"{cal['ece_after']:.4f}; test AUC {report['test']['auc']:.4f})", err=True)


@detect.command("predict", context_settings={"show_default": True})
@click.argument("detector", metavar="DET")
@click.argument("source", metavar="IMAGE|DIR")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
@click.option("--batch", type=click.IntRange(1), default=64, help="Images per forward pass.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def predict_cmd(detector: str, source: str, fmt: str, out: str | None, batch: int, device: str, quiet: bool) -> None:
    """Probability that each image is generated (calibrated), for one image or every image of a folder.

    \b
    Unreadable files get an entry with an "error" field; the rest of the folder is still scored.
    Exit status: 0 if at least one image was scored, 1 if none could be.
    Examples:
      ganforge detect predict det/ photo.jpg
      ganforge detect predict det/ ./folder --format csv --out scores.csv
    """
    from ganforge.detection.predict import load_detector, predict_path

    net, meta = load_detector(detector, device)
    records = predict_path(net, meta, source, batch_size=batch, progress=not quiet)
    text = _format(records, fmt)
    if out:
        Path(out).write_text(text)
    else:
        click.echo(text, nl=False)
    n_err = sum("error" in r for r in records)
    n_ok = len(records) - n_err
    click.echo(f"scored {n_ok} image(s), {n_err} unreadable", err=True)
    if n_ok == 0:
        raise SystemExit(1)


def _format(records: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["file", "p_fake", "logit", "label", "error"], lineterminator="\n")
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
    from ganforge.detection.predict import load_detector, score_arrays

    net, meta = load_detector(detector, device)
    view = meta.get("preprocess", {}).get("view", "center-crop")
    perturb = Perturbation(jpeg, scale)
    (real_set,) = _load_sources((real,), max_real, seed, truncation, data_dir, device, quiet, "real")
    fake_sets = _load_sources(fakes, n_fake, seed + 1, truncation, data_dir, device, quiet, "fake")
    images = real_set.images + [im for s in fake_sets for im in s.images]
    labels = np.array([0] * len(real_set) + [1] * (len(images) - len(real_set)))
    logits = score_arrays(net, images, view, perturb, progress=not quiet)
    result = {"detector": str(detector), "real": real, "fake": list(fakes), "perturbation": perturb.name,
              "temperature": float(net.temperature), **summarize(logits, labels, float(net.temperature)),
              "uncalibrated": summarize(logits, labels, 1.0)}
    click.echo(json.dumps(result, indent=2))


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
