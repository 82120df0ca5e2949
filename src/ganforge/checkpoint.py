"""Checkpoints: a folder of ``config.json`` + one ``.safetensors`` per network + optional ``state.pt``.

- ``config.json`` names each network's registered class and constructor config, so networks are rebuilt without
  pickled code (STYLE.md rule 5); it also carries the run's resolved training config and dataset info.
- ``<name>.safetensors`` holds each network's parameters and buffers (``G``, ``D``, ``G_ema``, ...).
- ``state.pt`` holds optimizer states, step/kimg, RNG states, sampler and loss state; only tensors and plain
  containers, loaded with ``torch.load(weights_only=True)``. Never unpickled otherwise.

Writes go to a hidden temporary folder beside the target, are fsynced, then renamed into place, so a kill at any
moment leaves either the previous checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = "ganforge-checkpoint"
VERSION = 1
PACKAGED = {"digits": "pretrained/digits", "faces": "pretrained/faces"}


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete or inconsistent."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def network_entry(net: nn.Module) -> dict[str, Any]:
    name = getattr(net, "registry_name", None)
    if name is None or not hasattr(net, "config"):
        raise CheckpointError(f"{type(net).__name__} is not a registered ganforge network; cannot be saved")
    return {"class": name, "config": net.config}


def save_checkpoint(
    path: str | Path,
    networks: dict[str, nn.Module],
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint folder at ``path`` (replacing an existing one only once the new one is whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **config,
        "networks": {k: network_entry(v) for k, v in networks.items()},
    }
    for name, net in networks.items():
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
        save_file(tensors, str(tmp / f"{name}.safetensors"))
    if state is not None:
        torch.save(state, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=_json_default))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.rename(path, old)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def read_config(path: str | Path) -> dict[str, Any]:
    path = resolve_checkpoint(path)
    cfg_path = path / "config.json"
    try:
        meta = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not a checkpoint (no config.json)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: invalid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a ganforge checkpoint (format={meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{cfg_path}: checkpoint version {meta['version']} is newer than this ganforge ({VERSION})"
        )
    return meta


def load_networks(
    path: str | Path, names: list[str] | None = None, device: str | torch.device = "cpu"
) -> dict[str, nn.Module]:
    """Rebuild the networks a checkpoint names (all, or ``names``) and load their weights strictly."""
    from ganforge.models import network_class

    path = resolve_checkpoint(path)
    meta = read_config(path)
    entries = meta["networks"]
    out: dict[str, nn.Module] = {}
    for name in names or list(entries):
        if name not in entries:
            raise CheckpointError(f"{path}: no network {name!r}; it has {sorted(entries)}")
        cls = network_class(entries[name]["class"])
        net = cls(**cls.saved_config(entries[name]["config"]))
        file = path / f"{name}.safetensors"
        if not file.is_file():
            raise CheckpointError(f"{file}: missing weights file")
        try:
            net.load_state_dict(load_file(str(file)), strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{file}: weights do not match the network's config ({e})") from None
        out[name] = net.to(device).eval()
    return out


def load_state(path: str | Path) -> dict[str, Any]:
    """The training state (optimizers, RNG, counters) saved beside the networks, loaded with ``weights_only=True``."""
    file = resolve_checkpoint(path) / "state.pt"
    if not file.is_file():
        raise CheckpointError(f"{file}: this checkpoint holds no training state (exported or pretrained model?)")
    return torch.load(file, map_location="cpu", weights_only=True)


def _recover_replaced(path: Path) -> None:
    """A kill between the two renames of an in-place replacement leaves only ``.<name>.old-<pid>``: restore it."""
    olds = sorted(path.parent.glob(f".{path.name}.old-*")) if path.parent.is_dir() else []
    for old in olds:
        if (old / "config.json").is_file():
            os.rename(old, path)
            return


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are hidden and ignored)."""
    ckpt_root = run_dir / "checkpoints"
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.name.startswith("ckpt-") and (p / "config.json").is_file())


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, a run directory (latest checkpoint) or a packaged model name like ``digits``."""
    if isinstance(path, str) and path in PACKAGED and not Path(path).exists():
        from importlib.resources import files

        return Path(str(files("ganforge") / PACKAGED[path]))
    p = Path(path)
    if not p.exists():
        _recover_replaced(p)
    if (p / "config.json").is_file() and not (p / "checkpoints").is_dir():
        return p
    ckpts = list_checkpoints(p)
    if ckpts:
        return ckpts[-1]
    if not p.exists():
        known = ", ".join(PACKAGED)
        raise CheckpointError(f"{path}: no such checkpoint or run directory (packaged models: {known})")
    raise CheckpointError(f"{path}: neither a checkpoint folder (config.json) nor a run with checkpoints/ckpt-*")
