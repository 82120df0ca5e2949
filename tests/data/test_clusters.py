"""k-means cluster labels for self-conditioned training: recovers separated groups, seeded, validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import GanDataset
from ganforge.data.clusters import cluster_dataset, cluster_prior, kmeans, nearest
from ganforge.data.errors import DataError


def blobs(n_per: int = 40, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` tight, far-apart groups of 3x4x4 uint8 images ``[k * n_per, 3, 4, 4]`` and their group ``[N]``."""
    gen = torch.Generator().manual_seed(seed)
    group = torch.arange(k).repeat_interleave(n_per)
    noise = torch.randint(0, 8, (k * n_per, 3, 4, 4), generator=gen)
    return (group.view(-1, 1, 1, 1) * 60 + noise).to(torch.uint8), group


def test_kmeans_recovers_separated_groups():
    data, group = blobs()
    labels = nearest(data.flatten(1).float(), kmeans(data.flatten(1).float(), 4, seed=0))
    # the same partition, whatever the cluster numbering
    pairs = set(zip(group.tolist(), labels.tolist()))
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4 and len({b for _, b in pairs}) == 4


def test_cluster_dataset_labels_prior_and_determinism():
    data, _ = blobs(n_per=30, k=3)
    ds = GanDataset("blobs", data, info={"source": "blobs"})
    out = cluster_dataset(ds, 3, seed=5)
    assert out.num_classes == 3 and out.labels.shape == (90,) and out.labels.dtype == torch.int64
    assert torch.equal(out.data, ds.data) and ds.labels is None  # the input is not modified
    info = out.info["clusters"]
    assert info["k"] == 3 and info["seed"] == 5 and sorted(info["sizes"]) == [30, 30, 30]
    assert torch.allclose(cluster_prior(out.info), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert cluster_prior(ds.info) is None
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)  # a resumed run may use another thread count
    try:
        again = cluster_dataset(ds, 3, seed=5)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(again.labels, out.labels)


def test_cluster_dataset_refuses_bad_k():
    data, _ = blobs(n_per=2, k=2)
    ds = GanDataset("tiny", data)
    with pytest.raises(DataError, match=r"--clusters must be in \[2, 4\].*'tiny'.*got 5"):
        cluster_dataset(ds, 5, seed=0)
    same = GanDataset("same", torch.zeros(6, 1, 2, 2, dtype=torch.uint8))
    with pytest.raises(DataError, match="empty"):  # six identical images cannot make three clusters
        cluster_dataset(same, 3, seed=0)
    with pytest.raises(ValueError, match="1 <= k"):
        kmeans(torch.zeros(3, 2), 4, seed=0)


def test_cluster_sizes_follow_the_data():
    data = torch.cat([torch.zeros(10, 1, 2, 2), torch.full((30, 1, 2, 2), 200.0)]).to(torch.uint8)
    out = cluster_dataset(GanDataset("uneven", data), 2, seed=0)
    assert sorted(out.info["clusters"]["sizes"]) == [10, 30]
    assert np.isclose(float(cluster_prior(out.info).max()), 0.75)


def test_large_images_are_pooled_before_clustering():
    """64x64 pictures: two groups told apart by their colour layout after pooling to 32x32."""
    gen = torch.Generator().manual_seed(0)
    left = torch.zeros(10, 3, 64, 64)
    left[:, :, :, :32] = 200.0
    right = left.flip(3)
    data = (torch.cat([left, right]) + torch.randint(0, 20, (20, 3, 64, 64), generator=gen)).to(torch.uint8)
    out = cluster_dataset(GanDataset("halves", data), 2, seed=0)
    assert len(set(out.labels[:10].tolist())) == 1 and len(set(out.labels[10:].tolist())) == 1
    assert out.labels[0] != out.labels[10] and out.info["clusters"]["features"] == "pixels (at most 32x32)"


def test_clusters_replace_the_labels_and_drop_their_population_prior():
    data, truth = blobs(n_per=30, k=3)
    ds = GanDataset("blobs", data, truth, 3, class_prior=np.full(3, 1 / 3))
    out = cluster_dataset(ds, 2, seed=0)  # two clusters: the three-class prior no longer describes the labels
    assert out.num_classes == 2 and out.class_prior is None and ds.class_prior is not None
