"""``ganforge mix``, ``ganforge interpolate`` and ``ganforge project``: using a trained style-based generator."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click
import numpy as np

from ganforge.media import VIDEO_SUFFIXES, save_grid, save_image, to_uint8, write_video
from ganforge.models.stylegan_layers import NOISE_MODES


def _device_and_generator(model: str, device: str):
    from ganforge.sampling import load_generator

    G, meta = load_generator(model, device)
    return G, meta


def _class_vector(G, klass: int | None):
    from ganforge.sampling import generator_classes

    return generator_classes(G, klass, 1)


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of uint8 ``[N, H, W, C]`` (small models make unreadably small videos)."""
    return frames if scale == 1 else frames.repeat(scale, axis=1).repeat(scale, axis=2)


def _default_scale(resolution: int, scale: int | None) -> int:
    return scale if scale is not None else max(1, 256 // resolution)


def _video_path(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise click.BadParameter(f"{out}: use a video suffix ({', '.join(VIDEO_SUFFIXES)})", param_hint="--out")
    return path


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="RUN_OR_CKPT")
@click.option("--rows", required=True, help="Seeds of the row sources (they keep all other styles), e.g. 1,2,3.")
@click.option("--cols", required=True, help="Seeds of the column sources (their styles are copied), e.g. 4-6.")
@click.option("--styles", default="coarse",
              help="Layers copied from the column seeds: coarse, middle, fine, or indices like 0-3,6.")
@click.option("--trunc", "psi", type=float, default=1.0, help="Truncation psi.")
@click.option("--class", "klass", type=click.IntRange(0), help="Class for conditional models.")
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", help="Per-pixel noise inputs.")
@click.option("--out", type=click.Path(dir_okay=False), default="mix.png", help="Output picture (.png/.jpg).")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
def mix(model: str, rows: str, cols: str, styles: str, psi: float, klass: int | None, noise_mode: str, out: str,
        device: str) -> None:
    """Style-mixing grid: each cell is its row seed with the chosen style layers of its column seed.

    \b
    Examples:
      ganforge mix runs/00003-stylegan-digits --rows 1,2,3 --cols 4,5 --styles coarse --out mix.png
      ganforge mix RUN --rows 0-4 --cols 10-14 --styles 0-3 --trunc 0.7
    """
    from ganforge.latent import is_style_based, mixing_grid, parse_style_layers
    from ganforge.sampling import parse_seeds

    G, _ = _device_and_generator(model, device)
    if not is_style_based(G):
        raise ValueError(f"{model}: style mixing needs a style-based generator (--model stylegan), "
                         f"this one is {type(G).__name__}")
    row_seeds, col_seeds = parse_seeds(rows), parse_seeds(cols)
    layers = parse_style_layers(styles, int(G.num_ws))
    imgs = mixing_grid(G, row_seeds, col_seeds, layers, _class_vector(G, klass), psi, noise_mode, device)
    path = save_grid(imgs, out, nrow=len(col_seeds) + 1)
    click.echo(f"wrote {path} ({len(row_seeds)} x {len(col_seeds)} mixes; style layers {layers} from the columns)")


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="RUN_OR_CKPT")
@click.option("--seeds", required=True, help="Key-frame seeds, visited in order, e.g. 1,2,3.")
@click.option("--frames", type=click.IntRange(1, 10_000), default=48, help="Frames between two key frames.")
@click.option("--mode", type=click.Choice(["z-slerp", "w-lerp"]), default="z-slerp",
              help="z-slerp works for every model; w-lerp needs a style-based one.")
@click.option("--loop/--no-loop", default=False, help="Return to the first seed at the end.")
@click.option("--trunc", "psi", type=float, default=1.0, help="Truncation psi (style-based models).")
@click.option("--class", "klass", type=click.IntRange(0),
              help="Class for conditional models. [default: each seed's class is seed mod classes, blended]")
