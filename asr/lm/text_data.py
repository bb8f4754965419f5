"""Streaming LM text: sentences from files of any size, batched by length, resumable, sharded.

Which novels an LM may train on (the synthetic corpus's split) is the corpus's business:
:mod:`asr.corpora.novel_split`.

Nothing here reads a whole file: sentences stream from plain or gzipped files, either novels
(hard-wrapped paragraphs split into sentences by :func:`asr.text.normalize.iter_novel_sentences`)
or one sentence per line (the LibriSpeech LM corpus). Each sentence is normalised like the acoustic
model's transcripts (:func:`asr.text.normalize.normalize_text`) and tokenised; the LM sees it as
``<s> t1 .. tn </s>`` with its state reset, exactly what the decoder asks of it.

:class:`LMBatchStream` reads ``buffer_sentences`` sentences at a time, sorts them by length, cuts
them into padded batches of at most ``max_batch_tokens`` tokens and yields them in a seeded
random order; batch ``i`` of a buffer goes to rank ``i % world_size``. Its position (epoch,
buffers done, batches taken from the current buffer) is its state, so a resumed run skips the
consumed buffers without tokenising them and continues with the very next batch.
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from asr.errors import AsrError
from asr.lm.lstm import sentence_batch
from asr.text.normalize import iter_novel_sentences, normalize_text
from asr.text.tokenizer import Tokenizer, TokenizerError


class TextDataError(AsrError):
    """LM text files are missing or unusable."""


@dataclasses.dataclass(frozen=True)
class LMDataConfig:
    """How LM training text is read, split and batched."""

    text_format: Literal["novel", "lines"] = "lines"  # hard-wrapped novels or 1 sentence/line
    normalize: bool = True  # apply asr.text.normalize.normalize_text (False: normalised already)
    valid_per_mille: int = 5  # without valid files: sentences whose hash % 1000 < this are valid
    max_valid_sentences: int = 2000  # validation sentences used (the first ones read)
    max_sentence_tokens: int = 600  # longer training sentences are skipped (counted)
    max_batch_tokens: int = 8192  # padded tokens per batch (sentences x (longest + 1))
    max_batch_size: int = 256  # sentences per batch at most
    buffer_sentences: int = 20000  # sentences sorted by length and batched together
    shuffle_files: bool = True  # visit the files in a seeded random order each epoch

    def __post_init__(self) -> None:
        if not 0 <= self.valid_per_mille < 1000:
            raise ValueError(f"valid_per_mille must lie in [0, 1000), got {self.valid_per_mille}")
        if min(self.max_sentence_tokens, self.max_batch_size, self.buffer_sentences) < 1:
            raise ValueError("max_sentence_tokens, max_batch_size, buffer_sentences must be >= 1")
        if self.max_batch_tokens < self.max_sentence_tokens + 1:
            raise ValueError("max_batch_tokens must be > max_sentence_tokens")


def open_text(path: str | Path):
    """Open a plain or gzipped UTF-8 text file for streaming."""
    path = Path(path)
    if not path.is_file():
        raise TextDataError(f"{path}: no such text file")
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_raw_sentences(files: Sequence[str | Path], text_format: str) -> Iterator[str]:
    """Un-normalised sentences of ``files`` in order, one at a time."""
    for path in files:
        if text_format == "novel":
            yield from iter_novel_sentences(path)
            continue
        with open_text(path) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line


def is_valid_sentence(raw: str, valid_per_mille: int) -> bool:
    """The deterministic train/valid split: a hash of the sentence's text."""
    return zlib.crc32(raw.encode("utf-8")) % 1000 < valid_per_mille


def encode_sentence(raw: str, tokenizer: Tokenizer, normalize: bool = True) -> list[int]:
    """Token ids of one sentence (empty when nothing is left or the tokenizer refuses it)."""
    text = normalize_text(raw) if normalize else " ".join(raw.split())
    if not text:
        return []
    try:
        return tokenizer.encode(text)
    except TokenizerError:
        return []


def read_valid_sentences(
    tokenizer: Tokenizer,
    cfg: LMDataConfig,
    valid_files: Sequence[str | Path] = (),
    train_files: Sequence[str | Path] = (),
) -> list[list[int]]:
    """Up to ``max_valid_sentences`` tokenised validation sentences: all of ``valid_files``, or
    the hash-selected share of ``train_files`` when there are none."""
    files = valid_files or train_files
    out: list[list[int]] = []
    for raw in iter_raw_sentences(files, cfg.text_format):
        if not valid_files and not is_valid_sentence(raw, cfg.valid_per_mille):
            continue
        ids = encode_sentence(raw, tokenizer, cfg.normalize)
        if ids:
            out.append(ids)
            if len(out) >= cfg.max_valid_sentences:
                break
    return out


