"""Training timelapse: a run's fixed-noise grids in order, as a video with the kimg and metric drawn on each frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.timelapse import (
    Frame,
    annotate,
    caption,
    find_run_dir,
    metric_series,
    render_timelapse,
    timeline_frames,
)

pytest.importorskip("imageio")


def make_run(root: Path, sizes: dict[int, int], metric: bool = True) -> Path:
    """A run folder with one grey grid per kimg (each a distinct flat level with a bright square) and a metric."""
    run = root / "00000-dcgan-digits"
    (run / "checkpoints" / "ckpt-000000000000").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "ckpt-000000000000" / "config.json").write_text("{}")
    for i, (kimg, size) in enumerate(sizes.items()):
        arr = np.full((size, size), 40 + 60 * i, np.uint8)
        arr[: size // 4, : size // 4] = 255
        Image.fromarray(arr).save(run / f"fakes{kimg:06d}.png")
    (run / "fakes-notes.png").write_bytes(b"not a frame")  # ignored: not fakes<digits>.png
    if metric:
        with open(run / "metric-fid.jsonl", "w") as f:
            f.write(json.dumps({"nimg": 4000, "kimg": 4.0, "fid_1k": 91.5}) + "\n")
            f.write("{truncated line\n")
            f.write(json.dumps({"nimg": 8000, "kimg": 8.0, "fid_1k": 55.25}) + "\n")
    return run


def test_frames_in_kimg_order_and_metric_lookup(tmp_path):
    run = make_run(tmp_path, {12: 32, 0: 32, 4: 32, 8: 32})
    frames = timeline_frames(run)
    assert [f.kimg for f in frames] == [0, 4, 8, 12]
    series = metric_series(run)
    assert series.name == "fid_1k" and series.points == ((4.0, 91.5), (8.0, 55.25))
    assert [series.value_at(k) for k in (0, 4, 7, 12)] == [None, 91.5, 91.5, 55.25]
    assert caption(frames[0], series) == "0 kimg"
    assert caption(frames[3], series) == "12 kimg    fid_1k 55.25"
    with pytest.raises(ValueError, match="no metric 'kid'.*logged: fid"):
        metric_series(run, "kid")
    assert find_run_dir(run / "checkpoints" / "ckpt-000000000000") == run


def test_annotate_draws_text_in_a_band_with_even_sides():
    arr = np.full((33, 35, 1), 128, np.uint8)
    out = annotate(arr, "12 kimg")
    assert out.shape[1] == 36 and out.shape[0] % 2 == 0 and out.shape[0] > 33 and out.shape[2] == 3
    assert np.array_equal(out[:33, :35], np.repeat(arr, 3, axis=2))  # the picture itself is untouched
    band = out[33:]
    assert band.max() > 200 and (band == 0).mean() > 0.5  # white text on black
    assert not np.array_equal(band, annotate(arr, "16 kimg")[33:])


def test_render_gif_has_one_captioned_frame_per_grid(tmp_path):
    import imageio.v2 as iio

    run = make_run(tmp_path, {0: 16, 4: 32, 8: 32})  # a progressive run's early grid is smaller
    out = tmp_path / "t.gif"
    info = render_timelapse(run, out, fps=2, min_width=64)
    assert info["frames"] == 3 and (info["first_kimg"], info["last_kimg"]) == (0, 8) and info["metric"] == "fid_1k"
    frames = [np.asarray(f) for f in iio.mimread(out)]
    assert len(frames) == 3 and all(f.shape[:2] == frames[0].shape[:2] for f in frames)
    assert frames[0].shape[1] == 64 and list(info["size"]) == [frames[0].shape[1], frames[0].shape[0]]
    first = frames[0][..., 0] if frames[0].ndim == 3 else frames[0]
    # the 16-px grid was brought to 32 px then upscaled x2: its bright square covers the top-left 16 x 16
    assert first[:16, :16].min() > 200 and abs(int(first[40, 40]) - 40) <= 3
    bands = [f[64:] for f in frames]
    assert not np.array_equal(bands[0], bands[2])  # "0 kimg" vs "8 kimg  fid_1k 55.25"


def test_render_mp4_and_errors(tmp_path):
    from ganforge.media import video_info

    run = make_run(tmp_path, {0: 28, 4: 28}, metric=False)
    info = render_timelapse(run, tmp_path / "t.mp4", fps=4)
    assert info["metric"] is None
    meta = video_info(tmp_path / "t.mp4")
    assert meta["frames"] == 2 and meta["fps"] == pytest.approx(4)
    assert tuple(meta["size"]) == tuple(info["size"]) and info["size"][0] >= 512
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no fixed-noise grids"):
        render_timelapse(empty, tmp_path / "x.gif")
    with pytest.raises(FileNotFoundError):
        render_timelapse(tmp_path / "missing", tmp_path / "x.gif")
    assert timeline_frames(tmp_path / "missing") == []
    assert Frame(Path("a"), 3).kimg == 3


def test_timelapse_command(tmp_path):
    from ganforge.cli.main import cli

    run = make_run(tmp_path, {0: 28, 4: 28, 8: 28})
    runner = CliRunner()
    r = runner.invoke(cli, ["timelapse", str(run), "--out", str(tmp_path / "t.gif"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "3 frames, 0..8 kimg, metric fid_1k" in r.output and (tmp_path / "t.gif").is_file()
    r = runner.invoke(cli, ["timelapse", str(run), "--out", str(tmp_path / "t.avi")])
    assert r.exit_code != 0 and ".mp4 or .gif" in r.output
