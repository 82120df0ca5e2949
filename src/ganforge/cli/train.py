"""``ganforge train``: parse options into a ``TrainConfig``, then hand it to the library's ``Trainer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ganforge.augment import DIFFAUGMENT_CHOICES
from ganforge.cli.options import csv_list, json_dict
from ganforge.data import RESIZE_POLICIES
from ganforge.train.config import DEVICES, PRECISIONS, TrainConfig
from ganforge.train.recipes.photo import photo_defaults

# option name -> TrainConfig field (all default to None = "not given", so recipe defaults and --config apply)
_FIELDS = {
    "model": "model",
    "preset": "preset",
    "data": "data",
    "data_dir": "data_dir",
    "domain_b": "domain_b",
    "resolution": "resolution",
    "channels": "channels",
    "resize": "resize",
    "max_images": "max_images",
    "cond": "cond",
    "clusters": "clusters",
    "xflip": "xflip",
    "translate": "translate",
    "z_dim": "z_dim",
    "g_kwargs": "g_kwargs",
    "d_kwargs": "d_kwargs",
    "loss": "loss",
    "loss_kwargs": "loss_kwargs",
    "d_steps": "d_steps",
    "schedule_kwargs": "schedule_kwargs",
    "batch": "batch",
    "batch_gpu": "batch_gpu",
    "lr_g": "lr_g",
    "lr_d": "lr_d",
    "betas": "betas",
    "ema_kimg": "ema_kimg",
    "ema_bn_images": "ema_bn_images",
    "kimg": "kimg",
    "lr_rampdown": "lr_rampdown",
    "outdir": "outdir",
    "grid_kimg": "grid_kimg",
    "snapshot_kimg": "snapshot_kimg",
    "metrics": "metrics",
    "metrics_every": "metrics_every_kimg",
    "metrics_n": "metrics_n",
    "stop_when": "stop_when",
    "patience": "patience",
    "heldout": "heldout",
    "diagnostics": "diagnostics",
    "seed": "seed",
    "device": "device",
    "precision": "precision",
    "channels_last": "channels_last",
    "compile": "compile",
    "threads": "threads",
}


def _model_choices() -> list[str]:
    from ganforge.train.recipes import recipe_names

    return recipe_names()


@click.command(context_settings={"show_default": True})
@click.option(
    "--model", type=click.Choice(_model_choices()), help="Model family. [default: gan for point sets, else dcgan]"
)
@click.option(
    "--preset",
    type=click.Choice(["points", "paper"]),
    help="Defaults for gan on point sets: points (tuned: R1, G EMA; default) or paper (Goodfellow 2014, collapses).",
)
@click.option(
    "--data",
    "--domain-a",
    "data",
    metavar="NAME|PATH",
    help="Built-in dataset (see `ganforge datasets`) or a folder/zip/npz/IDX path. [default: digits]",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding a built-in dataset's files.")
@click.option("--domain-b", metavar="NAME|PATH", help="Second domain for translation models (--model unit).")
@click.option("--resolution", type=click.IntRange(1, 4096), help="Target size; images are resized by --resize.")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Convert images to 1 (gray) or 3 (RGB) channels.")
@click.option("--resize", type=click.Choice(RESIZE_POLICIES), help="Resize policy. [default: center-crop]")
@click.option("--skip-bad", is_flag=True, default=None, help="Skip unreadable images with a warning.")
@click.option("--max-images", type=click.IntRange(1), help="Use only the first N images.")
@click.option(
    "--cond/--no-cond",
    default=None,
    help="Class-conditional training (needs labels). [default: on for the built-in digits run without --data]",
)
@click.option(
    "--clusters",
    type=click.IntRange(2),
    metavar="K",
    help="Self-conditioned GAN (Liu et al. 2020): G and D conditioned on K k-means clusters of the images, no labels "
    "needed; samples draw clusters with the clusters' frequencies. [default: off]",
)
@click.option("--xflip/--no-xflip", default=None, help="Random horizontal flips of real images.")
@click.option("--translate", type=click.IntRange(0), metavar="PX",
              help="Random whole-pixel shifts of real images, up to PX per axis (--model unit). "
              "[default: 2 at 32 px and below, else 0]")
@click.option("--z-dim", type=click.IntRange(1), help="Latent size. [default: 100]")
@click.option("--g-kwargs", callback=json_dict, help="Generator options as JSON, e.g. '{\"width\": 32}'.")
@click.option("--d-kwargs", callback=json_dict, help="Discriminator options as JSON.")
@click.option(
    "--loss", help="Loss name (default: the family's; minimax, non-saturating, hinge, wgan-gp, relativistic, ...)."
)
@click.option("--loss-kwargs", callback=json_dict, help="Loss options as JSON.")
@click.option(
    "--schedule-kwargs",
    callback=json_dict,
    help='Growth schedule (progan) as JSON: fade_kimg, stable_kimg, batch_sizes, e.g. \'{"fade_kimg": 20}\'.',
)
@click.option("--d-steps", type=click.IntRange(1), help="Discriminator steps per generator step (Goodfellow's k).")
@click.option("--pack", type=click.IntRange(1), help="PacGAN: D judges N samples at once (gan, dcgan: d_kwargs.pack).")
@click.option("--mbstd-group", type=click.IntRange(2), help="Minibatch stddev in D over groups of N (gan, dcgan).")
@click.option("--r1-gamma", type=click.FloatRange(0), help="R1 penalty on reals, classic losses: loss_kwargs.r1_gamma.")
@click.option("--r2-gamma", type=click.FloatRange(0), help="R2 penalty on fakes, classic losses: loss_kwargs.r2_gamma.")
@click.option("--reg-interval", type=click.IntRange(1),
              help="Lazy R1/R2, classic losses: the penalties every N steps, weighted N (loss_kwargs.reg_interval).")
@click.option(
    "--augment",
    type=click.Choice(DIFFAUGMENT_CHOICES),
    help="DiffAugment of D's inputs, classic and unit losses (loss_kwargs.augment; fastgan: on by default).",
)
@click.option("--batch", type=click.IntRange(1), help="Global batch size. [default: 32]")
@click.option("--batch-gpu", type=click.IntRange(1), help="Per-device micro-batch (gradient accumulation).")
@click.option("--lr-g", type=click.FloatRange(0, min_open=True), help="Generator learning rate. [default: 2e-4]")
@click.option("--lr-d", type=click.FloatRange(0, min_open=True), help="Discriminator learning rate. [default: 2e-4]")
@click.option("--lr-rampdown", type=click.FloatRange(0, 1), metavar="FRACTION",
              help="Ramp both learning rates down to 0 (half cosine) over this final fraction of --kimg. [0: off]")
@click.option("--betas", type=(float, float), help="Adam betas. [default: 0.5 0.999]")
@click.option("--ema-kimg", type=click.FloatRange(0), help="Half-life of the G EMA in kimg (0 = off).")
@click.option("--ema-bn-images", type=click.IntRange(0), help="Latents over which G_ema's batch-norm statistics are "
              "re-estimated before it is saved or measured (0 = copied from G). [default: 4096]")
@click.option("--kimg", type=click.FloatRange(0, min_open=True), help="Training length in thousands of images.")
@click.option("--outdir", type=click.Path(file_okay=False), help="Where run directories go. [default: runs]")
@click.option("--grid-kimg", type=click.FloatRange(0, min_open=True), help="Sample grid every N kimg.")
@click.option("--snapshot-kimg", type=click.FloatRange(0, min_open=True), help="Checkpoint every N kimg.")
@click.option("--metrics", callback=csv_list, help="Metrics during training, e.g. fid,modes.")
@click.option("--metrics-every", type=click.FloatRange(0, min_open=True), help="Evaluate metrics every N kimg.")
@click.option("--metrics-n", type=click.IntRange(1), help="Generated samples per metric evaluation.")
@click.option("--stop-when", help='Stopping rule, e.g. "fid<12".')
@click.option("--patience", type=click.IntRange(1), help="Stop after N evaluations without improvement.")
@click.option("--heldout", type=click.IntRange(0), help="Hold N reals out of training for D's overfitting signal.")
@click.option("--diagnostics/--no-diagnostics", default=None, help="Coverage/overfitting/saturation checks per grid.")
@click.option("--seed", type=int, help="Random seed. [default: 0]")
@click.option("--device", type=click.Choice(DEVICES), help="Device. [default: auto]")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="bf16: autocast; auto: bf16 on a CPU with AMX or AVX512-BF16. [default: fp32]")
@click.option("--channels-last", is_flag=True, default=None, help="channels_last memory format.")
@click.option("--compile", is_flag=True, default=None, help="torch.compile the networks.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads (torch.set_num_threads).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="Base config (JSON).")
@click.option("--resume", type=click.Path(exists=True), help="Continue a run (its directory or a checkpoint).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_file: str | None, resume: str | None, dry_run: bool, quiet: bool, skip_bad: bool | None, **options: Any
) -> None:
    """Train a GAN. With no options: a class-conditional DCGAN on the built-in digits, on the CPU, in a few minutes.

    \b
    Examples:
      ganforge train
      ganforge train --data ./face_photos   # colour photos: the photo recipe (fastgan, 64 px, DiffAugment)
      ganforge train --data ./my_photos --resolution 64 --channels 3 --kimg 500
      ganforge train --model gan --loss minimax --d-steps 2
      ganforge train --data ring8                 # MLP GAN, 'points' preset: all 8 modes
      ganforge train --data ring8 --preset paper  # the 2014 recipe: watch mode collapse
      ganforge train --data ring8 --preset paper --pack 2 --kimg 300
      ganforge train --resume runs/00000-dcgan-digits --kimg 120
      ganforge train --resume runs/00001-fastgan-faces --kimg 1150 --ema-kimg 10 --lr-rampdown 0.15
      torchrun --nproc_per_node 2 -m ganforge train --device cpu
    """
    shortcuts = (("d_kwargs", "pack"), ("d_kwargs", "mbstd_group"), ("loss_kwargs", "r1_gamma"),
                 ("loss_kwargs", "r2_gamma"), ("loss_kwargs", "reg_interval"))
    coverage = {name: options.pop(name) for _, name in shortcuts}
    augment = options.pop("augment")
    given = {_FIELDS[k]: v for k, v in options.items() if v is not None}
    for key, name in shortcuts:
        if coverage[name] is not None:  # shortcuts for one key of the kwargs dicts
            given[key] = {**given.get(key, {}), name: coverage[name]}
    if "channels" in given:
        given["channels"] = int(given["channels"])
    if skip_bad:
        given["on_error"] = "skip"
    if augment is not None:
        given["loss_kwargs"] = {**given.get("loss_kwargs", {}), "augment": augment}
    photo = {} if "model" in given or config_file or resume else photo_defaults(given.get("data"))
    given = under(photo, given)  # a folder of colour photos: the photo recipe's values, under the options given
    cfg = resolve_config(given, config_file, resume)
    if dry_run:
        print_dry_run(cfg, given["data"] if photo else None)
        return
    from ganforge.train import distributed as ddp
    from ganforge.train.build import build
    from ganforge.train.loop import Trainer

    trainer = Trainer(build(cfg), resume=resume, progress=not quiet)
    if cfg.precision == "auto" and trainer.dist.is_main:
        click.echo(f"precision auto -> {trainer.precision} on this {trainer.device.type}", err=True)
    try:
        run = trainer.run()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:  # leave the process group before exit: gloo's threads abort the process if torn down with it
        ddp.shutdown(trainer.dist)
    if trainer.dist.is_main:
        click.echo(f"done: {run}")


def print_dry_run(cfg: TrainConfig, photos: str | None) -> None:
    """``--dry-run``: the resolved config on stdout; on stderr, why a folder of ``photos`` chose its family, and that
    loss weights the recipe takes from the loaded data are not in the printed config (the run's saved config holds
    them)."""
    from ganforge.train.recipes import get_recipe

    if photos is not None:
        click.echo(f"photo recipe: {photos} holds colour photos -> model {cfg.model}", err=True)
    recipe = get_recipe(cfg.model)
    if recipe.adds_loss_defaults(cfg.loss or recipe.loss):
        click.echo(f"note: model {cfg.model} adds loss weights that depend on the loaded data (its recipe's "
                   "loss_defaults, under loss_kwargs); the run's saved config holds the weights it trains with",
                   err=True)
    click.echo(json.dumps(cfg.to_dict(), indent=2))


def under(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """``lower`` overridden by ``upper``, with the kwargs dicts merged key by key: an option adds to a recipe's or
    preset's dict instead of replacing it (``--d-kwargs '{"spectral": false}'`` on photos keeps the photo recipe's D
    width)."""
    merged = {**lower, **upper}
    for key in ("g_kwargs", "d_kwargs", "loss_kwargs"):
        if key in lower or key in upper:
            merged[key] = {**lower.get(key, {}), **upper.get(key, {})}
    return merged


def resolve_config(given: dict[str, Any], config_file: str | None, resume: str | None) -> TrainConfig:
    """Layering: TrainConfig defaults < recipe defaults (with its bare-run and per-data entries, ``defaults_for``) <
    preset (gan on point sets) < --config file < resumed run's config < options given."""
    from ganforge.train.recipes import get_recipe

    base: dict[str, Any] = {}
    if config_file:
        base = json.loads(Path(config_file).read_text())
        base = base.get("train", base)
    if resume:
        from ganforge.checkpoint import read_config, resolve_checkpoint

        saved = read_config(resolve_checkpoint(resume))["train"]
        saved.setdefault("translate", 0)  # runs saved before --translate existed trained without shifts
        check_resume_changes(saved, given)
        base = saved
    from ganforge.train.recipes.gan import default_model, resolve_preset

    data = given.get("data", base.get("data", "digits"))
    model = given.get("model", base.get("model", default_model(data)))
    if resume:
        return TrainConfig.from_dict({**base, **given})
    try:
        preset, preset_values = resolve_preset(model, data, given.get("preset", base.get("preset")))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    chosen = set(given) | set(base)  # options the user set, on the command line or in --config
    defaults = {**get_recipe(model).defaults_for(data, chosen), **preset_values}
    merged = under(defaults, {**base, **given, "model": model, "preset": preset})
    return TrainConfig.from_dict(merged)


