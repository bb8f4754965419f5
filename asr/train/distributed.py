"""Distributed set-up for ``torchrun`` (one process per GPU, or several gloo processes on CPU).

``torchrun --nproc_per_node=N`` (and multi-node ``--nnodes``/``--rdzv_endpoint``) sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed`
reads them, picks NCCL on CUDA and gloo on CPU, and returns a :class:`DistInfo`. Without those
variables it returns a single-process ``DistInfo`` and initialises nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asr.errors import AsrError


class DeviceError(AsrError):
    """The configured device cannot be used here (``device: cuda`` without CUDA)."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int  # global rank, 0..world_size-1
    local_rank: int  # rank on this node (selects the GPU)
    world_size: int  # number of processes in the job
    device: torch.device  # the device this process trains on

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Initialise the process group from torchrun's environment variables.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.

    Returns:
        this process's :class:`DistInfo`.
    Raises:
        DeviceError: an unknown device, or ``"cuda"`` without a usable GPU for this rank
            (never a silent fallback to the CPU).
    """
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"device: expected one of ['auto', 'cpu', 'cuda'], got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device: cuda, but torch sees no usable CUDA GPU here (torch.cuda.is_available() is "
            "False); set device: cpu or auto"
        )
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise DeviceError(
            f"device: cuda, but LOCAL_RANK {local_rank} has no GPU (this node has "
            f"{torch.cuda.device_count()})"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a list of numbers over all ranks (identity in a single process)."""
    if not info.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Gather one picklable object from every rank (lists of strings for WER, for example).

    This exchanges objects between our own processes only; nothing read from disk is unpickled.
    """
    if not info.distributed:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Destroy the process group if this module created one."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
