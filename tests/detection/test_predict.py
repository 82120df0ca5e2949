"""Scoring any picture: corrupt files become per-file error entries while the rest is scored; any size (20 px to
2,000 px) and mode (grey, RGB, RGBA, CMYK, palette) is scored on tiles at native resolution; one output schema."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.special import expit

from ganforge.data.formats import decode_image
from ganforge.detection.predict import PREDICT_FIELDS, predict_path, score_arrays, score_regions
from ganforge.models.detector import Detector

META = {"preprocess": {"view": "tiles"}}


def _det(channels: int, crop: int = 16) -> Detector:
    torch.manual_seed(0)
    net = Detector(channels=channels, crop=crop, width=4, depth=2, spectrum_size=8, hidden=8)
    net.set_temperature(2.0)
    return net.eval()


def test_folder_is_scored_and_corrupt_files_get_clear_error_entries(mixed_folder):
    for channels in (1, 3):
        net = _det(channels)
        records = predict_path(net, META, mixed_folder)
        names = [r["path"].split("/")[-1] for r in records]
        assert names == ["a_grey.png", "b_rgb.jpg", "c_rgba.png", "e_corrupt.png", "f_truncated.png", "d_tiny.png"]
        assert all(tuple(r) == PREDICT_FIELDS for r in records)  # one schema, every field in every record
        by = {n: r for n, r in zip(names, records, strict=True)}
        for n in ("a_grey.png", "b_rgb.jpg", "c_rgba.png", "d_tiny.png"):
            r = by[n]
            assert 0.0 < r["probability"] < 1.0 and r["label"] in ("real", "fake") and r["error"] is None
            assert r["label"] == ("fake" if r["probability"] >= 0.5 else "real")
            img = decode_image(mixed_folder / ("sub" if n == "d_tiny.png" else "") / n, n)
            assert r["probability"] == pytest.approx(expit(score_arrays(net, [img])[0] / 2.0), rel=1e-6)  # T = 2
        assert [by[n]["regions"] for n in ("a_grey.png", "b_rgb.jpg", "c_rgba.png", "d_tiny.png")] == [4, 16, 9, 1]
        for n in ("e_corrupt.png", "f_truncated.png"):
            r = by[n]
            assert r["probability"] is None and r["label"] is None and r["regions"] == 0 and n in r["error"]


def test_scores_do_not_depend_on_batch_size_or_position():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (int(rng.integers(10, 40)), int(rng.integers(10, 40)), 3), dtype=np.uint8)
            for _ in range(7)]
    net = _det(3)
    a = score_arrays(net, imgs, batch_size=7)
    b = score_arrays(net, imgs, batch_size=2)
    c = score_arrays(net, imgs[3:4])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a[3:4], c, rtol=1e-5, atol=1e-5)
    assert score_arrays(net, []).shape == (0,)


def test_an_image_scores_the_mean_of_its_tiles_at_native_resolution():
    """A big image is cut, not resized: its logit is the mean of its tiles' logits, each tile scored alone."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 60, 1), dtype=np.uint8)
    net = _det(1)
    logit, count = score_regions(net, [img])
    tiles = [img[t : t + 16, u : u + 16] for t in (0, 8, 24) for u in (0, 8, 24, 40)]
    assert count.tolist() == [12]
    assert logit[0] == pytest.approx(float(np.mean(score_arrays(net, tiles))), abs=1e-5)
    with pytest.raises(ValueError, match="test view 'resize'"):
        score_arrays(net, [img], "resize")


def _picture(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if mode == "P":
        return rgb.convert("P", palette=Image.ADAPTIVE, colors=64)
    return rgb.convert(mode)


@pytest.mark.parametrize("channels", [1, 3])
def test_any_size_and_mode_is_scored_and_says_how_many_regions(tmp_path, channels):
    files = {"a_20px_grey.png": ((20, 20), "L"), "b_60px_rgba.png": ((60, 60), "RGBA"),
             "c_cmyk.jpg": ((333, 257), "CMYK"), "d_palette.png": ((97, 45), "P"), "e_wide.png": ((2000, 24), "RGB"),
             "f_2000px.jpg": ((2000, 2000), "RGB")}
    for i, (name, (size, mode)) in enumerate(files.items()):
        _picture(size, mode, i).save(tmp_path / name)
    (tmp_path / "g_empty.png").write_bytes(b"")
    net = _det(channels, crop=32)
    records = predict_path(net, META, tmp_path)
    by = {r["path"].split("/")[-1]: r for r in records}
    assert {n: by[n]["regions"] for n in files} == {"a_20px_grey.png": 1, "b_60px_rgba.png": 4, "c_cmyk.jpg": 16,
                                                    "d_palette.png": 8, "e_wide.png": 4, "f_2000px.jpg": 16}
    assert all(0 < by[n]["probability"] < 1 and by[n]["error"] is None for n in files)
    assert by["g_empty.png"]["error"] and by["g_empty.png"]["probability"] is None
    again = predict_path(_det(channels, crop=32), META, tmp_path)
    assert again == records  # deterministic
