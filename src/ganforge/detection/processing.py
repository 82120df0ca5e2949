"""Fitting the processing head's JPEG recogniser: a solver, kept outside the network (house style rule 1).

The detector's processing head reads JPEG re-compression from two numbers, ``ProcessingHead.lattice_summary`` (how
well the 8x8 block DCT sits on a quantisation lattice; Fan & de Queiroz, IEEE TIP 2003). Their logistic model is
fitted here, before the detector trains, by Newton's method on the L2-regularised likelihood over augmented training
patches whose augmentation record says whether JPEG was applied: gradient steps at the detector's learning rate
would take far longer to reach those two weights. The fitted weights are installed with
``ProcessingHead.set_jpeg_model``.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.detection.data import Augment, to_tensor
from ganforge.models.detector import Detector, ProcessingHead, ProcessingStep

MIN_FIT_PATCHES = 128


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, iters: int = 50) -> tuple[torch.Tensor, float]:
    """L2-regularised logistic regression by Newton's method: features ``x [M, D]``, labels ``y [M]`` in {0, 1};
    returns ``(weight [D], bias)`` on the raw (unstandardised) features. The features are standardised for the
    solve and the bias is not penalised."""
    x, y = x.double(), y.double()
    mu, sd = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    zb = torch.cat([(x - mu) / sd, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # [M, D + 1]
    d = x.shape[1]
    penalty = torch.diag(torch.cat([torch.full((d,), l2, dtype=x.dtype), x.new_zeros(1)]))
    w = x.new_zeros(d + 1)
    for _ in range(iters):
        p = torch.sigmoid(zb @ w)
        grad = zb.T @ (p - y) / len(y) + penalty @ w
        hess = (zb.T * (p * (1 - p))) @ zb / len(y) + l2 * torch.eye(d + 1, dtype=x.dtype)
        w -= torch.linalg.solve(hess, grad)
    weight = w[:d] / sd
    return weight.float(), float(w[d] - (w[:d] * mu / sd).sum())


@torch.no_grad()
def fit_jpeg_model(head: ProcessingHead, img: torch.Tensor, jpeg: torch.Tensor, resized: torch.Tensor,
                   l2: float = 1e-3) -> None:
    """Fit the head's JPEG logit on the images ``[M, C, H, W]`` that were not resized, from the record of which
    were compressed (``jpeg``, ``resized``: bool ``[M]``; resized ones are left out, their lattice is gone)."""
    if head.jpeg is None:
        raise ValueError("this processing head does not recognise JPEG")
    keep = ~resized
    y = jpeg[keep]
    if len(y) < 10 or bool(y.all()) or not bool(y.any()):
        raise ValueError(f"need >= 10 images at their own size, both compressed and not, to fit the JPEG "
                         f"recogniser; got {len(y)} ({int(y.sum())} compressed)")
    weight, bias = fit_logistic(head.lattice_summary(img[keep]), y, l2)
    head.set_jpeg_model(weight, bias)


def fit_jpeg_recogniser(net: Detector, sources: list[list[np.ndarray]], augment: Augment, n: int,
                        rng: np.random.Generator) -> None:
    """Fit ``net``'s JPEG recogniser on ``max(n, MIN_FIT_PATCHES)`` augmented training patches, drawn in turn from
    ``sources`` (lists of training images; the reals first, so half of the patches are real), every other pair
    forced to keep its size, where the lattice can show."""
    patches, jpeg_done, resized = [], [], []
    for j in range(max(n, MIN_FIT_PATCHES)):
        pool = sources[0] if j % 2 == 0 else sources[1 + int(rng.integers(len(sources) - 1))]
        force = {ProcessingStep.RESIZE: False} if j // 2 % 2 == 0 else None
        patch, applied = augment.apply(pool[int(rng.integers(len(pool)))], net.crop, rng, force)
        patches.append(patch)
        jpeg_done.append(applied[ProcessingStep.JPEG])
        resized.append(applied[ProcessingStep.RESIZE])
    fit_jpeg_model(net.proc_head, to_tensor(patches), torch.tensor(jpeg_done), torch.tensor(resized))