# What a resumed run may change: where and how long it runs, two schedules that shape the end of training without
# touching the saved networks or optimiser state (the G EMA's half-life and the learning-rate ramp-down), and how many
# latents G_ema's batch-norm statistics are re-estimated over (read only when G_ema is saved or measured).
RESUME_MAY_CHANGE = ("kimg", "device", "threads", "ema_kimg", "lr_rampdown", "ema_bn_images")


def check_resume_changes(saved: dict[str, Any], given: dict[str, Any]) -> None:
    """Refuse options that would not match the saved run (networks, data, optimiser); the EMA may change its
    half-life but not appear or vanish, since G_ema is a saved network."""
    changed = {k for k, v in given.items() if k not in RESUME_MAY_CHANGE and saved.get(k) != v}
    if changed:
        raise click.UsageError(
            f"--resume keeps the run's config; only --{'/--'.join(k.replace('_', '-') for k in RESUME_MAY_CHANGE)} "
            f"may change (got {', '.join(sorted(changed))})"
        )
    if "ema_kimg" in given and (given["ema_kimg"] > 0) != (saved.get("ema_kimg", 0) > 0):
        state = "on" if given["ema_kimg"] > 0 else "off"
        raise click.UsageError(
            f"--ema-kimg {given['ema_kimg']:g} on resume would turn the G EMA {state}; "
            f"the run was trained with --ema-kimg {saved.get('ema_kimg', 0):g}"
        )




COMMANDS = [train]
