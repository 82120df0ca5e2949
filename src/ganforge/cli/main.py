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


def main() -> None:
    """Entry point: user errors (bad data, bad checkpoint, bad values) print one clear line, not a traceback."""
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
