"""``ganforge datasets`` and ``ganforge info``: what is available, and what a file or folder holds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ganforge.checkpoint import CheckpointError, read_config, resolve_checkpoint


@click.command()
def datasets() -> None:
    """List the built-in datasets.

    \b
    Example:
      ganforge datasets
    """
    from ganforge.data import DATASETS, dataset_names

    for name in dataset_names():
        d = DATASETS.get(name)
        where = "download or --data-dir" if d.needs_download else "offline"
        click.echo(
            f"{name:15s} {d.resolution}x{d.resolution}x{d.channels}  {d.num_classes:5d} classes  [{where}]  "
            f"{d.description}"
        )


@click.command()
@click.argument("path", metavar="PATH")
def info(path: str) -> None:
    """Describe a checkpoint, run directory, packaged model or dataset.

    \b
    Examples:
      ganforge info digits
      ganforge info runs/00000-dcgan-digits
      ganforge info ./my_photos
    """
    try:
        ckpt = resolve_checkpoint(path)
        meta = read_config(ckpt)
    except CheckpointError:
        ckpt = None
    if ckpt is not None:
        from ganforge.checkpoint import load_networks
        from ganforge.models.base import count_parameters

        click.echo(f"checkpoint: {ckpt}")
        click.echo(f"kind: {meta.get('kind', '?')}  family: {meta.get('family', '?')}  loss: {meta.get('loss', '?')}")
        if "nimg" in meta:
            click.echo(f"trained on: {meta['nimg'] / 1000:.1f} kimg ({meta.get('step', '?')} steps)")
        if "dataset" in meta:
            click.echo(f"dataset: {json.dumps(meta['dataset'])}")
        nets = load_networks(ckpt)
        for name, net in nets.items():
            click.echo(
                f"  {name}: {meta['networks'][name]['class']}  {count_parameters(net):,} parameters  "
                f"{json.dumps(meta['networks'][name]['config'])}"
            )
        click.echo(f"training state: {'yes (resumable)' if (ckpt / 'state.pt').is_file() else 'no'}")
        return
    from ganforge.data import dataset_names, load_dataset

    if path not in dataset_names() and not Path(path).exists():
        raise click.UsageError(f"{path!r} is not a checkpoint, run, packaged model, built-in dataset or existing path")
    ds = load_dataset(path)
    click.echo(f"dataset: {ds.name}")
    click.echo(f"  samples: {len(ds)}  shape: {ds.channels}x{ds.resolution}x{ds.resolution}  dtype: {ds.data.dtype}")
    counts = ds.class_counts()
    click.echo(
        f"  labels: {ds.num_classes} classes, counts {counts.tolist()}" if counts is not None else "  labels: none"
    )


COMMANDS = [datasets, info]
