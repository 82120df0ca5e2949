"""``ganforge classifier train``: train the digit classifier behind the ``digits`` metrics extractor."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def classifier() -> None:
    """The digit classifier used by the `digits` extractor (digits FID/KID/IS, mode counts)."""


@classifier.command(context_settings={"show_default": True})
@click.option("--data", default="digits", help="Labelled training images (built-in name or path).")
@click.option("--test", "test_data", default=None,
              help="Labelled test images to measure accuracy on (e.g. the MNIST test split t10k-images-idx3-ubyte.gz, "
                   "or mnist-test).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Checkpoint folder to write.")
@click.option("--epochs", type=click.IntRange(1, 1000), default=30)
@click.option("--batch", "batch_size", type=click.IntRange(1, 4096), default=128)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=2e-3, help="Peak learning rate (one-cycle).")
@click.option("--width", type=click.IntRange(4, 256), default=16, help="Base channel width (features = 4 * width).")
@click.option("--augment", type=click.FloatRange(0, 3), default=1.0,
              help="Affine augmentation strength (1 = +-10 degrees, +-10 % scale and shift; 0 = none).")
@click.option("--seed", type=int, default=0)
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: torch's).")
def train(data: str, test_data: str | None, out: str, epochs: int, batch_size: int, lr: float, width: int,
          augment: float, seed: int, threads: int | None) -> None:
    """Train the classifier on DATA and record its test accuracy in OUT/config.json.

    \b
    Examples:
      ganforge classifier train --out runs/classifier
      ganforge classifier train --test ../shared/data/mnist/t10k-images-idx3-ubyte.gz \
          --out src/ganforge/pretrained/classifier
    """
    import torch

    from ganforge.data import load_dataset
    from ganforge.metrics.train_classifier import accuracy, confident_share, save_classifier, train_classifier

    if threads:
        torch.set_num_threads(threads)
    train_set = load_dataset(data)
    net, record = train_classifier(train_set, epochs, batch_size, lr, width, seed, augment)
    acc, _ = accuracy(net, train_set)
    record["train_accuracy"] = acc
    if test_data:
        test_set = load_dataset(test_data)
        acc, per_class = accuracy(net, test_set)
        record["test"] = {"dataset": str(test_data), "images": len(test_set), "accuracy": acc,
                          "confident_share_0.9": confident_share(net, test_set), "per_class_accuracy": per_class}
    path = save_classifier(Path(out), net, record)
    click.echo(json.dumps({k: v for k, v in record.items() if k != "test"}))
    if test_data:
        test = record["test"]
        click.echo(f"test accuracy on {test_data}: {test['accuracy']:.4f} ({test['images']} images); "
                   f"confidence >= 0.9 on {test['confident_share_0.9']:.4f}")
    click.echo(f"wrote {path}")


COMMANDS = [classifier]
