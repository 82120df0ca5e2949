"""Shared fixtures: the real data sets beside the checkout (skip with a reason when absent), seeds, temp runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GANFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test saying what is missing."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (see ../shared/data/SOURCES.md)")
    return p


@pytest.fixture
def shared_data():
    return shared_path


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine they cost a lot; a module
    opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
