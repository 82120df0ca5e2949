"""Image sets, generator sampling, CNNDetection augmentation, the test view and perturbations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.checkpoint import save_checkpoint
from ganforge.data.errors import DataError
from ganforge.detection.data import (
    NO_AUGMENT,
    Augment,
    Perturbation,
    center_crop,
    enlargement_factor,
    gaussian_blur,
    inference_view,
    is_checkpoint,
    jpeg,
    load_source,
    read_images,
    regions,
    rescale,
    sample_generator,
    tile_origins,
    to_tensor,
    upscale_window,
)
from ganforge.models.dcgan import DCGANGenerator


def test_folder_with_corrupt_files_keeps_the_rest_and_names_each_bad_file(mixed_folder):
    s = read_images(mixed_folder)
    assert sorted(p.split("/")[-1] for p in s.names) == ["a_grey.png", "b_rgb.jpg", "c_rgba.png", "d_tiny.png"]
    bad = {e["file"].split("/")[-1]: e["error"] for e in s.errors}
    assert set(bad) == {"e_corrupt.png", "f_truncated.png"}
    assert all("not a readable image" in msg and name in msg for name, msg in bad.items())
    assert [im.shape for im in s.images] == [(28, 28, 1), (50, 70, 3), (40, 40, 4), (9, 12, 1)]


def test_builtin_dataset_single_file_and_missing_source():
    s = read_images("digits", max_images=7)
    assert len(s) == 7 and s.images[0].shape == (28, 28, 1) and s.images[0].dtype == np.uint8
    with pytest.raises(DataError, match="neither a built-in dataset"):
        read_images("/nonexistent/folder")


def test_single_image_path(mixed_folder):
    s = read_images(mixed_folder / "b_rgb.jpg")
    assert len(s) == 1 and s.images[0].shape == (50, 70, 3)
    bad = read_images(mixed_folder / "e_corrupt.png")
    assert len(bad) == 0 and len(bad.errors) == 1


def test_generator_samples_are_uint8_and_image_i_depends_only_on_seed_plus_i(weak_generator):
    a = sample_generator(weak_generator, 10, seed=5, chunk=4)
    b = sample_generator(weak_generator, 3, seed=7, chunk=2)
    assert len(a) == 10 and a.images[0].shape == (28, 28, 1) and a.images[0].dtype == np.uint8
    for k in range(3):
        assert np.array_equal(a.images[2 + k], b.images[k])
    assert not np.array_equal(a.images[0], a.images[1])
    assert a.names[0].endswith("#seed5")


def test_conditional_generator_gets_classes(tmp_path):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, c_dim=10, resolution=28, channels=3, width=4)
    save_checkpoint(tmp_path / "cond", {"G": G, "G_ema": G}, {})
    s = load_source(tmp_path / "cond", 4)
    assert is_checkpoint(tmp_path / "cond") and len(s) == 4 and s.images[0].shape == (28, 28, 3)


def test_checkpoint_vs_folder_vs_dataset_name(weak_generator, mixed_folder):
    assert is_checkpoint(weak_generator)
    assert not is_checkpoint(mixed_folder)
    assert not is_checkpoint("digits")  # a dataset name first; the packaged model is reached by its folder
    assert len(load_source(mixed_folder, n=2)) == 2


def test_test_view_crops_large_images_and_upscales_small_ones_explicitly():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    v = inference_view(big, 16, 3)
    assert np.array_equal(v, big[12:28, 22:38])
    small = rng.integers(0, 256, (9, 12, 1), dtype=np.uint8)
    assert inference_view(small, 16, 1).shape == (16, 16, 1)
    with pytest.raises(ValueError, match="test view 'resize' .*global resize.*removed"):
        inference_view(big, 16, 1, "resize")
    assert np.array_equal(inference_view(big, 16, 3, "center-crop"), v)  # older detectors' name for the same
    rgba = rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)
    assert inference_view(rgba, 16, 3).shape == (16, 16, 3)
    grey = inference_view(small, 16, 3)
    assert np.array_equal(grey[..., 0], grey[..., 2])  # grey replicated, not invented colour
    with pytest.raises(ValueError, match="test view must be one of"):
        inference_view(big, 16, 3, "stretch")


def test_tiles_cover_the_image_at_native_resolution_on_the_jpeg_grid():
    assert tile_origins(32, 32) == [0]
    assert tile_origins(40, 16) == [0, 8, 24]  # 3 tiles cover 40 px; 12 moved back to 8
    assert tile_origins(2000, 64) == [0, 640, 1288, 1936]  # at most 4 per side, first to last pixel
    assert all(o % 8 == 0 for o in tile_origins(1999, 64))
    with pytest.raises(ValueError, match="smaller than the crop"):
        tile_origins(10, 16)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    tiles = regions(big, 16, 3)
    assert len(tiles) == 3 * 4 and all(t.shape == (16, 16, 3) for t in tiles)
    assert np.array_equal(tiles[0], big[:16, :16]) and np.array_equal(tiles[-1], big[24:40, 40:56])  # no resampling
    small = regions(rng.integers(0, 256, (9, 12, 1), dtype=np.uint8), 16, 3)  # upscaled to 16 x 21
    assert [t.shape for t in small] == [(16, 16, 3)]  # a second tile would start at 5, off the 8x8 grid
    assert len(regions(rng.integers(0, 256, (40, 33, 3), dtype=np.uint8), 16, 1)) == 3 * 3


def test_augment_gives_crop_patches_and_actually_degrades():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    always = Augment(blur_prob=1.0, blur_sigma=(1.5, 1.5), jpeg_prob=1.0, jpeg_quality=(30, 30), resize_prob=0.0,
                     flip=False)
    out = always(img, 40, np.random.default_rng(1))
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    assert out.astype(np.float64).std() < 0.5 * img.astype(np.float64).std()  # blur removed most of the noise
    plain = NO_AUGMENT(img, 24, np.random.default_rng(1))
    assert plain.shape == (24, 24, 3)
    assert any(np.array_equal(plain, img[t : t + 24, u : u + 24]) for t in range(17) for u in range(17))
    resized = Augment(resize_prob=1.0, resize_scale=(0.25, 0.25), blur_prob=0, jpeg_prob=0)(img, 16, rng)
    assert resized.shape == (16, 16, 3)  # 10x10 after the rescale, upscaled back to the crop


def test_augment_records_what_it_did_and_forced_steps_happen():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    aug = Augment(blur_prob=0.5, blur_sigma=(0.5, 1.0), jpeg_prob=0.5, resize_prob=0.5, resize_scale=(0.5, 0.7))
    seen = []
    for seed in range(40):
        out, applied = aug.apply(img, 32, np.random.default_rng(seed))
        # the same draws make the same patch through __call__ (training and calibration see one augmentation)
        assert np.array_equal(out, aug(img, 32, np.random.default_rng(seed)))
        seen.append(tuple(applied[k] for k in ("blur", "jpeg", "resize")))
        if not any(applied.values()):
            assert np.array_equal(out, img) or np.array_equal(out, img[:, ::-1])  # nothing but a flip
    assert len(set(seen)) == 8  # every combination occurs, so the record is not constant
    for force in ({"jpeg": True, "resize": False}, {"jpeg": False, "resize": True}):
        for seed in range(10):
            _, applied = aug.apply(img, 32, np.random.default_rng(seed), force)
            assert {k: applied[k] for k in force} == force
    with pytest.raises(ValueError, match="unknown processing step"):
        aug.apply(img, 32, np.random.default_rng(0), {"sharpen": True})
    same_size = Augment(resize_prob=1.0, resize_scale=(1.0, 1.0), blur_prob=0, jpeg_prob=0)
    assert same_size.apply(img, 32, np.random.default_rng(0))[1]["resize"] is False  # a no-op is not a resize


def test_exact_resize_ratios_are_drawn_exactly():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    halve = Augment(blur_prob=0, jpeg_prob=0, resize_prob=1.0, resize_scale=(0.6, 0.9), resize_exact=(0.5,),
                    resize_exact_prob=1.0, flip=False)
    out, applied = halve.apply(img, 32, np.random.default_rng(1))
    assert applied["resize"] and np.array_equal(out, center_crop(rescale(img, 0.5), 32))
    never = Augment(blur_prob=0, jpeg_prob=0, resize_prob=1.0, resize_scale=(0.6, 0.9), resize_exact=(0.5,),
                    resize_exact_prob=0.0, flip=False)
    assert not np.array_equal(never.apply(img, 32, np.random.default_rng(1))[0], out)
    with pytest.raises(ValueError, match="resize_exact factors"):
        Augment(resize_exact=(0.0,))
    with pytest.raises(ValueError, match="needs factors"):
        Augment(resize_exact_prob=0.5)


def test_log_uniform_rescale_spends_each_octave_equally():
    aug = Augment(resize_scale=(0.5, 8.0), resize_log=True)
    rng = np.random.default_rng(0)
    f = np.array([aug.rescale_factor(rng) for _ in range(8000)])
    assert f.min() >= 0.5 and f.max() <= 8.0
    octaves = np.histogram(np.log2(f), bins=4, range=(-1, 3))[0] / len(f)  # 0.5-1, 1-2, 2-4, 4-8
    assert np.allclose(octaves, 0.25, atol=0.03)
    uniform = np.array([Augment(resize_scale=(0.5, 8.0)).rescale_factor(rng) for _ in range(8000)])
    assert np.mean(uniform > 4) > 0.5  # the plain draw lands mostly in the top octave


def test_large_upscales_resize_only_a_window_a_crop_can_come_from():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)
    win = upscale_window(img, 10.0, 64, rng)
    assert win.shape == (11, 11, 3)  # ceil(64 / 10) + 4 source pixels
    assert any(np.array_equal(win, img[t : t + 11, u : u + 11]) for t in range(99) for u in range(79))
    assert upscale_window(img, 2.0, 64, rng) is img  # 178 px short side <= 4 x 64: the whole image
    aug = Augment(resize_prob=1.0, resize_scale=(10.0, 12.0), resize_log=True, blur_prob=0, jpeg_prob=0)
    out, applied = aug.apply(img, 64, np.random.default_rng(1))
    assert out.shape == (64, 64, 3) and applied["resize"]
    step = np.abs(np.diff(out.astype(np.int32), axis=1)).mean()  # neighbour differences: enlarged 10-12x is smooth
    assert step < 0.3 * np.abs(np.diff(img.astype(np.int32), axis=1)).mean()


def test_enlarged_pictures_are_found_and_scored_at_their_source_size():
    rng = np.random.default_rng(0)

    def photo(size: int) -> np.ndarray:  # detail down to about two pixels, as in a photo (pure noise has more)
        return gaussian_blur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), 1.0)

    src = photo(64)
    assert enlargement_factor(photo(512), 64) == 1  # as taken: fine detail everywhere
    for k in (2, 4, 8):
        big = rescale(src, k)
        assert enlargement_factor(big, 64) == k
        assert enlargement_factor(jpeg(big, 90), 64) == k  # the JPEG on its way does not hide it
    assert enlargement_factor(rescale(src, 8), 128) == 4  # only factors that leave min_side pixels are tried
    # 1,600 px, judged on its central 1,024 px; the blurred source itself holds little at its finest scale, so
    # 6 may pass too (the test names the largest factor that loses under 4 grey levels)
    assert enlargement_factor(rescale(photo(400), 4), 64) in (4, 6)
    assert len(regions(rescale(src, 4), 32, 3)) == 4  # 256 px shrunk back to 64: 2 x 2 tiles, not 4 x 4
    assert len(regions(photo(256), 32, 3)) == 16


def test_augment_validates_its_ranges():
    with pytest.raises(ValueError, match="blur_prob"):
        Augment(blur_prob=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        Augment(jpeg_quality=(0, 50))
    with pytest.raises(TypeError):
        Augment(sharpen=1.0)


def test_jpeg_blur_and_perturbation():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
    assert jpeg(img, 75).shape == img.shape and not np.array_equal(jpeg(img, 75), img)
    assert np.array_equal(gaussian_blur(img, 0.0), img)
    p = Perturbation(jpeg_quality=75, scale=0.5)
    assert p(img).shape == (16, 16, 1) and p.name == "scale0.5+jpeg75"
    assert Perturbation().name == "clean" and np.array_equal(Perturbation()(img), img)
    with pytest.raises(ValueError, match="JPEG quality"):
        jpeg(img, 0)


def test_to_tensor_maps_uint8_to_minus_one_one():
    x = to_tensor([np.zeros((4, 4, 1), np.uint8), np.full((4, 4, 1), 255, np.uint8)])
    assert x.shape == (2, 1, 4, 4) and float(x[0].max()) == -1.0 and float(x[1].min()) == 1.0


def test_truncation_is_varied_for_style_based_generators(tmp_path):
    from ganforge.models.stylegan import StyleGenerator

    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=8, channels=1, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)
    G.w_avg.normal_()  # a trained model's tracked mean w; untrained it is zero
    save_checkpoint(tmp_path / "sg", {"G_ema": G}, {})

    def draw(psi: float) -> np.ndarray:
        torch.manual_seed(0)  # the same per-layer noise in every call: only psi differs
        return np.stack(sample_generator(tmp_path / "sg", 4, truncation=(psi, psi)).images)

    full = draw(1.0)
    assert full.shape == (4, 8, 8, 1)
    assert np.array_equal(full, draw(1.0))
    assert not np.array_equal(full, draw(0.5))
    with pytest.raises(ValueError, match="truncation range"):
        sample_generator(tmp_path / "sg", 4, truncation=(0.8, 0.5))
