"""Channel and resize policies on small images: output size and content, and errors that name the bad value."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.data.errors import DataError
from ganforge.data.transforms import RESIZE_POLICIES, convert_channels, prepare, resize

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _image(h: int, w: int, colour: tuple[int, ...]) -> np.ndarray:
    """``[h, w, len(colour)]`` uint8 filled with ``colour``."""
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (h, w, len(colour))).copy()


def _thirds(h: int, w: int, axis: int) -> np.ndarray:
    """RGB image cut in three equal bands along ``axis`` (0 = rows, 1 = columns): red, green, blue."""
    bands = [_image(h // 3 if axis == 0 else h, w // 3 if axis == 1 else w, c) for c in (RED, GREEN, BLUE)]
    return np.concatenate(bands, axis=axis)


# --- channels --------------------------------------------------------------------------------------------------


def test_rgb_to_grey_uses_itu_r_601_weights():
    arr = np.array([[RED, GREEN, BLUE, (255, 255, 255), (0, 0, 0), (10, 20, 30)]], dtype=np.uint8)  # [1, 6, 3]
    out = convert_channels(arr, 1, "a.png")
    assert out.shape == (1, 6, 1) and out.dtype == np.uint8
    # 0.299*255=76.2, 0.587*255=149.7, 0.114*255=29.1, 255, 0, 0.299*10+0.587*20+0.114*30=18.15
    assert out[0, :, 0].tolist() == [76, 150, 29, 255, 0, 18]


def test_grey_to_rgb_repeats_the_channel():
    arr = np.array([[[0], [7], [255]]], dtype=np.uint8)  # [1, 3, 1]
    out = convert_channels(arr, 3, "a.png")
    assert out.shape == (1, 3, 3)
    assert out[0].tolist() == [[0, 0, 0], [7, 7, 7], [255, 255, 255]]


@pytest.mark.parametrize("channels,shape", [(1, (2, 3, 1)), (3, (2, 3, 3))])
def test_same_channel_count_is_unchanged(channels, shape):
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(convert_channels(arr, channels, "a.png"), arr)


def test_alpha_is_composited_on_black():
    arr = np.array([[(200, 100, 50, 255), (200, 100, 50, 128), (200, 100, 50, 0)]], dtype=np.uint8)  # [1, 3, 4]
    out = convert_channels(arr, 3, "a.png")
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    # 128/255 = 0.50196: 200 -> 100.39, 100 -> 50.20, 50 -> 25.10
    assert out[0].tolist() == [[200, 100, 50], [100, 50, 25], [0, 0, 0]]


def test_alpha_then_grey():
    arr = np.array([[(255, 255, 255, 255), (255, 255, 255, 51), (255, 0, 0, 255)]], dtype=np.uint8)
    assert convert_channels(arr, 1, "a.png")[0, :, 0].tolist() == [255, 51, 76]


@pytest.mark.parametrize("channels", [0, 2, 4, -1])
def test_bad_channel_count_names_the_value(channels):
    with pytest.raises(DataError, match=f"channels must be 1 or 3, got {channels}$"):
        convert_channels(_image(2, 2, RED), channels, "a.png")


@pytest.mark.parametrize("channels", [1, 3])
def test_unconvertible_input_names_the_file(channels):
    with pytest.raises(DataError, match=f"^photos/odd.png: cannot convert 2 channels to {channels}$"):
        convert_channels(_image(2, 2, (1, 2)), channels, "photos/odd.png")


# --- resize ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_right_size_is_returned_as_is_by_every_policy(policy):
    arr = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    assert np.array_equal(resize(arr, 4, policy, "a.png"), arr)


@pytest.mark.parametrize("policy", [p for p in RESIZE_POLICIES if p != "none"])
@pytest.mark.parametrize("h,w,c", [(5, 9, 3), (9, 5, 3), (16, 16, 1), (3, 4, 1), (40, 2, 3)])
def test_every_policy_gives_resolution_square(policy, h, w, c):
    arr = np.random.default_rng(2).integers(0, 256, (h, w, c), dtype=np.uint8)
    out = resize(arr, 8, policy, "a.png")
    assert out.shape == (8, 8, c) and out.dtype == np.uint8


@pytest.mark.parametrize("policy", [p for p in RESIZE_POLICIES if p != "none"])
def test_downscaling_filters_instead_of_picking_pixels(policy):
    """A 16x16 one-pixel checkerboard halved by a filtering (Lanczos) resize is mid-grey, not black or white."""
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)[:, :, None]
    out = resize(checker, 8, policy, "a.png")
    assert out.min() >= 119 and out.max() <= 135


def test_center_crop_keeps_the_middle_of_a_wide_image():
    """12x4 at resolution 4: the short side already fits, the centre 4 columns (the green third) are kept."""
    out = resize(_thirds(4, 12, axis=1), 4, "center-crop", "a.png")
    assert np.array_equal(out, _image(4, 4, GREEN))


def test_center_crop_keeps_the_middle_of_a_tall_image():
    out = resize(_thirds(12, 4, axis=0), 4, "center-crop", "a.png")
    assert np.array_equal(out, _image(4, 4, GREEN))


def test_center_crop_scales_the_short_side():
    """48x16 at resolution 8: halved to 24x8 (Lanczos), then the middle 8 columns: green away from the band edges."""
    out = resize(_thirds(16, 48, axis=1), 8, "center-crop", "a.png")
    assert out.shape == (8, 8, 3)
    assert np.abs(out[:, 2:6].astype(int) - np.array(GREEN)).max() <= 2
    assert out[:, :, 0].max() < 128 and out[:, :, 2].max() < 128  # no red or blue band kept


def test_pad_keeps_a_wide_image_whole_between_black_bands():
    """8x4 white at resolution 8: no scaling, rows 2-5 white, two black rows above and below."""
    out = resize(_image(4, 8, (255,)), 8, "pad", "a.png")
    assert out.shape == (8, 8, 1)
    assert (out[2:6] == 255).all()
    assert (out[:2] == 0).all() and (out[6:] == 0).all()


def test_pad_puts_odd_leftover_after_the_image():
    """8x3 at resolution 8: paste at row (8 - 3) // 2 = 2, so two black rows before and three after."""
    out = resize(_image(3, 8, RED), 8, "pad", "a.png")
    assert [bool((row == RED).all()) for row in out] == [False, False, True, True, True, False, False, False]
    assert (out[:2] == 0).all() and (out[5:] == 0).all()


