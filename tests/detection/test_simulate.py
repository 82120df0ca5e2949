"""Simulated generator artefacts: auto-encoders with generator upsamplers re-synthesise real images (AutoGAN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.detection.data import ImageSet, to_tensor
from ganforge.detection.simulate import UPSAMPLERS, Resynthesizer, resynthesize, simulated_fakes, train_resynthesizer


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    x = load_dataset("digits").data[:200, 0].numpy()
    return ImageSet("digits", [np.pad(im, 2)[..., None] for im in x], [f"d{i}" for i in range(len(x))])


@pytest.mark.parametrize("kind", UPSAMPLERS)
def test_every_upsampler_keeps_the_shape(kind):
    net = Resynthesizer(3, kind, width=8)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    odd = resynthesize(net.eval(), [np.zeros((30, 37, 3), np.uint8)])  # reflect-padded to 32x40, cropped back
    assert odd[0].shape == (30, 37, 3) and odd[0].dtype == np.uint8


@pytest.mark.parametrize("kind", UPSAMPLERS)
def test_training_learns_to_reconstruct_rather_than_the_black_background(digits, kind):
    """Digits are ~85 % black, so the all-black image is the L1 median; a tanh (or dead-ReLU) decoder settled there
    for two of the four upsamplers. Every upsampler must beat it by far and reproduce the strokes."""
    imgs = digits.images[:64]
    x = to_tensor(imgs)
    trained = train_resynthesizer(digits.images, kind, crop=32, steps=60, batch=16, seed=0)
    with torch.no_grad():
        after = (trained(x).clamp(-1, 1) - x).abs().mean()
    all_black = (x + 1).abs().mean()
    assert after < 0.75 * all_black
    out = np.stack(resynthesize(trained, imgs))
    assert out.std() > 0.3 * np.stack(imgs).std()


def test_simulated_sets_and_errors(digits):
    sets = simulated_fakes(digits, ["nearest", "pixelshuffle"], n=20, steps=5, seed=1)
    assert [s.source for s in sets] == ["simulated-nearest", "simulated-pixelshuffle"]
    assert all(len(s) == 20 and s.images[0].shape == (32, 32, 1) for s in sets)
    assert sets[0].names[0].startswith("sim-nearest:d") and all(s.simulated for s in sets)
    assert not np.array_equal(sets[0].images[0], sets[1].images[0])
    with pytest.raises(ValueError, match="unknown upsampler"):
        simulated_fakes(digits, ["cubic"])
    mixed = ImageSet("mixed", [np.zeros((8, 8, 1), np.uint8), np.zeros((8, 8, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match="one channel count"):
        train_resynthesizer(mixed.images, "nearest", crop=8, steps=1)


def test_several_training_lengths_split_each_set(digits):
    """With lengths (2, 40) the first half of each set comes from the 2-step auto-encoder (one set with 2 steps
    gives the same images) and the second from the 40-step one, which reconstructs far better."""
    both = simulated_fakes(digits, ["nearest"], n=20, steps=(2, 40), seed=3)[0]
    short = simulated_fakes(digits, ["nearest"], n=20, steps=2, seed=3)[0]
    assert len(both) == 20 and both.names == short.names
    assert all(np.array_equal(a, b) for a, b in zip(both.images[:10], short.images[:10], strict=True))
    src = {f"sim-nearest:{n}": im for n, im in zip(digits.names, digits.images, strict=True)}
    err = [np.abs(im.astype(float) - src[n].astype(float)).mean() for im, n in zip(both.images, both.names,
                                                                                    strict=True)]
    assert np.mean(err[10:]) < 0.8 * np.mean(err[:10])
    with pytest.raises(ValueError, match="steps must be"):
        simulated_fakes(digits, ["nearest"], n=4, steps=(300, 0))
