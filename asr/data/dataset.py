"""Training data: a lazy speech dataset, padded batches, and a resumable DataLoader.

The dataset yields *waveforms* and token ids; features are computed by the front-end inside the
model, on the training device. Waveform augmentation (speed, reverb, noise) runs here, in the
DataLoader workers, with a random generator seeded by ``(seed, epoch, utterance index)``: an
utterance is augmented the same way whatever the number of workers, and a resumed run repeats
the augmentation of an uninterrupted one. SpecAugment runs on features in the model's forward
pass (:class:`asr.data.augment.SpecAugment`).

Example::

    utts = read_manifest("data/train.jsonl")
    dataset = SpeechDataset(utts, tokenizer, sample_rate=16000, augment=aug_cfg, seed=1)
    sampler = DynamicBucketSampler(dataset.durations, max_batch_seconds=300, seed=1,
                                   rank=rank, world_size=world_size)
    loader = make_dataloader(dataset, sampler, num_workers=4)
    loader.load_state_dict(checkpoint["loader"])          # when resuming
    for epoch in range(start_epoch, epochs):
        loader.set_epoch(epoch)
        for batch in loader:                              # Batch, on CPU (pinned on CUDA hosts)
            batch = batch.to(device, non_blocking=True)
            ...
            checkpoint["loader"] = loader.state_dict()    # exact: counts delivered batches
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from asr.data.augment import AugmentConfig, WaveformAugmenter
from asr.data.manifest import Utterance
from asr.data.sampler import DynamicBucketSampler
from asr.errors import AsrError
from asr.io.audio import load_audio


class DatasetError(AsrError):
    """An utterance that cannot be loaded or encoded; names the utterance and the file."""


class TextEncoder(Protocol):
    """What the dataset needs of a tokenizer (:class:`asr.text.tokenizer.Tokenizer` has it)."""

    def encode(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class Example:
    """One utterance as the dataset returns it (numpy, cheap to send from a worker)."""

    index: int  # position in the dataset's utterance list
    utt_id: str  # utterance id (manifest utt_id, else the file stem)
    waveform: np.ndarray  # (samples,) float32 at the dataset's sample rate, after augmentation
    tokens: np.ndarray  # (tokens,) int64 token ids of the transcript


@dataclass(frozen=True)
class Batch:
    """A padded batch, in the project's ``(batch, time)`` + lengths convention."""

    waveforms: torch.Tensor  # (batch, samples) float32, zero after each utterance's length
    lengths: torch.Tensor  # (batch,) int64 valid samples per utterance
    targets: torch.Tensor  # (batch, max_tokens) int64 token ids, padded with pad_id (blank, 0)
    target_lengths: torch.Tensor  # (batch,) int64 valid tokens per utterance
    utt_ids: tuple[str, ...]  # utterance ids, in batch order
    sample_rate: int  # Hz of the waveforms

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def audio_seconds(self) -> float:
        """Seconds of (unpadded) audio in the batch."""
        return float(self.lengths.sum()) / self.sample_rate

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Batch:
        """The batch with its tensors on ``device``."""
        return dataclasses.replace(
            self,
            waveforms=self.waveforms.to(device, non_blocking=non_blocking),
            lengths=self.lengths.to(device, non_blocking=non_blocking),
            targets=self.targets.to(device, non_blocking=non_blocking),
            target_lengths=self.target_lengths.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True): page-locked copies for fast GPU transfer."""
        return dataclasses.replace(
            self,
            waveforms=self.waveforms.pin_memory(),
            lengths=self.lengths.pin_memory(),
            targets=self.targets.pin_memory(),
            target_lengths=self.target_lengths.pin_memory(),
        )


def collate(examples: Sequence[Example], sample_rate: int, pad_id: int = 0) -> Batch:
    """Zero-pad waveforms and ``pad_id``-pad token ids into a :class:`Batch` (order kept)."""
    if not examples:
        raise ValueError("collate: empty batch")
    lengths = torch.tensor([len(e.waveform) for e in examples], dtype=torch.long)
    target_lengths = torch.tensor([len(e.tokens) for e in examples], dtype=torch.long)
    waveforms = torch.zeros(len(examples), int(lengths.max()), dtype=torch.float32)
    targets = torch.full((len(examples), int(target_lengths.max())), pad_id, dtype=torch.long)
    for row, example in enumerate(examples):
        waveforms[row, : len(example.waveform)] = torch.from_numpy(example.waveform)
        targets[row, : len(example.tokens)] = torch.from_numpy(example.tokens)
    return Batch(
        waveforms=waveforms,
        lengths=lengths,
        targets=targets,
        target_lengths=target_lengths,
        utt_ids=tuple(e.utt_id for e in examples),
        sample_rate=sample_rate,
    )


class SpeechDataset(Dataset):
    """Utterances from a manifest, read lazily, optionally augmented, with encoded transcripts.

    Args:
        utterances: manifest entries (:func:`asr.data.manifest.read_manifest`); the text is
            taken as already normalised and encoded as is.
        tokenizer: anything with ``encode(text) -> list[int]``.
        sample_rate: audio is resampled to this rate, Hz (default 16000).
        augment: waveform augmentation options (speed, noise, reverb); None: none.
        seed: base seed of the augmentation; utterance ``i`` in epoch ``e`` uses
            ``numpy.random.default_rng([seed, e, i])``.

    Indexing: ``dataset[i]`` (epoch taken from :attr:`epoch`) or ``dataset[(epoch, i)]`` (what
    :func:`make_dataloader` sends, so workers never need to be told the epoch).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        tokenizer: TextEncoder,
        sample_rate: int = 16000,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.utterances = list(utterances)
        self.tokenizer = tokenizer
        self.sample_rate = int(sample_rate)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        waveform_aug = augment is not None and augment.waveform_enabled
        self._augmenter = WaveformAugmenter(augment, sample_rate) if waveform_aug else None

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def durations(self) -> list[float]:
        """Manifest durations in seconds, for :class:`DynamicBucketSampler`."""
        return [u.duration for u in self.utterances]

    def utt_id(self, index: int) -> str:
        """The utterance's identity (:func:`asr.data.manifest.utterance_id`)."""
        return self.utterances[index].name

    def __getitem__(self, key: int | tuple[int, int]) -> Example:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        utt = self.utterances[index]
        where = f"utterance {self.utt_id(index)} (item {index})"
        try:
            samples, _ = load_audio(
                utt.audio_filepath,
                self.sample_rate,
                offset_s=utt.offset,
                duration_s=utt.duration if utt.duration > 0 else None,
            )
            if self._augmenter is not None:
                rng = np.random.default_rng([self.seed, epoch, index])
                samples = self._augmenter(samples, rng)
        except AsrError as err:
            raise DatasetError(f"{where}: {err}") from None
        try:
            tokens = np.asarray(self.tokenizer.encode(utt.text), dtype=np.int64)
        except (AsrError, KeyError, ValueError) as err:
            raise DatasetError(f"{where}: cannot encode text {utt.text!r}: {err}") from None
        return Example(index, self.utt_id(index), np.ascontiguousarray(samples), tokens)


