"""Conversions between uint8 pictures and model tensors."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ganforge.media import from_uint8, to_uint8


def test_from_uint8_maps_to_minus_one_one_and_back():
    arr = np.array([[[[0], [255]], [[128], [64]]]], dtype=np.uint8)  # [1, 2, 2, 1]
    x = from_uint8(arr)
    assert x.shape == (1, 1, 2, 2) and x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(to_uint8(x), arr)


def test_from_uint8_takes_a_read_only_array_without_warning():
    arr = np.full((2, 4, 4, 3), 200, dtype=np.uint8)
    arr.flags.writeable = False  # e.g. a decoded upload or a shared, cached pool
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = from_uint8(arr)
    x += 1  # the tensor owns its memory: the picture is untouched
    assert torch.allclose(x, torch.full_like(x, 200 / 127.5))
    assert (arr == 200).all()
