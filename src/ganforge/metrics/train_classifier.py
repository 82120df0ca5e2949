"""Training and evaluating the digit classifier behind the ``digits`` extractor (``ganforge classifier train``).

The classifier is trained on the offline ``digits`` set (5,000 MNIST training digits) with light random affine
augmentation (rotation, scale, shift: handwriting varies that way, and generated digits are off-centre more often than
MNIST's; ``augment`` scales its strength), AdamW and a one-cycle learning-rate schedule. Its accuracy on the
10,000-image MNIST test split is measured and stored in the checkpoint's ``config.json`` with the share of test digits
it labels with >= 0.9 confidence, so every digits metric can say how reliable its classifier is.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.checkpoint import save_checkpoint
from ganforge.data import GanDataset
from ganforge.models.classifier import DigitsClassifier


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float = 10.0, scale: float = 0.1,
                  shift: float = 0.1) -> torch.Tensor:
    """Random rotation (+-degrees), scale (1 +- scale) and shift (+- shift * size) of ``[B, C, H, W]`` in [-1, 1];
    the background (-1) fills what comes in from outside."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen) * 2 - 1  # [B, 4] in [-1, 1)
    angle, s = u[:, 0] * math.radians(degrees), 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * 2 * shift], 1)], 1)  # [B, 2, 3]
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def accuracy(net: DigitsClassifier, data: GanDataset, batch_size: int = 500) -> tuple[float, list[float]]:
    """Overall and per-class accuracy of ``net`` on a labelled image dataset."""
    if data.labels is None:
        raise ValueError(f"dataset {data.name!r} has no labels; accuracy needs them")
    preds = _probabilities(net, data, batch_size).argmax(1)
    correct = preds == data.labels
    per_class = [float(correct[data.labels == k].double().mean()) for k in range(net.num_classes)]
    return float(correct.double().mean()), per_class


@torch.no_grad()
def confident_share(net: DigitsClassifier, data: GanDataset, threshold: float = 0.9, batch_size: int = 500) -> float:
    """Share of ``data`` the classifier labels with probability >= ``threshold``: on real digits this is the ceiling
    of the time-to-quality bar ("confidence >= 0.9 on >= 90 % of samples")."""
    return float((_probabilities(net, data, batch_size).max(1).values >= threshold).double().mean())


def _probabilities(net: DigitsClassifier, data: GanDataset, batch_size: int) -> torch.Tensor:
    net.eval()
    return torch.cat([net(data.batch(torch.arange(i, min(i + batch_size, len(data))))).softmax(1)
                      for i in range(0, len(data), batch_size)])


def train_classifier(
    train: GanDataset,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    augment: float = 1.0,
    progress: bool = True,
) -> tuple[DigitsClassifier, dict[str, Any]]:
    """Train a :class:`DigitsClassifier` on ``train`` (uint8 images with labels); returns it and a training record."""
    if train.labels is None or not train.is_image:
        raise ValueError(f"dataset {train.name!r} must be labelled uint8 images to train a classifier")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    if not 0 <= augment <= 3:
        raise ValueError(f"augment strength must be in [0, 3], got {augment}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = DigitsClassifier(train.channels, train.resolution, train.num_classes, width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    start, last_loss = time.time(), float("nan")
    bar = tqdm(total=steps, desc="classifier", disable=not progress, unit="step")
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(train), generator=gen)
        for i in range(0, len(train), batch_size):
            idx = perm[i : i + batch_size]
            x = train.batch(idx)
            if augment > 0:
                x = random_affine(x, gen, 10.0 * augment, 0.1 * augment, 0.1 * augment)
            loss = F.cross_entropy(net(x), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            last_loss = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{last_loss:.3f}")
    bar.close()
    net.eval()
    record = {"dataset": train.name, "images": len(train), "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "width": width, "augment": augment, "seed": seed, "final_loss": last_loss,
              "seconds": round(time.time() - start, 1)}
    return net, record


def save_classifier(path: str | Path, net: DigitsClassifier, record: dict[str, Any]) -> Path:
    """Write the classifier as a ganforge checkpoint (``config.json`` + ``classifier.safetensors``)."""
    return save_checkpoint(path, {"classifier": net}, {"kind": "digits-classifier", **record})
