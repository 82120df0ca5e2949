"""Run one batch through a network as several single-threaded chunks at once, one per CPU thread.

PyTorch parallelises each CPU operator across its intra-op threads; for the FID Inception network on small batches
that scales poorly (two cores: 1.4x one core), because many of its layers are too small to split well. Splitting
the *batch* instead - each chunk in its own Python thread, each thread one intra-op thread, the operators releasing
the GIL - keeps every core busy with whole convolutions (two cores: 1.8-1.9x one core, BENCHMARKS.md "Inception
feature pass"). A chunk's result does not depend on the others, so the output is the same as one pass to float32
rounding (bit-identical in the measurements here).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")


def cpu_workers(device: torch.device, batch: int) -> int:
    """How many chunks a batch of ``batch`` images runs as: the caller's intra-op thread count on the CPU (at most one
    chunk per image), 1 elsewhere (a GPU parallelises a batch by itself)."""
    if device.type != "cpu" or batch < 2:
        return 1
    return min(torch.get_num_threads(), batch)


def map_chunks(fn: Callable[[torch.Tensor], T], x: torch.Tensor, workers: int) -> list[T]:
    """``[fn(chunk) for chunk in x.chunk(workers)]`` with the chunks run at once, each in a thread of one intra-op
    thread. Gradient mode is per thread in PyTorch, so each worker takes the caller's; an exception in a chunk is
    raised here."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        return [fn(x)]
    grad = torch.is_grad_enabled()

    def run(chunk: torch.Tensor) -> T:
        torch.set_num_threads(1)  # this worker thread's own setting; the caller's is untouched
        with torch.set_grad_enabled(grad):
            return fn(chunk)

    chunks = x.chunk(workers)
    with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="ganforge-chunk") as pool:
        return list(pool.map(run, chunks))