@dataclasses.dataclass(frozen=True)
class LMBatch:
    """Teacher-forcing tensors of a batch of sentences (see :func:`asr.lm.lstm.sentence_batch`)."""

    inputs: torch.Tensor  # (batch, time) <s> t1 .. tn + padding
    targets: torch.Tensor  # (batch, time) t1 .. tn </s> + padding
    mask: torch.Tensor  # (batch, time) 1.0 on real targets
    num_tokens: int  # real targets (tokens + one </s> per sentence)

    def to(self, device: torch.device) -> LMBatch:
        return LMBatch(
            self.inputs.to(device), self.targets.to(device), self.mask.to(device), self.num_tokens
        )


def make_batches(
    sentences: list[list[int]], max_batch_tokens: int, max_batch_size: int
) -> list[list[list[int]]]:
    """Sort by length and cut greedily so that ``size x (longest + 1) <= max_batch_tokens``."""
    ordered = sorted(sentences, key=len)
    batches: list[list[list[int]]] = []
    current: list[list[int]] = []
    for sentence in ordered:
        size = len(current) + 1
        if current and (size > max_batch_size or size * (len(sentence) + 1) > max_batch_tokens):
            batches.append(current)
            current = []
        current.append(sentence)
    if current:
        batches.append(current)
    return batches


class LMBatchStream:
    """Resumable, sharded stream of :class:`LMBatch` over training files (module docstring).

    Args:
        files: training text files (plain or .gz).
        tokenizer: the acoustic model's tokenizer.
        cfg: reading and batching options.
        seed: seeds the file order and batch order (per epoch and buffer).
        rank, world_size: this process's shard.
        exclude_valid: skip the hash-selected validation sentences (when there are no valid
            files).
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        tokenizer: Tokenizer,
        cfg: LMDataConfig,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        exclude_valid: bool = True,
    ) -> None:
        if not files:
            raise TextDataError("no LM training text files given")
        for path in files:
            if not Path(path).is_file():
                raise TextDataError(f"{path}: no such text file")
        self.files = [Path(p) for p in files]
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.exclude_valid = exclude_valid and cfg.valid_per_mille > 0
        self.epoch, self.buffer, self.batch = 0, 0, 0
        self.skipped_long = 0

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning (a no-op when already positioned in it)."""
        if epoch != self.epoch:
            self.epoch, self.buffer, self.batch = epoch, 0, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "buffer": self.buffer, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.buffer, self.batch = (int(state[k]) for k in ("epoch", "buffer", "batch"))

    def _file_order(self) -> list[Path]:
        if not self.cfg.shuffle_files:
            return list(self.files)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.files))
        return [self.files[i] for i in order]

    def _raw_buffers(self) -> Iterator[list[str]]:
        buffer: list[str] = []
        for raw in iter_raw_sentences(self._file_order(), self.cfg.text_format):
            if self.exclude_valid and is_valid_sentence(raw, self.cfg.valid_per_mille):
                continue
            buffer.append(raw)
            if len(buffer) >= self.cfg.buffer_sentences:
                yield buffer
                buffer = []
        if buffer:
            yield buffer

    def _shard(self, raw: list[str], index: int) -> list[list[list[int]]]:
        """Batches of buffer ``index`` that belong to this rank, in their seeded order."""
        sentences = []
        for text in raw:
            ids = encode_sentence(text, self.tokenizer, self.cfg.normalize)
            if len(ids) > self.cfg.max_sentence_tokens:
                self.skipped_long += 1
            elif ids:
                sentences.append(ids)
        batches = make_batches(sentences, self.cfg.max_batch_tokens, self.cfg.max_batch_size)
        order = np.random.default_rng([self.seed, self.epoch, index]).permutation(len(batches))
        usable = len(batches) - len(batches) % self.world_size  # equal count on every rank
        return [batches[i] for i in order[:usable]][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[LMBatch]:
        """Batches from the current position to the end of the epoch."""
        for index, raw in enumerate(self._raw_buffers()):
            if index < self.buffer:
                continue
            batches = self._shard(raw, index)
            while self.batch < len(batches):
                sentences = batches[self.batch]
                self.batch += 1
                inputs, targets, mask = sentence_batch(sentences)
                yield LMBatch(inputs, targets, mask, sum(len(s) + 1 for s in sentences))
            self.buffer, self.batch = index + 1, 0