def test_pad_keeps_a_tall_image_whole_between_black_columns():
    out = resize(_thirds(12, 6, axis=0), 12, "pad", "a.png")
    assert (out[:, :3] == 0).all() and (out[:, 9:] == 0).all()
    assert np.array_equal(out[:, 3:9], _thirds(12, 6, axis=0))


def test_pad_shrinks_the_long_side():
    """16x8 at resolution 8: scaled to 8x4 (uniform colour stays exact), rows 2-5."""
    out = resize(_image(8, 16, BLUE), 8, "pad", "a.png")
    assert (out[2:6] == BLUE).all() and (out[:2] == 0).all() and (out[6:] == 0).all()


def test_stretch_scales_each_side_on_its_own():
    """A 4x12 image of three bands stretched to 6x6 keeps three bands of two columns: nothing cropped or padded."""
    out = resize(_thirds(4, 12, axis=1), 6, "stretch", "a.png")
    assert out.shape == (6, 6, 3)
    dominant = [int(np.argmax(out[:, x].astype(int).sum(axis=0))) for x in range(6)]
    assert dominant == [0, 0, 1, 1, 2, 2]  # red, red, green, green, blue, blue
    assert (out.astype(int).sum(axis=2) > 200).all()  # no black border: every pixel is some colour


def test_none_refuses_another_size_naming_the_file_and_sizes():
    with pytest.raises(DataError, match=r"^cats/1\.jpg: image is 6x4 but resolution 8 was asked with --resize none$"):
        resize(_image(4, 6, RED), 8, "none", "cats/1.jpg")
    with pytest.raises(DataError, match="image is 4x4 but resolution 8"):
        resize(_image(4, 4, RED), 8, "none", "cats/2.jpg")  # square is not enough


