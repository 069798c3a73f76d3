"""Shared pytest fixtures."""

from pathlib import Path

import pytest

SHARED_GRAPHS = Path(__file__).resolve().parents[2] / "shared" / "data" / "graphs"


@pytest.fixture
def shared_graphs() -> Path:
    """The real sensor graphs of shared/data/graphs (read-only); skips when that folder is absent."""
    if not SHARED_GRAPHS.is_dir():
        pytest.skip(f"real sensor graphs not available: {SHARED_GRAPHS} does not exist")
    return SHARED_GRAPHS
