"""Ctrl-C (SIGINT) saves a checkpoint and prints how to resume; the resumed run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from ganforge.checkpoint import list_checkpoints, load_state


def _sigint_default() -> None:
    """In the child before exec: a shell running the suite as a background job (``.ci/run &``) starts it with SIGINT
    ignored, children inherit that, and Python then never raises KeyboardInterrupt (the test would time out)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _train(tmp_path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganforge", "train", "--batch", "16", "--z-dim", "8", "--g-kwargs", '{"width": 8}',
            "--d-kwargs", '{"width": 8}', "--kimg", "1000", "--outdir", str(tmp_path), "--threads", "1", "--quiet",
            *extra]


def _interrupt(cmd: list[str], ready: Callable[[], bool]) -> tuple[str, str]:
    """Start ``cmd``, wait for its ``data:`` line and then for ``ready()`` (up to 120 s), send SIGINT; its stdout
    and stderr. The child starts with SIGINT at its default and is killed if it does not stop within 120 s."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_sigint_default)
    for line in proc.stdout:  # the run directory exists
        if line.startswith("data:"):
            break
    deadline = time.time() + 120
    while not ready() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave a training process behind
        out, err = proc.communicate()
        raise AssertionError(f"SIGINT did not stop training within 120 s; stderr: {err[-2000:]}") from None
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: saved" in out and "ganforge train --resume" in out
    return out, err


def _last_nimg(tmp_path) -> int:
    """Images trained in the newest checkpoint of the one run under ``tmp_path`` (loading it proves it is whole)."""
    (run,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    return int(load_state(list_checkpoints(run)[-1])["nimg"])


def test_ctrl_c_saves_and_resumes(tmp_path):
    _interrupt(_train(tmp_path, "--max-images", "256", "--snapshot-kimg", "500"),
               ready=lambda: bool(list(tmp_path.glob("*/stats.jsonl"))))  # training steps are logged
    run = next(tmp_path.iterdir())
    nimg = _last_nimg(tmp_path)
    assert nimg > 0, "the interrupt checkpoint holds the progress made"
    res = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--kimg",
                          str((nimg + 32) / 1000), "--quiet", "--threads", "1"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _last_nimg(tmp_path) >= nimg + 32


def test_ctrl_c_before_the_first_step_still_saves(tmp_path):
    """Ctrl-C straight after the run directory appears (while the progress bar and the first checkpoint are being
    set up) saves and says how to resume, like one in the middle of training."""
    _interrupt(_train(tmp_path, "--max-images", "64"), ready=lambda: True)
    assert _last_nimg(tmp_path) >= 0  # a checkpoint was saved, and it loads