@click.option("--fps", type=click.FloatRange(1, 120), default=24.0, help="Frames per second.")
@click.option("--scale", type=click.IntRange(1, 64), help="Integer upscaling of frames. [default: to >= 256 px]")
@click.option("--out", default="walk.mp4", help="Video file: .mp4 (ffmpeg, from imageio-ffmpeg) or .gif.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
def interpolate(model: str, seeds: str, frames: int, mode: str, loop: bool, psi: float, klass: int | None,
                fps: float, scale: int | None, out: str, device: str) -> None:
    """Latent walk video through the images of several seeds.

    \b
    Examples:
      ganforge interpolate runs/00003-stylegan-digits --seeds 1,2,3 --frames 48 --out walk.mp4
      ganforge interpolate digits --seeds 0-5 --loop --out walk.gif
      ganforge interpolate RUN --seeds 1,2 --mode w-lerp --trunc 0.7 --out walk.mp4
    """
    from ganforge.latent import walk
    from ganforge.sampling import parse_seeds

    path = _video_path(out)
    G, _ = _device_and_generator(model, device)
    seed_list = parse_seeds(seeds)
    from ganforge.sampling import generator_classes

    # one class row per key seed: --class everywhere, else seed mod classes (the walk blends between key frames)
    c = generator_classes(G, klass, len(seed_list), seed_list)
    batches = walk(G, seed_list, frames, mode, loop, c, psi, device=device)
    first = next(batches)
    factor = _default_scale(int(first.shape[-1]), scale)

    def frames_iter():
        for b in (first, *batches):
            yield from _upscale(to_uint8(b), factor)

    n = frames * (len(seed_list) - (0 if loop else 1)) + 1
    write_video(frames_iter(), path, fps=fps)
    click.echo(f"wrote {path} ({n} frames, {mode}, seeds {seed_list}{' looped' if loop else ''})")


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="RUN_OR_CKPT")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", type=click.IntRange(1, 100_000), default=500, help="Optimisation steps.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", help="One w for all layers, or one per layer.")
@click.option("--distance", type=click.Choice(["auto", "pixel", "digits", "inception-v3"]), default="auto",
              help="Perceptual distance; auto = digits for 1-channel models (when its classifier is installed), "
                   "else pixel (inception-v3 is accurate but slow on a CPU).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.1, help="Peak Adam learning rate.")
@click.option("--class", "klass", type=click.IntRange(0), help="Class for conditional models.")
@click.option("--seed", type=int, default=0, help="Seed of the w statistics and the optimisation noise.")
@click.option("--video/--no-video", default=True, help="Write progress.mp4 (target | projection per step).")
@click.option("--fps", type=click.FloatRange(1, 120), default=24.0, help="Progress video frame rate.")
@click.option("--out", type=click.Path(file_okay=False), default="projection", help="Output folder.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
def project(model: str, image: str, steps: int, space: str, distance: str, lr: float, klass: int | None, seed: int,
            video: bool, fps: float, out: str, device: str) -> None:
    """Find the latent (w or w+) whose image reproduces IMAGE.

    Writes OUT/projected_w.safetensors (key "ws" [1, num_ws, w_dim]), OUT/target.png, OUT/projected.png,
    OUT/progress.mp4 and OUT/projection.json (the distance used and its final value).

    \b
    Examples:
      ganforge project runs/00003-stylegan-digits digit.png --steps 300 --out proj/
      ganforge project RUN face.png --space w+ --distance inception-v3 --device cuda
    """
    import torch
    from safetensors.torch import save_file

    from ganforge.latent import is_style_based
    from ganforge.metrics.perceptual import build_distance
    from ganforge.projection import load_target
    from ganforge.projection import project as run_projection

    G, _ = _device_and_generator(model, device)
    if not is_style_based(G):
        raise ValueError(f"{model}: projection needs a style-based generator, this one is {type(G).__name__}")
    target = load_target(image, int(G.channels), int(G.resolution))
    name, note = _pick_distance(distance, int(G.channels), device)
    dist = build_distance(name, device)
    click.echo(f"distance: {name}{note}")
    t0 = time.time()
    res = run_projection(G, target, dist, steps=steps, space=space, c=_class_vector(G, klass), lr=lr, seed=seed,
                         frame_every=max(1, steps // 100) if video else 0, progress=True)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"ws": res.ws.contiguous()}
    if space == "w":
        tensors["w"] = res.ws[:, 0].clone()
    save_file(tensors, str(folder / "projected_w.safetensors"),
              metadata={"space": space, "distance": name, "model": str(model), "steps": str(steps)})
    save_image(to_uint8(target)[0], folder / "target.png")
    save_image(to_uint8(res.image)[0], folder / "projected.png")
    if video:
        factor = _default_scale(int(G.resolution), None)
        write_video((_upscale(f[None], factor)[0] for f in res.frames), folder / "progress.mp4", fps=fps)
    record = {"model": str(model), "image": str(image), "space": space, "steps": steps, "lr": lr, "seed": seed,
              "distance": name, "final_distance": res.distance, "initial_distance": res.history[0],
              "seconds": round(time.time() - t0, 1), "device": str(device), "noise_mode": "const"}
    (folder / "projection.json").write_text(json.dumps(record, indent=2))
    if not math.isfinite(res.distance):
        raise ValueError(f"projection diverged (distance {res.distance}); lower --lr")
    click.echo(f"wrote {folder}/: {name} distance {res.history[0]:.4f} -> {res.distance:.4f} in {steps} steps "
               f"({record['seconds']} s)")
    del torch


def _pick_distance(choice: str, channels: int, device: str) -> tuple[str, str]:
    """Resolve ``auto``: the digits classifier's features for 1-channel models if it is installed, else pixels."""
    if choice != "auto":
        return choice, ""
    if channels == 1:
        try:
            from ganforge.metrics import get_extractor

            get_extractor("digits", device=device)
            return "digits", " (auto: LPIPS-like features of the digits classifier)"
        except Exception as e:  # missing or unreadable classifier: say so and use pixels
            return "pixel", f" (auto: digits classifier unavailable: {e})"
    return "pixel", " (auto: pixel + multi-scale; pass --distance inception-v3 for a perceptual distance)"


COMMANDS = [mix, interpolate, project]
