"""What every trainer (acoustic model, language model) shares at run time: seeding, capturing and
restoring random-generator states for exact resume, and the mixed-precision context."""

from __future__ import annotations

import contextlib
import random
from typing import Any, Literal

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python's random module."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_states() -> dict[str, Any]:
    """Every random generator a training step touches (torch, CUDA, NumPy, Python)."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(gathered: list[dict[str, Any]], rank: int) -> None:
    """Restore this rank's states from a list gathered over ranks (rank 0's if the saved job had
    fewer ranks)."""
    states = gathered[rank] if rank < len(gathered) else gathered[0]
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def autocast(
    amp: Literal["none", "bf16", "fp16"], device: torch.device
) -> contextlib.AbstractContextManager:
    """The autocast context for ``amp`` on ``device`` (a no-op for ``"none"``)."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