class _EpochTagged:
    """Batch sampler adapter: yields ``[(epoch, index), ...]`` so workers know the epoch."""

    def __init__(self, sampler: DynamicBucketSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.sampler.epoch
        for batch in self.sampler:
            yield [(epoch, i) for i in batch]

    def __len__(self) -> int:
        return len(self.sampler)


class _Collate:
    """Picklable collate function bound to a sample rate."""

    def __init__(self, sample_rate: int, pad_id: int) -> None:
        self.sample_rate = sample_rate
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[Example]) -> Batch:
        return collate(examples, self.sample_rate, self.pad_id)


def _worker_init(worker_id: int) -> None:
    """One thread per worker; numpy and random seeded from the worker's torch seed."""
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _one_line(err: AsrError) -> str:
    """The original message of an error re-raised from a DataLoader worker (last traceback
    line, without the exception's qualified name)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(err)
    last = lines[-1]
    name = f"{type(err).__module__}.{type(err).__qualname__}: "
    return last[len(name) :] if last.startswith(name) else last


class SpeechDataLoader(DataLoader):
    """A DataLoader over a :class:`DynamicBucketSampler` that counts the batches it delivers, so
    :meth:`state_dict` is exact even though workers prefetch ahead. Build it with
    :func:`make_dataloader`."""

    def __init__(self, dataset: SpeechDataset, sampler: DynamicBucketSampler, **kwargs: Any):
        super().__init__(dataset, batch_sampler=_EpochTagged(sampler), **kwargs)
        self.bucket_sampler = sampler
        self._delivered = sampler.state_dict()["batches_done"]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (a no-op when it is the one a resumed state points into)."""
        if epoch != self.bucket_sampler.epoch:
            self._delivered = 0
        self.bucket_sampler.set_epoch(epoch)
        self.dataset.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """Sampler position after the batches this loader has handed out."""
        return self.bucket_sampler.state_dict(batches_done=self._delivered)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields the remaining batches of the saved epoch."""
        self.bucket_sampler.load_state_dict(state)
        self.dataset.epoch = self.bucket_sampler.epoch
        self._delivered = self.bucket_sampler.state_dict()["batches_done"]

    def __iter__(self) -> Iterator[Batch]:
        self._delivered = self.num_batches_per_epoch() - len(self.bucket_sampler)
        try:
            for batch in super().__iter__():
                self._delivered += 1
                yield batch
        except AsrError as err:
            raise type(err)(_one_line(err)) from None

    def num_batches_per_epoch(self, epoch: int | None = None) -> int:
        """Batches per epoch on this rank (the full epoch, not what remains)."""
        return self.bucket_sampler.num_batches(epoch)


def make_dataloader(
    dataset: SpeechDataset,
    sampler: DynamicBucketSampler,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    prefetch_factor: int = 2,
    persistent_workers: bool = True,
    pad_id: int = 0,
) -> SpeechDataLoader:
    """A resumable loader of :class:`Batch` es.

    Args:
        dataset: the utterances.
        sampler: batches of indices into ``dataset`` (sharded per rank).
        num_workers: loader processes (default 0: load in the training process).
        pin_memory: page-locked batches; None (default) = when CUDA is available.
        prefetch_factor: batches each worker loads ahead (default 2; ignored with 0 workers).
        persistent_workers: keep workers alive between epochs (default True; with workers only).
        pad_id: target padding id (default 0, the CTC blank, which CTC loss ignores past lengths).
    """
    if len(sampler.durations) != len(dataset):
        raise DatasetError(
            f"sampler covers {len(sampler.durations)} utterances, dataset has {len(dataset)}"
        )
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = dict(
            prefetch_factor=prefetch_factor,
            persistent_workers=persistent_workers,
            worker_init_fn=_worker_init,
        )
    loader = SpeechDataLoader(
        dataset,
        sampler,
        num_workers=num_workers,
        collate_fn=_Collate(dataset.sample_rate, pad_id),
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        generator=torch.Generator().manual_seed(dataset.seed),
        **extra,
    )
    dataset.epoch = sampler.epoch
    return loader
