"""``ganforge studio`` (serve the web page, report the "Which one is real?" votes) and ``ganforge timelapse``.

``ganforge studio RUN [RUN ...]`` is short for ``ganforge studio serve RUN [RUN ...]``: the group runs ``serve`` when
its first argument is not one of its subcommands (a run folder literally named ``report`` is written ``./report``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

STUDIO_EXTRA = 'pip install "ganforge[studio]"'


def _require(*modules: str) -> None:
    """One clear line (no traceback) naming the extra to install when a module of the studio extra is missing."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise click.ClickException(f"the studio needs {module}, which is not installed: {STUDIO_EXTRA}") from None


class _DefaultServe(click.Group):
    """A group whose first argument, when it is not a subcommand name, is the first RUN of ``serve``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultServe, invoke_without_command=False, no_args_is_help=True,
             context_settings={"show_default": True})
def studio() -> None:
    """A local web page for trained models: explore, translate, detect, "Which one is real?", training timeline.

    \b
    Examples:
      ganforge studio digits                              # the packaged digits generator
      ganforge studio faces --real photos/                # the packaged faces: "Which face is real?"
      ganforge studio runs/00005-dcgan-faces --real photos/  # "Which one is real?" against a folder of photos
      ganforge studio runs/00003-stylegan-ffhq runs/00004-unit-mnist2usps det/ --port 7861
      ganforge studio report runs/00003-stylegan-ffhq/studio-votes.sqlite
    """


@studio.command("serve", context_settings={"show_default": True})
@click.argument("runs", metavar="RUN [RUN ...]", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", help="Interface to bind; anything but loopback exposes the page to "
                                                  "the network.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, help="TCP port.")
@click.option("--db", metavar="URL|FILE", help="SQLAlchemy URL (sqlite:///votes.sqlite, postgresql+psycopg://...) "
                                              "or an SQLite file. Default: studio-votes.sqlite in the first run "
                                              "directory (the current directory for packaged models).")
@click.option("--real", "real_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False),
              help="Folder of real photos (any size, any depth) for \"Which one is real?\", centre-cropped and resized "
                   "to each generator's resolution as training prepares data. Default: each run's own training data.")
@click.option("--device", default="cpu", help="cpu, cuda, mps.")
@click.option("--max-upload-mb", type=click.FloatRange(0.01, 64), default=4.0, help="Largest upload accepted.")
@click.option("--max-upload-mpx", type=click.FloatRange(0.01, 64), default=16.0,
              help="Largest uploaded picture, in megapixels (checked before decoding).")
def serve(runs: tuple[str, ...], host: str, port: int, db: str | None, real_dir: str | None, device: str,
          max_upload_mb: float, max_upload_mpx: float) -> None:
    """Serve the studio for RUNs: run directories, checkpoint folders or packaged model names.

    Only these models can be addressed from the page, by the names printed at start.
    """
    _require("fastapi", "uvicorn", "sqlalchemy")
    import uvicorn

    from ganforge.studio.app import create_app
    from ganforge.studio.catalog import GeneratorModel, ModelSet
    from ganforge.studio.reals import folder_source
    from ganforge.studio.security import Limits, allowed_hosts_for
    from ganforge.studio.votes import VoteStore, database_url

    try:
        real = folder_source(real_dir) if real_dir else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--real") from None
    models = ModelSet.load(list(runs), device=device, real=real)
    if real is not None and not any(isinstance(m, GeneratorModel) for m in models.models.values()):
        raise click.BadParameter(f"{real_dir}: none of the RUNs is a generator to pit against it", param_hint="--real")
    store = VoteStore(database_url(db, models.default_db_dir()))
    limits = Limits(max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                    max_upload_pixels=int(max_upload_mpx * 1_000_000))
    app = create_app(models, store, limits, allowed_hosts_for(host))
    models.preload_real()
    for m in models.models.values():
        caps = ", ".join(k for k, v in m.capabilities().items() if v) or "nothing"
        click.echo(f"model {m.name}: {m.kind} ({m.source}); offers {caps}")
        if isinstance(m, GeneratorModel) and m.reals.source is not None and m.capabilities()["real"]:
            click.echo(f"  real pictures: {m.reals.source.describe()} (at {m.resolution} px, {m.channels} channel(s))")
        for note in m.notes:
            click.echo(f"  note: {note}")
    click.echo(f"votes: {store.url}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: bound to {host}: anyone who can reach this machine can use the page and vote", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"studio: http://{shown}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@studio.command("report", context_settings={"show_default": True})
@click.argument("db", metavar="DB")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", help="Output format.")
def report(db: str, fmt: str) -> None:
    """Fool rate (share of fakes judged real) with a 95 % Wilson interval, per model and psi.

    DB is the SQLite file the studio wrote (or any SQLAlchemy URL).

    \b
    Example:
      ganforge studio report runs/00003-stylegan-ffhq/studio-votes.sqlite --format json
    """
    _require("sqlalchemy")
    from ganforge.studio.report import fool_rates, format_table
    from ganforge.studio.votes import VoteStore, database_url

    if "://" not in db and not Path(db).is_file():
        raise click.BadParameter(f"{db}: no such database file", param_hint="DB")
    store = VoteStore(database_url(db, Path.cwd()))
    try:
        rows = fool_rates(store.votes())
    finally:
        store.dispose()
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    elif fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        fields = ["model", "psi", "n", "fooled", "fool_rate", "ci_low", "ci_high", "median_response_ms"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r.to_dict())
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(format_table(rows), nl=False)


@click.command(context_settings={"show_default": True})
@click.argument("run", metavar="RUN")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Video to write: .mp4 or .gif.")
@click.option("--fps", type=click.FloatRange(0.1, 60), default=4.0, help="Frames (grids) per second.")
@click.option("--metric", help="Metric drawn on each frame (metric-<NAME>.jsonl); default: the first one logged.")
@click.option("--min-width", type=click.IntRange(16, 4096), default=512,
              help="Upscale small grids (nearest, whole factor) to at least this width.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def timelapse(run: str, out: str, fps: float, metric: str | None, min_width: int, quiet: bool) -> None:
    """Render a run's fixed-noise grids (fakesNNNNNN.png) in order as a video, with the kimg and a metric on each.

    \b
    Examples:
      ganforge timelapse runs/00000-dcgan-digits --out timeline.mp4
      ganforge timelapse runs/00003-stylegan-ffhq --out t.gif --fps 2 --metric fid
    """
    from ganforge.timelapse import render_timelapse

    if Path(out).suffix.lower() not in (".mp4", ".gif"):
        raise click.BadParameter(f"{out}: write .mp4 or .gif", param_hint="--out")
    info = render_timelapse(run, out, fps=fps, metric=metric, min_width=min_width, progress=not quiet)
    extra = f", metric {info['metric']}" if info["metric"] else ", no metric logged"
    click.echo(f"wrote {info['out']} ({info['frames']} frames, {info['first_kimg']}..{info['last_kimg']} kimg"
               f"{extra}, {info['size'][0]}x{info['size'][1]})")


COMMANDS = [studio, timelapse]
