"""Shared pytest fixtures."""

from pathlib import Path

import pytest
import torch

SHARED_GRAPHS = Path(__file__).resolve().parents[2] / "shared" / "data" / "graphs"


@pytest.fixture
def shared_graphs() -> Path:
    """The real sensor graphs of shared/data/graphs (read-only); skips when that folder is absent."""
    if not SHARED_GRAPHS.is_dir():
        pytest.skip(f"real sensor graphs not available: {SHARED_GRAPHS} does not exist")
    return SHARED_GRAPHS


@pytest.fixture(autouse=True)
def one_thread():
    """Each test on one CPU thread: the tensors here are tiny, and on a loaded machine waiting for
    a descheduled OpenMP thread at every op makes a short training run tens of times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
