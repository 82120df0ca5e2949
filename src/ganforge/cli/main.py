"""The ``ganforge`` command: one group, one module per command group (each thin over the library)."""

from __future__ import annotations

import sys

import click

from ganforge import __version__
from ganforge.checkpoint import CheckpointError
from ganforge.data.errors import DataError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """ganforge: train, measure, use and detect GANs.

    \b
    Quick start:
      ganforge train                      # DCGAN on the built-in digits, CPU, minutes
      ganforge sample digits --out g.png  # the packaged pretrained digits generator
    """


def _add_commands() -> None:
    # Explicit imports: each module contributes its commands (no plugin discovery by strings).
    from ganforge.cli import classifier, detect, evaluate, info, sample, style, train, translate
    from ganforge.cli import studio as studio_cli

    for module in (train, sample, info, classifier, evaluate, detect, translate, studio_cli, style):
        for command in module.COMMANDS:
            cli.add_command(command)


_add_commands()

# The optional extras of pyproject.toml ([project.optional-dependencies]) by the top-level module a command imports.
EXTRA_OF_MODULE = {
    "onnx": "onnx", "onnxruntime": "onnx",
    "imageio": "video", "imageio_ffmpeg": "video",
    "h5py": "data",
    "fastapi": "studio", "uvicorn": "studio", "multipart": "studio", "python_multipart": "studio",
    "sqlalchemy": "studio", "psycopg": "studio",
}


def missing_extra(e: ModuleNotFoundError) -> str | None:
    """One line naming the extra that brings the missing module (the library's message when it names it already), or
    None when the module belongs to no extra."""
    module = (e.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    if f'pip install "ganforge[{extra}]"' in str(e):  # the library's own message, which says what needed it
        return str(e)
    return f'{module} is not installed; this command needs the "{extra}" extra: pip install "ganforge[{extra}]"'


def main() -> None:
    """Entry point: user errors (bad data, bad checkpoint, bad values, a missing optional extra) print one clear line,
    not a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as e:
        line = missing_extra(e)
        if line is None:  # not an optional part: a broken installation, shown in full
            raise
        click.echo(f"error: {line}", err=True)
        sys.exit(2)
