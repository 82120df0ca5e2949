"""``ganforge sample`` and ``ganforge export``: use a trained generator."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ganforge.media import save_grid, save_image, to_uint8
from ganforge.sampling import generate, load_generator, parse_seeds


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="RUN_OR_CKPT")
@click.option("--n", "n", type=click.IntRange(1, 100_000), default=64, help="Number of images.")
@click.option("--seed", type=int, default=0, help="Image i uses seed SEED+i (unless --seeds is given).")
@click.option("--seeds", help="Explicit seeds, e.g. 0-7,42 (overrides --n/--seed).")
@click.option("--class", "klass", type=click.IntRange(0), help="Class for conditional models.")
@click.option("--trunc", "psi", type=float, default=1.0, help="Truncation psi (style-based models).")
@click.option("--out", type=click.Path(), default="samples.png",
              help="A .png/.jpg grid, or a folder (one PNG per image, named by seed).")
@click.option("--nrow", type=click.IntRange(1), help="Images per grid row (default: square).")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
def sample(model: str, n: int, seed: int, seeds: str | None, klass: int | None, psi: float, out: str,
           nrow: int | None, device: str) -> None:
    """Generate images from a run, checkpoint, or a packaged model (`digits`).

    \b
    Examples:
      ganforge sample digits --n 64 --seed 0 --out grid.png
      ganforge sample runs/00000-dcgan-digits --seeds 0-15 --out samples/
    """
    seed_list = parse_seeds(seeds) if seeds else list(range(seed, seed + n))
    G, meta = load_generator(model, device)
    imgs = generate(G, seed_list, klass, psi, device=device)
    full = getattr(G, "resolution", imgs.shape[-1])
    if imgs.shape[-1] < full:  # progressive models mid-growth: show at the target size
        import torch.nn.functional as F

        imgs = F.interpolate(imgs, size=(full, full), mode="nearest")
    target = Path(out)
    if target.suffix.lower() in (".png", ".jpg", ".jpeg"):
        save_grid(imgs, target, nrow=nrow or int(math.ceil(math.sqrt(len(imgs)))))
        click.echo(f"wrote {target} ({len(imgs)} images, seeds {seed_list[0]}..{seed_list[-1]})")
    else:
        target.mkdir(parents=True, exist_ok=True)
        for s, arr in zip(seed_list, to_uint8(imgs)):
            save_image(arr, target / f"seed{s:06d}.png")
        click.echo(f"wrote {len(imgs)} images to {target}/")


@click.command(context_settings={"show_default": True})
@click.argument("model", metavar="RUN_OR_CKPT")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), required=True, help="Output .onnx file.")
@click.option("--opset", type=click.IntRange(9), default=17, help="ONNX opset.")
@click.option("--check/--no-check", default=True, help="Run the file with onnxruntime and compare with PyTorch.")
def export(model: str, onnx_path: str, opset: int, check: bool) -> None:
    """Export the generator to ONNX (inputs z [N, z_dim] (and c [N, c_dim]); output images in [-1, 1]).

    \b
    Example:
      ganforge export runs/00000-dcgan-digits --onnx G.onnx
    """
    from ganforge.export import check_onnx, export_onnx

    G, _ = load_generator(model)
    path = export_onnx(G, Path(onnx_path), opset=opset)
    click.echo(f"wrote {path}")
    if check:
        err = check_onnx(G, path)
        click.echo(f"onnxruntime vs PyTorch: max abs difference {err:.2e}")


COMMANDS = [sample, export]
