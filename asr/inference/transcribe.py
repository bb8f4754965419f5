"""Transcribe audio files of any length: VAD chunking, batched decoding, word timings.

Pipeline for each input (a file, a folder searched recursively, or the lines of a manifest):

1. plan: a recording longer than ``max_chunk_s`` is scanned by the streaming VAD
   (:mod:`asr.inference.vad`) and cut at pauses into chunks of at most ``max_chunk_s`` seconds;
   chunks in
   which no frame rises above the noise floor are skipped.
2. decode: chunks (of this and the following inputs) are batched, at most ``batch_seconds``
   padded seconds at a time (as ``asr decode`` batches), through the model by
   :func:`asr.inference.forward.infer_batch` and decoded by any decoder of
   :func:`asr.inference.decoding.make_decoder` (greedy, beam, beam + LM, kenlm).
3. join: each token's frames give its time (chunk start + frame x ``model.frame_shift_s``) and
   the tokens are grouped into words with confidences (:mod:`asr.inference.word_timing`).

Memory holds one batch of chunks and the VAD's per-frame energies (1.4 MB per hour of audio),
never a whole long recording (call :func:`asr.inference.malloc.bound_malloc_heap` once, as ``asr
transcribe`` does, so that glibc's heap does not fragment over hours of variable-size chunks).
A file that cannot be read or decoded becomes a :class:`Transcript` with ``error`` set; the
other files go on.

Example::

    model = asr.load_model("exp/model")
    decoder = model.decoder(model.decode_spec(decoder="greedy"))
    items, bad = collect_inputs(["talk.flac", "corpus/"])   # asr.data.inputs
    for t in transcribe_items(model.network, model.tokenizer, decoder, items):
        print(t.item.path, t.text, t.words[:3])
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from asr.data.inputs import AudioItem
from asr.errors import AsrError
from asr.inference.forward import infer_batch
from asr.inference.vad import Segment, VadConfig, detect_speech, split_points
from asr.inference.word_timing import Word, token_spans, words_from_spans
from asr.io.audio import audio_info

if TYPE_CHECKING:
    from asr.decode.base import Decoder
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import Tokenizer


class TranscribeError(AsrError):
    """Transcription cannot start: no model, bad inputs or options."""


MIN_CHUNK_S = 1.0  # shorter chunks hold no word (0.05 s gave empty output with rc 0)


@dataclasses.dataclass(frozen=True)
class TranscribeConfig:
    """How recordings are chunked and batched."""

    max_chunk_s: float = 30.0  # longest chunk given to the model, seconds
    batch_seconds: float = 240.0  # padded audio seconds per forward pass (8 chunks of 30 s)
    vad: VadConfig = dataclasses.field(default_factory=VadConfig)  # pause detection

    def __post_init__(self) -> None:
        if not self.max_chunk_s >= MIN_CHUNK_S:
            raise ValueError(f"max_chunk_s must be >= {MIN_CHUNK_S} s, got {self.max_chunk_s}")
        if not self.batch_seconds > 0:
            raise ValueError(f"batch_seconds must be > 0, got {self.batch_seconds}")


@dataclasses.dataclass(frozen=True)
class ChunkText:
    """What one chunk decoded to."""

    start: float  # chunk start, seconds from the start of the item
    end: float  # chunk end, seconds
    text: str  # the chunk's transcript


@dataclasses.dataclass(frozen=True)
class Transcript:
    """The result for one :class:`AudioItem`."""

    item: AudioItem  # what was transcribed
    duration_s: float  # its length in seconds (0 when it could not be read)
    text: str  # the chunk transcripts joined by spaces
    words: tuple[Word, ...] = ()  # per-word timings and confidences
    chunks: tuple[ChunkText, ...] = ()  # the chunks that were decoded
    error: str | None = None  # why it failed, else None


def item_duration(item: AudioItem) -> float:
    """Length of ``item`` in seconds (reads the file header; AudioError when unreadable)."""
    total = audio_info(item.source).duration_s - item.offset_s
    if total <= 0:
        raise TranscribeError(f"{item.path}: offset {item.offset_s} s is past the end of the audio")
    return total if item.duration_s is None else min(item.duration_s, total)


def plan_chunks(item: AudioItem, cfg: TranscribeConfig) -> tuple[float, list[Segment]]:
    """(duration, chunks) of ``item``: one chunk when it is short, else VAD-cut chunks of at
    most ``cfg.max_chunk_s`` seconds, silent ones left out. Times relative to the item."""
    duration = item_duration(item)
    if duration <= cfg.max_chunk_s:
        return duration, [Segment(0.0, duration)]
    vad = detect_speech(item.source, cfg.vad, item.offset_s, duration)
    cuts = split_points(vad, cfg.max_chunk_s)
    chunks = [
        Segment(a, b)
        for a, b in itertools.pairwise(cuts)
        if b > a and vad.loud(a, b, cfg.vad.threshold_db)
    ]
    return vad.duration_s, chunks


@dataclasses.dataclass
class _Pending:
    """An item whose chunks are being decoded."""

    item: AudioItem
    duration: float
    chunks: list[Segment]
    texts: dict[int, ChunkText] = dataclasses.field(default_factory=dict)
    words: dict[int, list[Word]] = dataclasses.field(default_factory=dict)
    error: str | None = None
    counted: float = 0.0  # seconds already shown on the progress bar

    def done(self) -> bool:
        return self.error is not None or len(self.texts) == len(self.chunks)

    def result(self) -> Transcript:
        if self.error is not None:
            return Transcript(self.item, self.duration, "", error=self.error)
        order = range(len(self.chunks))
        chunks = tuple(self.texts[i] for i in order)
        text = " ".join(c.text for c in chunks if c.text)
        words = tuple(w for i in order for w in self.words[i])
        return Transcript(self.item, self.duration, text, words, chunks)


def _plan_all(
    items: Sequence[AudioItem], cfg: TranscribeConfig
) -> Iterator[tuple[_Pending, int, Segment]]:
    """Every (pending item, chunk index, chunk), planning one item at a time; items that
    fail to plan or have no chunks are yielded with chunk index -1."""
    for item in items:
        try:
            duration, chunks = plan_chunks(item, cfg)
            pending = _Pending(item, duration, chunks)
        except AsrError as err:
            pending = _Pending(item, 0.0, [], error=str(err))
        if pending.done():
            yield pending, -1, Segment(0.0, 0.0)
        for index, chunk in enumerate(pending.chunks):
            yield pending, index, chunk


def _chunk_item(item: AudioItem, chunk: Segment) -> AudioItem:
    """The segment of ``item`` that ``chunk`` (times relative to the item) covers."""
    start = item.offset_s + chunk.start
    return AudioItem(item.path, start, chunk.end - chunk.start, audio=item.audio)


def _decode_jobs(
    jobs: list[tuple[_Pending, int, Segment]],
    model: CTCModel,
    tokenizer: Tokenizer,
    decoder: Decoder,
) -> None:
    """Read and decode a batch of chunks, storing the results in their pending items."""
    keyed = [
        (key, _chunk_item(pending.item, chunk))
        for key, (pending, index, chunk) in enumerate(jobs)
        if index >= 0 and pending.error is None
    ]
    if not keyed:
        return
    batch = infer_batch(model, keyed)
    for key, error in batch.failures:
        jobs[key][0].error = error
    if not batch.keys:
        return
    with torch.inference_mode():
        hyps = decoder.decode(batch.log_probs, batch.lengths)
    for row, (key, hyp) in enumerate(zip(batch.keys, hyps)):
        pending, index, chunk = jobs[key]
        pending.texts[index] = ChunkText(
            round(chunk.start, 3), round(chunk.end, 3), " ".join((hyp.text or "").split())
        )
        spans = None
        if hyp.frames is not None:
            spans = token_spans(hyp.token_ids, hyp.frames, batch.utterance(row))
        pending.words[index] = (
            words_from_spans(spans, tokenizer, model.frame_shift_s, chunk.start) if spans else []
        )


def transcribe_items(
    model: CTCModel,
    tokenizer: Tokenizer,
    decoder: Decoder,
    items: Sequence[AudioItem],
    cfg: TranscribeConfig | None = None,
    progress: bool = False,
) -> Iterator[Transcript]:
    """Transcribe ``items`` in order, batching chunks across items.

    Args:
        model: acoustic model (set to eval mode); audio is read at its front-end rate.
        tokenizer: its tokenizer (for word grouping).
        decoder: any :class:`asr.decode.base.Decoder`.
        items: what to transcribe (:func:`asr.data.inputs.collect_inputs`).
        cfg: chunking and batching options (default :class:`TranscribeConfig`).
        progress: show a progress bar in audio seconds on stderr.
    Yields:
        one :class:`Transcript` per item, in order; failures carry ``error``.
    """
    cfg = cfg or TranscribeConfig()
    model.eval()
    bar = _progress_bar(items, progress)
    order: list[_Pending] = []
    batch: list[tuple[_Pending, int, Segment]] = []

    def finished() -> Iterator[Transcript]:
        while order and order[0].done():
            pending = order.pop(0)
            bar.update(max(0.0, round(pending.duration - pending.counted, 2)))
            yield pending.result()

    for job in _plan_all(items, cfg):
        if batch and _padded_seconds([*batch, job]) > cfg.batch_seconds:
            _decode_jobs(batch, model, tokenizer, decoder)
            _advance(bar, batch)
            batch = []
            yield from finished()
        if not order or order[-1] is not job[0]:
            order.append(job[0])
        batch.append(job)
    _decode_jobs(batch, model, tokenizer, decoder)
    _advance(bar, batch)
    yield from finished()
    bar.update(max(0.0, bar.total - bar.n))  # done: VAD and file-header lengths differ slightly
    bar.close()


def _padded_seconds(jobs: Sequence[tuple[_Pending, int, Segment]]) -> float:
    """Audio seconds of a batch of chunks padded to its longest (what the model is given)."""
    return len(jobs) * max(chunk.end - chunk.start for _, _, chunk in jobs)


def _advance(bar: tqdm, jobs: Sequence[tuple[_Pending, int, Segment]]) -> None:
    """Count the decoded chunks' seconds on the bar (and on their items)."""
    seconds = 0.0
    for pending, index, chunk in jobs:
        if index >= 0 and index in pending.texts:
            pending.counted += chunk.end - chunk.start
            seconds += chunk.end - chunk.start
    bar.update(round(seconds, 2))


def _progress_bar(items: Sequence[AudioItem], enabled: bool) -> tqdm:
    """A bar counting audio seconds (totals read from the file headers when enabled)."""
    total = 0.0
    for item in items if enabled else ():
        try:
            total += item_duration(item)
        except AsrError:
            continue
    return tqdm(
        total=round(total, 2),
        desc="transcribe",
        disable=not enabled,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]",
    )
