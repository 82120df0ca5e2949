"""The low-rank Mahalanobis distance stage: exact at full rank, probabilistic PCA below it, saved and rebuilt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.models.feature_distance import FeatureDistance


def _stage(dim: int, rank: int, seed: int = 0) -> tuple[FeatureDistance, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    vecs, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    vals = np.sort(rng.uniform(0.5, 4.0, dim))[::-1]
    mean = rng.normal(size=dim)
    stage = FeatureDistance(feature_dim=dim, rank=rank)
    stage.mean.copy_(torch.from_numpy(mean))
    stage.basis.copy_(torch.from_numpy(vecs[:, :rank].T.copy()))
    stage.eigvals.copy_(torch.from_numpy(vals[:rank].copy()))
    sigma2 = float(vals[rank:].mean()) if rank < dim else 1.0
    stage.residual_var.fill_(sigma2)
    return stage, vecs, vals, sigma2


def test_full_rank_is_the_exact_mahalanobis_distance():
    stage, vecs, vals, _ = _stage(6, 6)
    cov = vecs @ np.diag(vals) @ vecs.T
    x = np.random.default_rng(1).normal(size=(5, 6))
    d = x - stage.mean.double().numpy()
    want = np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(stage.distance2(torch.from_numpy(x)).numpy(), want, rtol=1e-5)


def test_low_rank_is_the_distance_under_the_probabilistic_pca_covariance():
    stage, vecs, vals, sigma2 = _stage(8, 3)
    v = vecs[:, :3]
    cov = v @ np.diag(vals[:3]) @ v.T + sigma2 * (np.eye(8) - v @ v.T)
    x = np.random.default_rng(2).normal(size=(4, 8))
    d = x - stage.mean.double().numpy()
    want = np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(stage.distance2(torch.from_numpy(x)).numpy(), want, rtol=1e-5)


def test_logit_is_zero_at_the_threshold_and_grows_with_distance():
    stage, *_ = _stage(4, 2)
    stage.threshold.fill_(9.0)
    stage.scale.fill_(0.5)
    far = stage.mean + 10 * stage.basis[0]
    at = stage.mean + 3 * torch.sqrt(stage.eigvals[0]) * stage.basis[0]  # d2 = 9
    logits = stage(torch.stack([stage.mean + 1e-3, at, far]))
    assert logits[0] < 0 and abs(float(logits[1])) < 1e-4 and logits[2] > 0
    assert torch.allclose(stage.predict_proba(at[None]), torch.tensor([0.5]), atol=1e-4)


def test_bad_arguments_and_feature_shapes_are_refused():
    with pytest.raises(ValueError, match="backbone"):
        FeatureDistance(backbone="clip")
    with pytest.raises(ValueError, match="rank"):
        FeatureDistance(feature_dim=4, rank=5)
    with pytest.raises(ValueError, match=r"features \[N, 4\]"):
        FeatureDistance(feature_dim=4, rank=2)(torch.zeros(3, 5))


def test_saved_and_rebuilt_from_a_checkpoint(tmp_path):
    stage, *_ = _stage(6, 2)
    stage.threshold.fill_(4.0)
    save_checkpoint(tmp_path / "ck", {"distance": stage}, {})
    back = load_networks(tmp_path / "ck", ["distance"])["distance"]
    assert isinstance(back, FeatureDistance) and back.rank == 2 and back.feature_dim == 6
    x = torch.randn(3, 6)
    torch.testing.assert_close(back(x), stage(x))
