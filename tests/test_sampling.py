"""Seeds to samples: per-seed latents, class vectors for conditional models, seed lists."""

from __future__ import annotations

import pytest
import torch

from ganforge.sampling import class_vectors, generate, latents, parse_seeds


def test_conditional_class_defaults_to_seed_mod_classes():
    c = class_vectors(None, 4, 10, seeds=[0, 7, 13, 29])
    assert c.argmax(dim=1).tolist() == [0, 7, 3, 9]
    assert class_vectors(2, 3, 10).argmax(dim=1).tolist() == [2, 2, 2]
    assert class_vectors([1, 5], 2, 10, seeds=[0, 0]).argmax(dim=1).tolist() == [1, 5]  # explicit classes win


def test_class_vector_errors():
    assert class_vectors(None, 3, 0) is None
    with pytest.raises(ValueError, match="unconditional"):
        class_vectors(1, 3, 0)
    with pytest.raises(ValueError, match="conditional on 10"):
        class_vectors(None, 3, 10)
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        class_vectors(10, 1, 10)


class EchoG(torch.nn.Module):
    z_dim, c_dim = 4, 10

    def forward(self, z, c=None):
        return torch.cat([z, c], dim=1)[:, None, None, :]


def test_generate_is_per_seed_and_conditional_by_seed():
    a = generate(EchoG(), [3, 11, 5], batch=2)
    b = generate(EchoG(), [11], batch=1)
    assert torch.equal(a[1], b[0]) and torch.equal(a[:, 0, 0, :4], latents([3, 11, 5], 4))
    assert a[:, 0, 0, 4:].argmax(dim=1).tolist() == [3, 1, 5]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