@pytest.mark.parametrize("policy", ["crop", "Center-Crop", "", "center_crop"])
def test_unknown_policy_names_the_value_and_the_choices(policy):
    with pytest.raises(DataError) as e:
        resize(_image(4, 6, RED), 8, policy, "a.png")
    assert repr(policy) in str(e.value)
    assert all(p in str(e.value) for p in RESIZE_POLICIES)


def test_unknown_policy_raises_even_when_no_resize_is_needed():
    with pytest.raises(DataError, match="'crop'"):
        resize(_image(8, 8, RED), 8, "crop", "a.png")


# --- prepare ---------------------------------------------------------------------------------------------------


def test_prepare_returns_nchw_and_the_resolved_size_and_channels():
    images = [_image(4, 8, RED), _image(8, 4, GREEN), _image(6, 6, BLUE)]
    out, res, ch = prepare(images, 4, 1, "center-crop")
    assert (res, ch) == (4, 1)
    assert out.shape == (3, 1, 4, 4) and out.dtype == np.uint8
    assert out[:, 0, 0, 0].tolist() == [76, 150, 29]


def test_prepare_returns_a_contiguous_array():
    out, _, _ = prepare([_image(4, 4, RED), _image(4, 4, GREEN)], 4, 3, "none")
    assert out.shape == (2, 3, 4, 4) and out.flags.c_contiguous
    assert out[0, :, 1, 2].tolist() == list(RED) and out[1, :, 3, 0].tolist() == list(GREEN)


def test_prepare_keeps_size_and_channels_when_not_given():
    images = np.random.default_rng(3).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    out, res, ch = prepare(images, None, None, "none")
    assert (res, ch) == (5, 3)
    assert np.array_equal(out, images.transpose(0, 3, 1, 2))


def test_prepare_counts_rgba_as_rgb():
    out, _, ch = prepare([_image(2, 2, RED), _image(2, 2, (0, 0, 255, 255))], None, None, "none")
    assert ch == 3 and out[1, :, 0, 0].tolist() == list(BLUE)


def test_prepare_mixed_channels_name_both_files():
    with pytest.raises(DataError) as e:
        images = [_image(2, 2, RED), _image(2, 2, RED), _image(2, 2, (9,))]
        prepare(images, None, None, "none", ["a.png", "b.png", "c.png"])
    msg = str(e.value)
    assert "a.png has 3" in msg and "c.png has 1" in msg and "--channels" in msg


def test_prepare_mixed_channels_without_names_uses_indices():
    with pytest.raises(DataError, match="image #0 has 1, image #1 has 3"):
        prepare([_image(2, 2, (9,)), _image(2, 2, RED)], None, None, "none")


@pytest.mark.parametrize("shapes", [[(4, 4), (6, 6)], [(4, 6)]])
def test_prepare_without_resolution_needs_equal_squares(shapes):
    with pytest.raises(DataError, match="pass --resolution R"):
        prepare([_image(h, w, RED) for h, w in shapes], None, 3, "center-crop")


def test_prepare_names_the_file_that_fails_a_policy():
    with pytest.raises(DataError, match="^b.png: image is 6x4"):
        prepare([_image(8, 8, RED), _image(4, 6, RED)], 8, 3, "none", ["a.png", "b.png"])


def test_prepare_of_nothing_raises():
    with pytest.raises(DataError, match="no images"):
        prepare([], 8, 3, "center-crop")
