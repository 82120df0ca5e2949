"""Ctrl-C (SIGINT) saves a checkpoint and prints how to resume; the resumed run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ganforge.checkpoint import list_checkpoints, load_state


def test_ctrl_c_saves_and_resumes(tmp_path):
    cmd = [sys.executable, "-m", "ganforge", "train", "--max-images", "256", "--batch", "16", "--z-dim", "8",
           "--g-kwargs", '{"width": 8}', "--d-kwargs", '{"width": 8}', "--kimg", "1000", "--snapshot-kimg", "500",
           "--outdir", str(tmp_path), "--threads", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:  # wait until training has started
        if line.startswith("data:"):
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: saved" in out and "ganforge train --resume" in out
    run = next(tmp_path.iterdir())
    last = list_checkpoints(run)[-1]
    nimg = load_state(last)["nimg"]
    assert nimg > 0, "the interrupt checkpoint holds the progress made"
    res = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--kimg",
                          str((nimg + 32) / 1000), "--quiet", "--threads", "1"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert load_state(list_checkpoints(run)[-1])["nimg"] >= nimg + 32
