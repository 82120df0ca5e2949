"""``ganforge translate``: run a trained UNIT model on a picture, a folder of pictures or a video."""

from __future__ import annotations

import click

from ganforge.data import RESIZE_POLICIES


@click.command(context_settings={"show_default": True})
@click.argument("run", metavar="RUN_OR_CKPT")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), required=True,
              help="a2b reads domain A (--domain-a at training) and writes domain B; b2a the reverse.")
@click.option("--out", "out", type=click.Path(), required=True,
              help="A picture for a picture, a folder for a folder (PNGs), a video file (.mp4, .gif, ...) for a video.")
@click.option("--batch", type=click.IntRange(1), default=16, help="Images or video frames per forward pass.")
@click.option("--resize", type=click.Choice([p for p in RESIZE_POLICIES if p != "none"]), default=None,
              help="Bring inputs to the model's training resolution with this policy (default: keep their size).")
@click.option("--convert-channels", is_flag=True,
              help="Convert inputs whose channel count differs from the source domain (gray <-> RGB).")
@click.option("--ema/--no-ema", default=True, help="Use G_ema when the checkpoint has one.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def translate(run: str, input_path: str, direction: str, out: str, batch: int, resize: str | None,
              convert_channels: bool, ema: bool, device: str, quiet: bool) -> None:
    """Translate INPUT between the two domains of a UNIT run (Liu et al. 2017).

    INPUT is a picture, a folder (translated recursively into a folder of PNGs) or a video (frame by frame, same
    frame rate, audio dropped). Sizes are kept unless --resize is given.

    \b
    Examples:
      ganforge translate runs/00002-unit-mnist --direction b2a usps_digit.png --out as_mnist.png
      ganforge translate runs/00002-unit-day2night --direction a2b photos/ --out night_photos/
      ganforge translate runs/00002-unit-day2night --direction a2b drive.mp4 --out drive_night.mp4 --batch 8
    """
    from ganforge.translate import Options, load_translator, translate_path

    G = load_translator(run, device=device, ema=ema)
    kind = translate_path(G, input_path, out, direction, Options(resize, convert_channels, batch),
                          progress=not quiet)
    click.echo(f"translated {kind} {input_path} ({direction}) -> {out}")


COMMANDS = [translate]
