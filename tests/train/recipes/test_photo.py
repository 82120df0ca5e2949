"""The photo recipe chosen by the data: a folder of colour photos resolves to it in ``ganforge train --dry-run``;
grey images, small digits, built-in names and explicit choices do not; resolution and other options still apply."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforge.train.recipes import get_recipe
from ganforge.train.recipes.photo import PHOTO_FAMILY, is_colour_image, is_photo_folder, photo_defaults
from tests.train.recipes.helpers import dry_run


def _folder(root, n: int = 8, size: int = 48, colour: bool = True, ext: str = "jpg"):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        if colour:  # a smooth colour gradient with noise: a photo-like RGB image
            yy, xx = np.mgrid[0:size, 0:size] / size
            img = np.stack([xx, yy, 1 - xx * yy], axis=-1) * 200 + rng.uniform(0, 55, (size, size, 3))
            Image.fromarray(img.astype(np.uint8), "RGB").save(root / f"{i:03d}.{ext}", quality=90)
        else:
            img = rng.uniform(0, 255, (size, size))
            Image.fromarray(img.astype(np.uint8), "L").save(root / f"{i:03d}.{ext}")
    return root


def test_colour_photos_resolve_to_the_photo_recipe(tmp_path):
    folder = _folder(tmp_path / "photos")
    cfg, note = dry_run("--data", str(folder))
    assert cfg["model"] == PHOTO_FAMILY
    assert (cfg["resolution"], cfg["channels"], cfg["resize"], cfg["xflip"]) == (64, 3, "center-crop", True)
    assert cfg["ema_kimg"] > 0  # G EMA
    assert cfg["precision"] == "auto"  # bf16 where the CPU has AMX
    assert "photo recipe" in note and PHOTO_FAMILY in note
    loss = cfg["loss"] or get_recipe(cfg["model"]).loss
    assert loss == "fastgan" or cfg["loss_kwargs"].get("augment") == "diffaugment"  # DiffAugment either way


def test_photo_recipe_has_the_measured_fastgan_settings(tmp_path):
    folder = _folder(tmp_path / "photos")
    cfg, _ = dry_run("--data", str(folder))
    assert cfg["d_kwargs"] == {"width": 16}  # the wider D (BENCHMARKS.md, the 2-h faces runs)
    assert (cfg["ema_kimg"], cfg["ema_rampup"], cfg["ema_bn_images"]) == (10.0, 0.05, 0)  # G's statistics kept
    assert get_recipe("fastgan").defaults["ema_kimg"] == 2.0  # `--model fastgan` keeps the family's own defaults
    cfg, _ = dry_run("--data", str(folder), "--d-kwargs", '{"spectral": false}', "--ema-kimg", "3")
    assert cfg["d_kwargs"] == {"width": 16, "spectral": False} and cfg["ema_kimg"] == 3.0  # options merge on top


@pytest.mark.parametrize("resolution", ["32", "64", "128"])
def test_resolution_option_keeps_the_photo_recipe(tmp_path, resolution):
    cfg, _ = dry_run("--data", str(_folder(tmp_path / "photos")), "--resolution", resolution)
    assert cfg["model"] == PHOTO_FAMILY and cfg["resolution"] == int(resolution)


def test_grey_and_digit_folders_do_not(tmp_path):
    grey = _folder(tmp_path / "grey", colour=False, ext="png")
    digits = _folder(tmp_path / "digits", size=28, ext="png")  # colour, but digit-sized
    for folder in (grey, digits):
        assert not is_photo_folder(folder)
        cfg, note = dry_run("--data", str(folder))
        assert cfg["model"] != PHOTO_FAMILY and "photo recipe" not in note


def test_an_explicit_model_or_option_wins(tmp_path):
    folder = _folder(tmp_path / "photos")
    cfg, note = dry_run("--data", str(folder), "--model", "dcgan")
    assert cfg["model"] == "dcgan" and "photo recipe" not in note
    cfg, _ = dry_run("--data", str(folder), "--no-xflip", "--channels", "1", "--precision", "fp32")
    assert cfg["model"] == PHOTO_FAMILY and not cfg["xflip"] and cfg["channels"] == 1 and cfg["precision"] == "fp32"


def test_augment_option_reaches_the_loss(tmp_path):
    cfg, _ = dry_run("--model", "dcgan", "--data", str(_folder(tmp_path / "photos")), "--augment", "diffaugment")
    assert cfg["loss_kwargs"]["augment"] == "diffaugment"


def test_detection_helpers(tmp_path):
    grey_rgb = np.repeat(np.random.default_rng(0).integers(0, 255, (40, 40, 1), dtype=np.uint8), 3, axis=2)
    assert not is_colour_image(grey_rgb)
    assert not is_photo_folder(tmp_path / "missing") and not is_photo_folder("digits")
    assert photo_defaults("digits") == {} and photo_defaults(None) == {}
    with pytest.raises(ValueError, match="no photo settings"):
        photo_defaults(str(tmp_path), family="unit")
