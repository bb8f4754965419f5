"""Shared fixtures: the development data in ../shared/data (skipped cleanly when absent); one
torch thread for the tests of small tensor ops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$ASR_SHARED_DATA`` or ``../shared/data`` next to the repository, if it exists."""
    env = os.environ.get("ASR_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests using it skip when it is absent (a user's fresh clone)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data (../shared/data or $ASR_SHARED_DATA) not present")
    return path


@pytest.fixture()
def one_thread():
    """One torch thread for the test, restored afterwards: small tensor ops (beam search, small
    LSTMs) only get slower with more threads on a busy machine. A test module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
