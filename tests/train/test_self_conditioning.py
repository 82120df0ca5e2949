"""Self-conditioned training (``--clusters K``): G and D conditioned on k-means clusters of the data, the cluster
frequencies saved with the run and used by every sampler when no class is asked for."""

from __future__ import annotations

import pytest
import torch

from ganforge.checkpoint import list_checkpoints, read_config
from ganforge.data.clusters import CLASS_PRIOR
from ganforge.metrics.context import SampleSet
from ganforge.sampling import generate, load_generator
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer
from tests.train.test_resume import tiny


def test_a_self_conditioned_run_trains_on_cluster_labels_and_saves_their_prior(tmp_path):
    trainer = Trainer.from_config(tiny(tmp_path, clusters=4, kimg=0.032), progress=False)
    assert trainer.dataset.num_classes == 4 and trainer.dataset.labels.unique().tolist() == [0, 1, 2, 3]
    assert trainer.nets["G"].c_dim == 4 and trainer.nets["D"].c_dim == 4
    sizes = torch.bincount(trainer.dataset.labels, minlength=4).double()
    for name in ("G", "G_ema"):
        assert torch.allclose(getattr(trainer.nets[name], CLASS_PRIOR), sizes / sizes.sum())
    run = trainer.run()
    ckpt = list_checkpoints(run)[-1]
    assert read_config(ckpt)["dataset"]["clusters"]["sizes"] == sizes.long().tolist()
    G, _ = load_generator(ckpt)
    assert torch.allclose(getattr(G, CLASS_PRIOR), sizes / sizes.sum())
    a, b = generate(G, [0, 1, 2]), generate(G, [2])  # no class needed; a seed is one picture
    assert a.shape == (3, 1, 28, 28) and torch.allclose(a[2], b[0], atol=1e-6)


def test_samplers_draw_classes_from_the_generator_prior():
    class OneHotG(torch.nn.Module):
        z_dim, c_dim = 2, 3

        def forward(self, z, c=None):
            return c[:, :, None, None]  # [N, 3, 1, 1]: the class vector itself

    G = OneHotG()
    setattr(G, CLASS_PRIOR, torch.tensor([0.0, 0.0, 1.0]))
    assert generate(G, list(range(8)))[:, :, 0, 0].argmax(1).tolist() == [2] * 8
    assert SampleSet.from_generator(G, 8).labels.tolist() == [2] * 8
    assert SampleSet.from_generator(G, 8, class_probs=torch.tensor([1.0, 0, 0])).labels.tolist() == [0] * 8


def test_clusters_and_labels_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        TrainConfig(cond=True, clusters=10)
    with pytest.raises(ValueError, match="clusters must be 0"):
        TrainConfig(clusters=1)
    assert TrainConfig(clusters=10).conditional and TrainConfig(cond=True).conditional
    assert not TrainConfig().conditional
