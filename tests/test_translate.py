"""``ganforge.translate`` and ``ganforge translate``: pictures, folders, video round trips, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganforge.checkpoint import save_checkpoint
from ganforge.data import DataError
from ganforge.media import read_video, write_video
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.unit import UnitGenerator
from ganforge.translate import Options, load_translator, translate_path, translate_tensor

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ckpt(tmp_path):
    """A tiny untrained UNIT model: domain A is RGB, domain B is gray."""
    G = UnitGenerator(channels_a=3, channels_b=1, resolution=16, width=4, n_res=0)
    return save_checkpoint(tmp_path / "ckpt", {"G": G}, {"family": "unit"})


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_translate_tensor_keeps_any_size_and_matches_the_model(ckpt):
    G = load_translator(ckpt)
    x = torch.rand(3, 3, 16, 20) * 2 - 1
    assert torch.allclose(translate_tensor(G, x, "a2b", batch=2), G.translate(x, "a2b"), atol=1e-5)
    odd = translate_tensor(G, torch.rand(2, 3, 18, 13) * 2 - 1, "a2b")  # padded to 20x16 inside, cropped back
    assert odd.shape == (2, 1, 18, 13)
    assert translate_tensor(G, torch.rand(1, 1, 6, 2), "b2a").shape == (1, 3, 6, 2)  # smaller than the minimum
    with pytest.raises(ValueError, match="domain A images with 3 channel"):
        translate_tensor(G, torch.rand(1, 1, 16, 16), "a2b")


def test_picture_round_trip_keeps_size_and_writes_target_channels(ckpt, tmp_path):
    Image.fromarray(_rgb(18, 26)).save(tmp_path / "in.png")
    G = load_translator(ckpt)
    assert translate_path(G, tmp_path / "in.png", tmp_path / "out.png", "a2b") == "image"
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (18, 26)  # gray domain B
    translate_path(G, tmp_path / "out.png", tmp_path / "back.jpg", "b2a")
    assert np.asarray(Image.open(tmp_path / "back.jpg")).shape == (18, 26, 3)
    translate_path(G, tmp_path / "in.png", tmp_path / "small.png", "a2b", Options(resize="center-crop"))
    assert np.asarray(Image.open(tmp_path / "small.png")).shape == (16, 16)  # the model's resolution


def test_folder_is_translated_recursively_into_pngs(ckpt, tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(_rgb(16, 16)).save(src / "a.jpg")
    Image.fromarray(_rgb(12, 20, 1)).save(src / "sub" / "b.png")
    G = load_translator(ckpt)
    assert translate_path(G, src, tmp_path / "out", "a2b") == "folder"
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (16, 16)
    assert np.asarray(Image.open(tmp_path / "out" / "sub" / "b.png")).shape == (12, 20)
    Image.fromarray(_rgb(16, 16)).save(src / "a.png")  # a.jpg and a.png would collide
    with pytest.raises(ValueError, match="would both be written"):
        translate_path(G, src, tmp_path / "out2", "a2b")


def test_video_round_trip_keeps_frame_count_size_and_rate(ckpt, tmp_path):
    frames = [_rgb(24, 32, i) for i in range(7)]
    write_video(frames, tmp_path / "in.mp4", fps=10)
    G = load_translator(ckpt)
    assert translate_path(G, tmp_path / "in.mp4", tmp_path / "out.mp4", "a2b", Options(batch=3)) == "video"
    out, fps = read_video(tmp_path / "out.mp4")
    out = list(out)
    assert len(out) == 7 and out[0].shape == (24, 32, 3) and fps == pytest.approx(10)
    assert not list(tmp_path.glob(".out*"))  # no temporary file left behind
    # B is gray: the video's RGB frames need explicit conversion, then come back as RGB.
    with pytest.raises(DataError, match="has 3 channel\\(s\\) but domain B of this model has 1; pass --convert"):
        translate_path(G, tmp_path / "out.mp4", tmp_path / "back.mp4", "b2a")
    assert not (tmp_path / "back.mp4").exists()
    translate_path(G, tmp_path / "out.mp4", tmp_path / "back.gif", "b2a", Options(convert_channels=True))
    back, _ = read_video(tmp_path / "back.gif")
    assert len(list(back)) == 7


def test_bad_inputs_give_clear_errors(ckpt, tmp_path):
    G = load_translator(ckpt)
    Image.fromarray(_rgb(16, 16)[:, :, 0]).save(tmp_path / "gray.png")
    with pytest.raises(DataError, match="gray.png: has 1 channel\\(s\\) but domain A of this model has 3"):
        translate_path(G, tmp_path / "gray.png", tmp_path / "o.png", "a2b")
    translate_path(G, tmp_path / "gray.png", tmp_path / "o.png", "a2b", Options(convert_channels=True))
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (16, 16)  # converted back to the input's channels
    (tmp_path / "clip.xyz").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="unsupported input '.xyz'"):
        translate_path(G, tmp_path / "clip.xyz", tmp_path / "o.mp4", "a2b")
    (tmp_path / "broken.mp4").write_bytes(b"definitely not a video")
    with pytest.raises(ValueError, match="broken.mp4: not a readable video"):
        translate_path(G, tmp_path / "broken.mp4", tmp_path / "o.mp4", "a2b")
    with pytest.raises(ValueError, match="a video's output must be a video file"):
        translate_path(G, tmp_path / "broken.mp4", tmp_path / "o.png", "a2b")
    with pytest.raises(ValueError, match="a picture's output must be one of"):
        translate_path(G, tmp_path / "gray.png", tmp_path / "o.txt", "a2b", Options(convert_channels=True))
    with pytest.raises(ValueError, match="direction must be"):
        translate_path(G, tmp_path / "gray.png", tmp_path / "o.png", "ab")
    with pytest.raises(ValueError, match="resize must be one of"):
        Options(resize="none")
    other = save_checkpoint(tmp_path / "dcgan", {"G": DCGANGenerator(resolution=16)}, {"family": "dcgan"})
    with pytest.raises(ValueError, match="not a UNIT translation model"):
        load_translator(other)


def test_cli(ckpt, tmp_path):
    from ganforge.cli.main import cli

    Image.fromarray(_rgb(16, 16)).save(tmp_path / "in.png")
    runner = CliRunner()
    res = runner.invoke(cli, ["translate", str(ckpt), "--direction", "a2b", str(tmp_path / "in.png"),
                              "--out", str(tmp_path / "out.png"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "translated image" in res.output and (tmp_path / "out.png").is_file()
    res = runner.invoke(cli, ["translate", str(ckpt), "--direction", "b2a", str(tmp_path / "in.png"),
                              "--out", str(tmp_path / "o.png")])
    assert isinstance(res.exception, DataError) and "--convert-channels" in str(res.exception)
    res = runner.invoke(cli, ["translate", str(ckpt), "--direction", "x2y", str(tmp_path / "in.png"), "--out", "o"])
    assert res.exit_code == 2 and "x2y" in res.output
