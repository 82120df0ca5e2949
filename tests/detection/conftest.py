"""Fixtures for the detector tests: a tiny untrained DCGAN checkpoint (a weak generator) and a folder of images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.checkpoint import save_checkpoint
from ganforge.models.dcgan import DCGANGenerator


@pytest.fixture(scope="session")
def weak_generator(tmp_path_factory) -> str:
    """An untrained 28x28 single-channel DCGAN generator saved as a checkpoint (network ``G``)."""
    torch.manual_seed(1)
    G = DCGANGenerator(z_dim=16, resolution=28, channels=1, width=8)
    path = tmp_path_factory.mktemp("weak") / "ckpt"
    save_checkpoint(path, {"G": G}, {})
    return str(path)


@pytest.fixture
def mixed_folder(tmp_path):
    """A folder with a grey PNG, an RGB JPEG of odd size, an RGBA PNG, a tiny image and two corrupt files."""
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(d / "a_grey.png")
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(d / "b_rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)).save(d / "c_rgba.png")
    Image.fromarray(rng.integers(0, 256, (9, 12), dtype=np.uint8)).save(d / "sub" / "d_tiny.png")
    (d / "e_corrupt.png").write_bytes(b"not an image at all")
    good = (d / "a_grey.png").read_bytes()
    (d / "f_truncated.png").write_bytes(good[: len(good) // 2])
    return d
