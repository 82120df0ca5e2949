"""Data parallel training through torchrun (gloo, 2 CPU processes): identical weights on both ranks, one run
directory written by rank 0, same layout as a single-process run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import torch
from safetensors.torch import load_file

from ganforge.checkpoint import list_checkpoints

SCRIPT = r"""
import os, sys
from pathlib import Path
from safetensors.torch import save_file
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer
out = Path(sys.argv[1])
cfg = TrainConfig(model="dcgan", data="digits", max_images=256, z_dim=8, g_kwargs={"width": 8},
                  d_kwargs={"width": 8}, batch=16, kimg=0.096, grid_kimg=0.048, snapshot_kimg=0.048, grid_size=4,
                  log_every=2, outdir=str(out / "runs"), ema_kimg=0.05, device="cpu", threads=1)
t = Trainer.from_config(cfg, progress=False)
t.run()
rank = int(os.environ["RANK"])
for name, net in t.nets.items():
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / f"rank{rank}-{name}.safetensors"))
"""


def _torchrun(*args: str) -> None:
    """Run ``torchrun --standalone --nproc_per_node 2 ARGS`` (one thread per rank) and require it to succeed."""
    exe = shutil.which("torchrun")
    launcher = [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = launcher + ["--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_process_gloo_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    _torchrun(str(script), str(tmp_path))
    for name in ("G", "D", "G_ema"):
        a = load_file(str(tmp_path / f"rank0-{name}.safetensors"))
        b = load_file(str(tmp_path / f"rank1-{name}.safetensors"))
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs between ranks"
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, "only rank 0 writes a run directory"
    run = runs[0]
    assert (run / "stats.jsonl").is_file() and (run / "config.json").is_file()
    assert list_checkpoints(run)[-1].name == f"ckpt-{96:012d}"
    # the checkpoint rank 0 wrote is the weights both ranks hold
    final = load_file(str(list_checkpoints(run)[-1] / "G.safetensors"))
    a = load_file(str(tmp_path / "rank0-G.safetensors"))
    assert all(torch.equal(final[k], a[k]) for k in a)


def test_cli_under_torchrun(tmp_path):
    """`torchrun -m ganforge train` is the documented entry point."""
    _torchrun(
        "-m",
        "ganforge",
        "train",
        "--device",
        "cpu",
        "--max-images",
        "128",
        "--batch",
        "16",
        "--kimg",
        "0.032",
        "--g-kwargs",
        '{"width": 8}',
        "--d-kwargs",
        '{"width": 8}',
        "--outdir",
        str(tmp_path),
        "--quiet",
        "--threads",
        "1",
    )
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and list_checkpoints(runs[0])
    cfg = (runs[0] / "config.json").read_text()
    assert '"world_size": 2' in cfg


GRADS_SCRIPT = r"""
import torch
import torch.distributed as dist
from torch import nn
from ganforge.train.distributed import all_reduce_grads, init_from_env
info = init_from_env(torch.device("cpu"))
conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
for p in conv.parameters():
    p.grad = torch.full_like(p, float(info.rank + 1))  # rank 0: 1, rank 1: 2 -> mean 1.5
weight_grad = conv.weight.grad
all_reduce_grads(conv, info)
assert conv.weight.grad is weight_grad, "the gradient tensor is reduced in place"
assert conv.weight.grad.is_contiguous(memory_format=torch.channels_last), "channels_last gradient kept"
for p in conv.parameters():
    assert torch.equal(p.grad, torch.full_like(p, 1.5)), p.grad
dist.destroy_process_group()
"""


def test_all_reduce_grads_averages_in_place_keeping_memory_format(tmp_path):
    """Gradients are averaged over ranks into the tensors autograd made, so a channels_last weight's gradient stays
    channels_last (the optimiser then steps parameter and gradient in one layout)."""
    script = tmp_path / "grads.py"
    script.write_text(GRADS_SCRIPT)
    _torchrun(str(script))
