"""ONNX export of generators, checked against PyTorch with onnxruntime (``pip install "ganforge[onnx]"``)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ONNX_EXTRA = 'pip install "ganforge[onnx]"'


def require_onnx(check: bool = True) -> None:
    """Import ``onnx`` (the exporter needs it) and, when the export is to be checked, ``onnxruntime``; a missing one
    raises ``ModuleNotFoundError`` naming the extra, before anything is written."""
    for module in ("onnx", "onnxruntime") if check else ("onnx",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            hint = "; or pass --no-check" if module == "onnxruntime" else ""
            raise ModuleNotFoundError(f"ONNX export needs {module} ({e.name} is missing{hint}): {ONNX_EXTRA}",
                                      name=e.name) from None


class _Wrapper(nn.Module):
    """Fixes the call signature for export: ``(z)`` or ``(z, c)``; style models run with constant noise."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G
        self.kwargs = {"noise_mode": "const"} if getattr(G, "supports_truncation", False) else {}

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.G(z, c, **self.kwargs)


def _inputs(G: nn.Module, n: int = 2) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, int(G.z_dim), generator=g)
    c_dim = int(getattr(G, "c_dim", 0))
    if c_dim:
        return z, nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float()
    return (z,)


def export_onnx(G: nn.Module, path: Path, opset: int = 17) -> Path:
    """Write ``G`` as ONNX with a dynamic batch dimension; atomically (temporary name, then rename)."""
    require_onnx(check=False)
    G = G.eval().cpu()
    wrapper = _Wrapper(G).eval()
    args = _inputs(G)
    names = ["z", "c"][: len(args)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=names,
            output_names=["images"],
            opset_version=opset,
            dynamic_axes={**{k: {0: "batch"} for k in names}, "images": {0: "batch"}},
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


def check_onnx(G: nn.Module, path: Path, n: int = 3) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's outputs on ``n`` seeded inputs."""
    require_onnx(check=True)
    import onnxruntime as ort

    args = _inputs(G, n)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {inp.name: a.numpy() for inp, a in zip(sess.get_inputs(), args)}
    (out,) = sess.run(["images"], feeds)
    with torch.no_grad():
        ref = _Wrapper(G.eval().cpu())(*args).numpy()
    return float(np.abs(out - ref).max())


def export_slim(G: nn.Module, meta: dict[str, Any], out: Path, source: str) -> Path:
    """An inference-only checkpoint: the sampling generator saved as ``G_ema`` plus provenance, no training state.
    The training config goes without its ``outdir``: the exporter's run folder means nothing where the file is shared.
    """
    from ganforge.checkpoint import save_checkpoint

    keep = {k: meta[k] for k in ("kind", "family", "loss", "train", "dataset", "nimg", "step") if k in meta}
    if "train" in keep:
        keep["train"] = {k: v for k, v in keep["train"].items() if k != "outdir"}
    return save_checkpoint(out, {"G_ema": G}, keep | {"exported_from": source})
