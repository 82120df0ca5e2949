"""Run directories (STYLE.md rule 7): ``runs/00003-dcgan-digits/`` with the resolved config, ``stats.jsonl``,
``metric-<name>.jsonl``, sample grids, TensorBoard events and ``checkpoints/ckpt-<kimg>``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ganforge.checkpoint import atomic_write_text


def new_run_dir(outdir: str | Path, desc: str) -> Path:
    """Create the next numbered run folder under ``outdir``."""
    root = Path(outdir)
    root.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    run = root / f"{(max(ids) + 1 if ids else 0):05d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', desc)}"
    run.mkdir()
    return run


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, default=float) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill: the records before it are intact
    return out


def truncate_jsonl(path: Path, max_nimg: int) -> None:
    """After a resume, drop records logged beyond the checkpoint so stats do not repeat."""
    if path.is_file():
        keep = [r for r in read_jsonl(path) if int(r.get("nimg", 0)) <= max_nimg]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))
