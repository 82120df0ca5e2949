"""Click callbacks shared by several commands."""

from __future__ import annotations

import json

import click


def json_dict(ctx: click.Context, param: click.Parameter, value: str | None) -> dict | None:
    """Parse an option given as a JSON object (``'{"width": 32}'``); anything else is a usage error."""
    if value is None:
        return None
    try:
        d = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON ({e}): {value!r}") from None
    if not isinstance(d, dict):
        raise click.BadParameter(f"expected a JSON object like '{{\"width\": 32}}', got {value!r}")
    return d


def csv_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """``"fid,modes"`` -> ``["fid", "modes"]``."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]
