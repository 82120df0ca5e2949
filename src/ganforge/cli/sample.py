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
@click.option(
    "--class", "klass", type=click.IntRange(0), help="Class for conditional models. [default: seed mod classes]"
)
@click.option("--trunc", "psi", type=float, default=1.0, help="Truncation psi (style-based models).")
@click.option(
    "--out",
    type=click.Path(),
    default="samples.png",
    help="A .png/.jpg grid, or a folder (one PNG per image, named by seed).",
)
@click.option("--nrow", type=click.IntRange(1), help="Images per grid row (default: square).")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
def sample(
    model: str,
    n: int,
    seed: int,
    seeds: str | None,
    klass: int | None,
    psi: float,
    out: str,
    nrow: int | None,
    device: str,
) -> None:
    """Generate images from a run, checkpoint, or a packaged model (`digits`, `faces`).

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
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="Write the generator as ONNX.")
@click.option("--opset", type=click.IntRange(9), default=17, help="ONNX opset.")
@click.option("--check/--no-check", default=True, help="Run the ONNX file with onnxruntime and compare with PyTorch.")
@click.option(
    "--slim",
    "slim_dir",
    type=click.Path(file_okay=False),
    help="Write an inference-only checkpoint folder (the sampling generator, no D or training state).",
)
def export(model: str, onnx_path: str | None, opset: int, check: bool, slim_dir: str | None) -> None:
    """Export the generator: to ONNX (inputs z [N, z_dim] (and c [N, c_dim]); output images in [-1, 1]) and/or as a
    slim safetensors checkpoint for sharing.

    \b
    Examples:
      ganforge export runs/00000-dcgan-digits --onnx G.onnx
      ganforge export runs/00000-dcgan-digits --slim digits-generator/
    """
    if not onnx_path and not slim_dir:
        raise click.UsageError("nothing to do: give --onnx FILE and/or --slim DIR")
    G, meta = load_generator(model)
    if slim_dir:
        from ganforge.checkpoint import resolve_checkpoint
        from ganforge.export import export_slim

        click.echo(f"wrote {export_slim(G, meta, Path(slim_dir), str(resolve_checkpoint(model)))}")
    if onnx_path:
        from ganforge.export import check_onnx, export_onnx, require_onnx

        require_onnx(check)  # before anything is written
        path = export_onnx(G, Path(onnx_path), opset=opset)
        click.echo(f"wrote {path}")
        if check:
            err = check_onnx(G, path)
            click.echo(f"onnxruntime vs PyTorch: max abs difference {err:.2e}")


COMMANDS = [sample, export]
