"""Helpers shared by the recipe tests."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ganforge.cli.main import cli


def dry_run(*args: str) -> tuple[dict, str]:
    """``ganforge train --dry-run ARGS``: the resolved config and what the command wrote to stderr."""
    res = CliRunner().invoke(cli, ["train", "--dry-run", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res.stderr
