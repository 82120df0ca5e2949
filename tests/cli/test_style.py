"""``ganforge mix``, ``interpolate`` and ``project`` on tiny checkpoints: outputs exist and hold the right pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from ganforge.checkpoint import save_checkpoint
from ganforge.cli.main import cli
from ganforge.media import to_uint8
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator
from ganforge.sampling import latents

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def style_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, resolution=16, channels=1, w_dim=16, mapping_layers=2, channel_base=128,
                       channel_max=16)
    D = StyleDiscriminator(resolution=16, channels=1, channel_base=128, channel_max=16)
    with torch.no_grad():
        G.mapping(torch.randn(256, 8), update_w_avg=True)
    path = tmp_path_factory.mktemp("style") / "ckpt"
    save_checkpoint(path, {"G": G, "D": D, "G_ema": G}, {"kind": "gan", "family": "stylegan"})
    return path, G.eval()


@pytest.fixture(scope="module")
def dcgan_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    G, D = DCGANGenerator(z_dim=8, resolution=16, channels=1, width=8), DCGANDiscriminator(resolution=16, channels=1,
                                                                                          width=8)
    path = tmp_path_factory.mktemp("dcgan") / "ckpt"
    save_checkpoint(path, {"G": G, "D": D}, {"kind": "gan", "family": "dcgan"})
    return path


def tile(grid: np.ndarray, r: int, c: int, size: int = 16, pad: int = 2) -> np.ndarray:
    y, x = pad + r * (size + pad), pad + c * (size + pad)
    return grid[y : y + size, x : x + size]


def test_mix_grid(style_ckpt, tmp_path):
    path, G = style_ckpt
    out = tmp_path / "mix.png"
    res = run("mix", path, "--rows", "1,2", "--cols", "3,4,5", "--styles", "coarse", "--out", out)
    assert res.exit_code == 0, res.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 3 * 18, 2 + 4 * 18)
    with torch.no_grad():
        src = to_uint8(G(latents([1, 2, 3, 4, 5], 8), noise_mode="const"))[..., 0]
    assert np.array_equal(tile(grid, 0, 1), src[2]) and np.array_equal(tile(grid, 1, 0), src[0])
    assert not np.array_equal(tile(grid, 1, 1), src[0])  # coarse styles of seed 3 changed seed 1's image
    # copying every layer gives the column image
    res = run("mix", path, "--rows", "1", "--cols", "3", "--styles", "0-5", "--out", out)
    grid = np.asarray(Image.open(out))
    assert np.array_equal(tile(grid, 1, 1), src[2])


def test_mix_errors(style_ckpt, dcgan_ckpt, tmp_path):
    path, _ = style_ckpt
    res = CliRunner().invoke(cli, ["mix", str(path), "--rows", "1", "--cols", "2", "--styles", "0-9",
                                   "--out", str(tmp_path / "m.png")])
    assert res.exit_code != 0 and "out of range" in str(res.exception)
    res = CliRunner().invoke(cli, ["mix", str(dcgan_ckpt), "--rows", "1", "--cols", "2"])
    assert res.exit_code != 0 and "style-based" in str(res.exception)


@pytest.mark.parametrize("mode", ["z-slerp", "w-lerp"])
def test_interpolate_style_model(style_ckpt, tmp_path, mode):
    import imageio.v2 as iio

    path, G = style_ckpt
    out = tmp_path / "walk.gif"
    res = run("interpolate", path, "--seeds", "1,2,3", "--frames", "4", "--mode", mode, "--scale", "1", "--out", out)
    assert res.exit_code == 0, res.output
    frames = np.stack(iio.mimread(out))
    assert frames.shape[:3] == (9, 16, 16)
    with torch.no_grad():
        keys = to_uint8(G(latents([1, 2, 3], 8), noise_mode="const"))[..., 0]
    first, middle, last = (frames[i] if frames.ndim == 3 else frames[i, ..., 0] for i in (0, 4, 8))
    for got, want in ((first, keys[0]), (middle, keys[1]), (last, keys[2])):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # key frames are the seeds' images


def test_interpolate_any_family_in_z_and_mp4(dcgan_ckpt, tmp_path):
    out = tmp_path / "walk.mp4"
    res = run("interpolate", dcgan_ckpt, "--seeds", "0,1", "--frames", "3", "--loop", "--out", out)
    assert res.exit_code == 0, res.output
    from ganforge.media import video_info

    info = video_info(out)
    assert info["frames"] == 7 and tuple(info["size"]) == (256, 256)
    res = CliRunner().invoke(cli, ["interpolate", str(dcgan_ckpt), "--seeds", "0,1", "--mode", "w-lerp",
                                   "--out", str(out)])
    assert res.exit_code != 0 and "style-based" in str(res.exception)


def test_project_writes_latent_images_video_and_record(style_ckpt, tmp_path):
    path, G = style_ckpt
    with torch.no_grad():
        target = to_uint8(G(latents([11], 8), noise_mode="const"))[0]
    Image.fromarray(target[..., 0]).resize((40, 40)).save(tmp_path / "target.png")  # resized back to 16 on load
    out = tmp_path / "proj"
    res = run("project", path, tmp_path / "target.png", "--steps", "40", "--distance", "pixel", "--out", out)
    assert res.exit_code == 0, res.output
    assert "distance: pixel" in res.output
    for name in ("projected_w.safetensors", "target.png", "projected.png", "progress.mp4", "projection.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "projection.json").read_text())
    assert record["distance"] == "pixel" and record["final_distance"] < record["initial_distance"]
    tensors = load_file(str(out / "projected_w.safetensors"))
    assert tensors["ws"].shape == (1, G.num_ws, 16) and tensors["w"].shape == (1, 16)


def test_parse_style_layers():
    from ganforge.latent import parse_style_layers

    assert parse_style_layers("coarse", 8) == [0, 1, 2, 3]
    assert parse_style_layers("fine,0-1", 8) == [0, 1, 6, 7]
    assert parse_style_layers("2,5", 8) == [2, 5]
    with pytest.raises(ValueError, match="no 'middle' layers"):
        parse_style_layers("middle", 4)
    with pytest.raises(ValueError, match="bad style layers"):
        parse_style_layers("coarse,x", 8)
    with pytest.raises(ValueError, match="out of range"):
        parse_style_layers("7-8", 8)


def test_interpolate_conditional_model_morphs_between_the_seeds_classes(tmp_path):
    import imageio.v2 as iio

    from ganforge.latent import slerp
    from ganforge.sampling import generate, load_generator

    out = tmp_path / "walk.gif"
    res = run("interpolate", "digits", "--seeds", "3,4", "--frames", "2", "--scale", "1", "--out", out)
    assert res.exit_code == 0, res.output
    frames = np.stack(iio.mimread(out))
    frames = frames if frames.ndim == 3 else frames[..., 0]
    assert frames.shape == (3, 28, 28)
    G, _ = load_generator("digits")
    keys = to_uint8(generate(G, [3, 4]))[..., 0]  # classes 3 and 4: seed mod 10
    with torch.no_grad():
        z = latents([3, 4], G.z_dim)
        c = torch.nn.functional.one_hot(torch.tensor([3, 4]), 10).float()
        middle = to_uint8(G(slerp(z[:1], z[1:], torch.tensor([0.5])), c.mean(dim=0, keepdim=True)))[0, ..., 0]
    for got, want in ((frames[0], keys[0]), (frames[1], middle), (frames[2], keys[1])):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
