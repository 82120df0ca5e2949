"""Batch chunks run at once in single-threaded workers: same results, caller's settings untouched, errors raised."""

from __future__ import annotations

import pytest
import torch

from ganforge.metrics.split_threads import cpu_workers, map_chunks


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_chunks_cover_the_batch_in_order():
    x = torch.arange(10.0).view(10, 1)
    parts = map_chunks(lambda c: c * 2, x, 3)
    assert len(parts) == 3
    assert torch.equal(torch.cat(parts), x * 2)


def test_a_small_network_gives_the_same_output_in_chunks(threads):
    torch.set_num_threads(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3)).eval()
    x = torch.randn(6, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = net(x)
        parts = torch.cat(map_chunks(net, x, 2))
    assert torch.allclose(parts, whole, rtol=1e-5, atol=1e-6)


def test_workers_take_the_callers_grad_mode_and_leave_its_thread_count(threads):
    torch.set_num_threads(2)
    seen: list[tuple[bool, int]] = []

    def probe(c: torch.Tensor) -> torch.Tensor:
        seen.append((torch.is_grad_enabled(), torch.get_num_threads()))
        return c

    with torch.no_grad():
        map_chunks(probe, torch.zeros(4, 1), 2)
    map_chunks(probe, torch.zeros(4, 1), 2)
    assert seen == [(False, 1)] * 2 + [(True, 1)] * 2
    assert torch.get_num_threads() == 2


def test_an_error_in_a_chunk_is_raised():
    def fail(c: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("chunk failed")

    with pytest.raises(RuntimeError, match="chunk failed"):
        map_chunks(fail, torch.zeros(4, 1), 2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        map_chunks(fail, torch.zeros(4, 1), 0)


def test_worker_count_follows_the_callers_threads_on_the_cpu_only(threads):
    torch.set_num_threads(2)
    assert cpu_workers(torch.device("cpu"), 50) == 2
    assert cpu_workers(torch.device("cpu"), 1) == 1
    assert cpu_workers(torch.device("cuda"), 50) == 1
    torch.set_num_threads(1)
    assert cpu_workers(torch.device("cpu"), 50) == 1
