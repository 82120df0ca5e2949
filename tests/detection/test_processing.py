"""The JPEG recogniser's solver (outside the network): fitted from the augmentation's record, it recognises
re-compressed images; logistic regression recovers a known model; bad inputs are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.detection.data import Augment, gaussian_blur, jpeg, to_tensor
from ganforge.detection.processing import fit_jpeg_model, fit_jpeg_recogniser, fit_logistic
from ganforge.models.detector import Detector, ProcessingHead


def _noise(seed: int, sigma: float = 0.0) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    return gaussian_blur(img, sigma)


def test_the_jpeg_recogniser_is_fitted_from_the_augmentation_record():
    rng = np.random.default_rng(0)
    imgs, done, resized = [], [], []
    for s in range(120):
        a = _noise(s, float(rng.uniform(0, 1.5)))
        j = bool(s % 3)
        imgs.append(jpeg(a, int(rng.integers(30, 90))) if j else a)
        done.append(j)
        resized.append(s % 4 == 0)
    head = ProcessingHead(feat=4, steps=("jpeg", "resize"))
    assert not any(p.requires_grad for p in head.jpeg_parameters())  # fitted, not trained by the optimiser
    x, done_t, resized_t = to_tensor(imgs), torch.tensor(done), torch.tensor(resized)
    fit_jpeg_model(head, x, done_t, resized_t)
    p = torch.sigmoid(head.jpeg(head.lattice_summary(x))).squeeze(1)
    assert float(((p > 0.5) == done_t).float().mean()) > 0.95
    with pytest.raises(ValueError, match="both compressed and not"):
        fit_jpeg_model(head, x, torch.ones(120, dtype=torch.bool), resized_t)
    with pytest.raises(ValueError, match="does not recognise JPEG"):
        fit_jpeg_model(ProcessingHead(feat=4, steps=("resize",)), x, done_t, resized_t)
    with pytest.raises(ValueError, match="2 finite weights"):
        head.set_jpeg_model(torch.tensor([1.0, float("nan")]), 0.0)


def test_logistic_regression_recovers_a_known_model():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 2, generator=g) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    w_true, b_true = torch.tensor([1.5, -2.0]), 0.7
    y = (torch.rand(4000, generator=g) < torch.sigmoid(x @ w_true + b_true)).double()
    w, b = fit_logistic(x, y, l2=0.0)
    assert torch.allclose(w, w_true, atol=0.2) and b == pytest.approx(b_true, abs=0.3)


def test_the_recogniser_is_fitted_on_training_patches_of_every_source():
    """Drawn from the reals and the fake sources with half of them kept at their size: the fitted head recognises
    JPEG on new patches, and the draws are reproducible."""
    rng = np.random.default_rng(0)
    reals = [_noise(s, float(rng.uniform(0, 1.0))) for s in range(40)]
    fakes = [_noise(100 + s, 1.2) for s in range(40)]
    aug = Augment(blur_prob=0.0, jpeg_prob=0.5, jpeg_quality=(40, 90), resize_prob=0.5, resize_scale=(0.5, 0.9))
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = Detector(channels=1, crop=32, width=4, depth=2, spectrum_size=8, hidden=8)
        fit_jpeg_recogniser(net, [reals, fakes], aug, 64, np.random.default_rng(1))
        nets.append(net)
    assert torch.equal(nets[0].proc_head.jpeg.weight, nets[1].proc_head.jpeg.weight)
    test = [_noise(500 + s) for s in range(20)]
    x = to_tensor(test + [jpeg(a, 60) for a in test])
    p = torch.sigmoid(nets[0].proc_head.jpeg(nets[0].proc_head.lattice_summary(x))).squeeze(1)
    assert float(((p > 0.5) == torch.tensor([False] * 20 + [True] * 20)).float().mean()) > 0.9
