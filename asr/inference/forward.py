"""The one inference path: batches of audio items -> model forward -> per-utterance log-probs.

Manifest decoding (:mod:`asr.inference.manifest`), file transcription
(:mod:`asr.inference.transcribe`) and
decoder tuning (:mod:`asr.inference.tune`) all get their CTC log-probabilities here. The caller
chooses the batches (:func:`duration_batches` for manifests; transcription batches chunks as it
plans them) as lists of ``(key, AudioItem)``; each batch comes back as one :class:`EmissionBatch`
whose rows carry the caller's keys. An item whose audio cannot be read is a failure of its
batch (with the reason), never an exception, and does not stop the others. The model is
loaded once by the caller (:func:`asr.api.load_model`: torch or onnxruntime) and passed in.

Example::

    model = asr.load_model("exp/model", device="auto")
    items = manifest_items("data/test.jsonl")
    batches = [[(i, items[i]) for i in b] for b in duration_batches(durations, 300.0)]
    for batch in iter_emissions(model.network, batches):
        for row, key in enumerate(batch.keys):
            log_probs = batch.utterance(row)  # (frames, vocab) float32 on the CPU
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from asr.errors import AsrError
from asr.io.audio import load_audio

if TYPE_CHECKING:
    from asr.data.inputs import AudioItem
    from asr.models.ctc import CTCModel

Keyed = tuple[int, "AudioItem"]  # the caller's key and what to read


class InferenceError(AsrError):
    """Inference cannot run with these options (no CUDA device, bad batch size, a backend that
    cannot run this model folder)."""


def resolve_device(name: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other names are checked.

    Raises:
        InferenceError: ``cuda`` asked for where torch sees no CUDA device.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InferenceError("--device cuda: no CUDA device available (use --device cpu)")
    return name


# Environment variables that set torch's CPU threads: when one is set, torch's count is kept.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# torch's own thread count (one per physical core), read before anything here changes it.
TORCH_THREADS = torch.get_num_threads()


def default_threads(
    cores: int | None = None, cpus: int | None = None, load: float | None = None
) -> int:
    """The CPU threads to use when none are asked for (``--threads 0``): torch's default (one
    per physical core) less the CPUs that other work keeps busy, at least 1.

    torch's threads wait for each other at every operation, so one thread that shares its core
    with another busy process holds all of them back: on 2 cores with one busy training, 2
    threads decoded a 3-minute file several times slower than 1 thread (README, Transcribe).

    Args:
        cores: torch's default thread count (default :data:`TORCH_THREADS`).
        cpus: the CPUs this process may run on (default: its affinity mask).
        load: the busy CPUs (default: the 1-minute load average, :func:`os.getloadavg`).
    Returns:
        ``cores`` when ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set (the user's choice) or
        the load cannot be read; else ``cpus - load`` rounded, from 1 to ``cores``.
    """
    cores = cores or TORCH_THREADS
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return cores
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on this platform
            return cores
    return max(1, min(cores, int(cpus - load + 0.5)))


def duration_batches(
    durations: Sequence[float], batch_seconds: float, max_batch_size: int | None = None
) -> list[list[int]]:
    """Indices grouped longest first so that ``len(batch) * longest <= batch_seconds``.

    Args:
        durations: seconds per utterance.
        batch_seconds: padded seconds per batch (> 0); a longer utterance is alone in its batch.
        max_batch_size: at most this many utterances per batch (None: no cap).
    Returns:
        the batches, each a list of indices into ``durations``; every index appears once.
    """
    if batch_seconds <= 0:
        raise InferenceError(f"batch seconds must be > 0, got {batch_seconds}")
    order = sorted(range(len(durations)), key=lambda i: (-durations[i], i))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        longest = durations[batch[0]] if batch else 0.0
        full = batch is not None and max_batch_size is not None and len(batch) >= max_batch_size
        if batch is None or full or (len(batch) + 1) * longest > batch_seconds:
            batches.append([i])
        else:
            batch.append(i)
    return batches


def read_item(item: AudioItem, sample_rate: int) -> np.ndarray:
    """``(samples,)`` float32 mono audio of ``item`` at ``sample_rate``.

    Raises:
        AsrError: the file cannot be read, or the segment has no samples.
    """
    samples, _ = load_audio(item.source, sample_rate, item.offset_s, item.duration_s)
    if len(samples) == 0:
        raise InferenceError(f"{item.path}: no samples")
    return samples


def pad_waves(waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """``(batch, samples)`` zero-padded float32 waveforms and ``(batch,)`` lengths."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = torch.from_numpy(wave)
    return batch, lengths


@torch.inference_mode()
def forward(model: CTCModel, waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """One padded batch through the model.

    Args:
        model: the acoustic model (eval mode).
        waves: ``(samples,)`` float32 waveforms at the model's rate (at least one).
    Returns:
        ``log_probs (batch, frames, vocab)`` on the model's device and ``lengths (batch,)``.
    """
    batch, lengths = pad_waves(waves)
    return model(batch.to(model.device), lengths.to(model.device))


@dataclasses.dataclass(frozen=True)
class EmissionBatch:
    """The model outputs of one batch of items."""

    keys: tuple[int, ...]  # the caller's key of each row
    log_probs: Tensor  # (rows, frames, vocab) on the model's device; (0, 0, 0) when no row
    lengths: Tensor  # (rows,) valid frames of each row
    failures: tuple[tuple[int, str], ...]  # (key, why its audio could not be read)
    frame_shift_s: float  # seconds per output frame

    def utterance(self, row: int) -> Tensor:
        """``(frames, vocab)`` float32 CPU log-probs of row ``row``, valid frames only."""
        return self.log_probs[row, : int(self.lengths[row])].float().cpu()


@dataclasses.dataclass(frozen=True)
class _Read:
    key: int  # the caller's key
    samples: np.ndarray | None  # None when the audio could not be read
    error: str | None  # why


class _Reader(torch.utils.data.Dataset):
    """Reads keyed items at one rate; failures become :class:`_Read` s with an error."""

    def __init__(self, items: Sequence[Keyed], sample_rate: int) -> None:
        self.items = items
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Read:
        key, item = self.items[index]
        try:
            return _Read(key, read_item(item, self.sample_rate), None)
        except AsrError as err:
            return _Read(key, None, str(err))


def _emit(model: CTCModel, reads: Sequence[_Read]) -> EmissionBatch:
    """Run the readable items of one batch through the model."""
    good = [r for r in reads if r.error is None]
    failures = tuple((r.key, r.error) for r in reads if r.error is not None)
    if good:
        log_probs, lengths = forward(model, [r.samples for r in good])  # type: ignore[misc]
    else:
        log_probs, lengths = torch.empty(0, 0, 0), torch.empty(0, dtype=torch.long)
    keys = tuple(r.key for r in good)
    return EmissionBatch(keys, log_probs, lengths, failures, model.frame_shift_s)  # type: ignore[arg-type]


def infer_batch(model: CTCModel, batch: Sequence[Keyed]) -> EmissionBatch:
    """Read one batch of ``(key, item)`` in this process and run it through ``model``."""
    model.eval()
    reader = _Reader(batch, model.cfg.frontend.sample_rate_hz)
    return _emit(model, [reader[i] for i in range(len(batch))])


def iter_emissions(
    model: CTCModel, batches: Iterable[Sequence[Keyed]], num_workers: int = 0
) -> Iterator[EmissionBatch]:
    """Every batch through ``model``, in order.

    Args:
        model: the acoustic model (put in eval mode); audio is read at its front-end's rate.
        batches: lists of ``(key, AudioItem)``; read lazily when ``num_workers`` is 0.
        num_workers: processes reading audio ahead of the model (0: in this process).
    Yields:
        one :class:`EmissionBatch` per batch.
    """
    model.eval()
    if num_workers == 0:
        for batch in batches:
            yield infer_batch(model, batch)
        return
    batches = [list(b) for b in batches]
    flat = [kv for b in batches for kv in b]
    starts = np.cumsum([0] + [len(b) for b in batches]).tolist()
    loader = torch.utils.data.DataLoader(
        _Reader(flat, model.cfg.frontend.sample_rate_hz),
        batch_sampler=[list(range(a, b)) for a, b in itertools.pairwise(starts)],
        collate_fn=list,
        num_workers=num_workers,
    )
    for reads in loader:
        yield _emit(model, reads)
