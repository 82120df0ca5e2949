"""Linear separability of latent spaces: Karras et al. 2019, "A Style-Based Generator Architecture for GANs", sec. 4.2.

If a latent space is disentangled, the attributes of the generated images should be separable by a hyperplane in it.
Procedure (stages: :func:`generate_labelled` then :func:`linear_separability`):

1. generate images from random latents and label them with a classifier (here the ``digits`` extractor's logits:
   each class, one-vs-rest, is a binary attribute, as the paper's 40 CelebA attributes are);
2. per attribute, keep the ``keep`` most confidently labelled half of the samples;
3. fit a linear SVM from the latent (z, or w for style-based generators) to the label;
4. compute the conditional entropy ``H(Y | X)`` of the classifier label Y given the SVM's side X (in nats);
5. separability = ``exp(sum over attributes of H(Y | X))``: 1 when every attribute is linearly separable, higher when
   not. Attributes whose kept samples hold a single label carry no information and are skipped (and counted).

The SVM is an L2-regularised linear SVM with squared hinge loss (the objective of liblinear's default, C = 1) on
standardised latents, solved with L-BFGS in PyTorch, so no extra dependency is needed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ganforge.metrics.base import register_metric


def fit_linear_svm(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, iters: int = 200) -> torch.Tensor:
    """Predicted labels (bool ``[N]``) of a linear SVM fitted to ``x [N, D]``, ``y`` bool ``[N]``.

    Minimises ``0.5 ||w||^2 / N + C * mean(max(0, 1 - s (w.x + b))^2)`` with ``s = +-1`` on standardised ``x``.
    """
    x = x.double()
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    s = y.double() * 2 - 1
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")
    n = x.shape[0]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        margin = (1 - s * (x @ w + b)).clamp_min(0)
        loss = 0.5 * w.square().sum() / n + c * margin.square().mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (x @ w + b) > 0


def conditional_entropy(y: torch.Tensor, x: torch.Tensor) -> float:
    """``H(Y | X)`` in nats for two bool vectors ``[N]``."""
    total = 0.0
    n = y.numel()
    for side in (False, True):
        sel = y[x == side]
        if sel.numel() == 0:
            continue
        p = float(sel.double().mean())
        h = -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)
        total += sel.numel() / n * h
    return total


def linear_separability(latents: torch.Tensor, logits: torch.Tensor, keep: float = 0.5) -> dict[str, Any]:
    """Separability of ``latents [N, D]`` w.r.t. one-vs-rest attributes from classifier ``logits [N, K]``.

    Returns ``separability`` (``exp(sum H)``), per-attribute entropies and how many attributes were used.
    """
    if latents.ndim != 2 or logits.ndim != 2 or latents.shape[0] != logits.shape[0]:
        raise ValueError(f"expected latents [N, D] and logits [N, K] with the same N, got {list(latents.shape)} "
                         f"and {list(logits.shape)}")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    probs = logits.double().softmax(dim=1) if logits.shape[1] > 1 else logits.double().sigmoid()
    entropies: dict[int, float] = {}
    skipped = []
    for k in range(probs.shape[1]):
        p = probs[:, k]
        label = p > 0.5
        confidence = torch.maximum(p, 1 - p)
        idx = confidence.argsort(descending=True)[: max(2, int(round(keep * len(p))))]
        y = label[idx]
        if bool(y.all()) or not bool(y.any()):
            skipped.append(k)
            continue
        entropies[k] = conditional_entropy(y, fit_linear_svm(latents[idx], y))
    if not entropies:
        raise ValueError("no attribute has both labels among the kept samples; generate more images")
    return {
        "separability": math.exp(sum(entropies.values())),
        "entropies": entropies,
        "attributes": len(entropies),
        "skipped": skipped,
    }


@torch.no_grad()
def generate_labelled(
    G: nn.Module,
    classify: Any,
    num_samples: int,
    space: str = "w",
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``[N, D]`` (z, or w for style-based generators) and classifier logits ``[N, K]`` of their images.

    ``classify`` maps images ``[B, C, H, W]`` in [-1, 1] to logits ``[B, K]`` (e.g. an extractor's ``.logits``).
    Unconditional generators only: a class input would make the label trivial.
    """
    if space not in ("z", "w"):
        raise ValueError(f"separability space must be 'z' or 'w', got {space!r}")
    if int(getattr(G, "c_dim", 0)) != 0:
        raise ValueError("linear separability is defined for unconditional generators")
    if space == "w" and not hasattr(G, "mapping"):
        raise ValueError(f"w-space separability needs a style-based generator; {type(G).__name__} has none")
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(num_samples, int(G.z_dim), generator=gen)
    lat, logit = [], []
    for i in range(0, num_samples, batch_size):
        z = z_all[i : i + batch_size].to(device)
        if hasattr(G, "mapping"):
            ws = G.mapping(z, None)
            img = G.synthesis(ws, noise_mode="const").clamp(-1, 1)
            lat.append((ws[:, 0] if space == "w" else z).cpu())
        else:
            img = G(z, None)
            lat.append(z.cpu())
        logit.append(classify(img).cpu())
    return torch.cat(lat), torch.cat(logit)


def _register(name: str, space: str) -> None:
    def compute(ctx: Any, keep: float = 0.5) -> dict[str, float]:
        ex = ctx.extractor

        def classify(img: torch.Tensor) -> torch.Tensor:
            logits = ex(img).logits
            if logits is None or logits.ndim != 2:
                raise ValueError(f"linear separability needs one class per image from the extractor; {ex.name!r} "
                                 f"gives {'no logits' if logits is None else 'per-channel logits'}")
            return logits

        lat, logits = generate_labelled(ctx.generator, classify, ctx.num_gen, space, ctx.batch_size, ctx.seed,
                                        ctx.device)
        res = linear_separability(lat, logits, keep)
        return {name.replace("-", "_"): res["separability"], "attributes": float(res["attributes"])}

    register_metric(
        name,
        f"linear separability of {space} w.r.t. the extractor's classes, one-vs-rest (Karras et al. 2019)",
        needs_real=False,
        needs_generator=True,
    )(compute)


_register("separability-w", "w")
_register("separability-z", "z")
