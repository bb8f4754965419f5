"""Transcribe audio files of any length: VAD chunking, batched decoding, word timings.

Pipeline for each input (a file, a folder searched recursively, or the lines of a manifest):

1. plan: a recording longer than ``max_chunk_s`` is scanned by the streaming VAD
   (:mod:`asr.vad`) and cut at pauses into chunks of at most ``max_chunk_s`` seconds; chunks in
   which no frame rises above the noise floor are skipped.
2. decode: chunks (of this and the following inputs) are read one by one with
   :func:`asr.audio.load_audio` at the model's rate, batched ``batch_size`` at a time through
   the model and any decoder of :func:`asr.decode.run.make_decoder` (greedy, beam, beam + LM).
3. join: each token's frames give its time (chunk start + frame x ``model.frame_shift_s``), the
   tokens are grouped into words (at the space token or a ``▁`` piece), and each word gets the
   mean posterior of its tokens over their frames as its confidence.

Memory holds one batch of chunks and the VAD's per-frame energies (1.4 MB per hour of audio),
never a whole long recording (call :func:`bound_malloc_heap` once, as ``asr transcribe`` does,
so that glibc's heap does not fragment over hours of variable-size chunks). A file that cannot
be read or decoded becomes a :class:`Transcript` with ``error`` set; the other files go on.

Example::

    model, tokenizer = load_model("exp/model")
    decoder = make_decoder("greedy", tokenizer)
    items, bad = collect_inputs(["talk.flac", "corpus/"])
    for t in transcribe_items(model, tokenizer, decoder, items):
        print(t.item.path, t.text, t.words[:3])
"""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import torch
from torch import Tensor
from tqdm import tqdm

from asr.audio import audio_info, load_audio
from asr.errors import AsrError
from asr.vad import Segment, VadConfig, detect_speech, split_points

if TYPE_CHECKING:
    from asr.decode.run import Decoder, Hypothesis
    from asr.models.ctc import CTCModel
    from asr.tokenizer import Tokenizer

# Where the bundled default model lives (shipped with the package when available).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained" / "default"
# In a model folder: the recommended beam search settings and the LSTM LM they were tuned with.
BUNDLED_DECODE_CONFIG = "decode.yaml"
BUNDLED_LM_DIR = "lm"
# File suffixes searched for in folders (libsndfile's formats; RAW needs parameters: skipped).
AUDIO_SUFFIXES = frozenset(
    {f".{name.lower()}" for name in sf.available_formats() if name != "RAW"}
    | {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".sph"}
)
MANIFEST_SUFFIXES = frozenset({".jsonl", ".json"})
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


class TranscribeError(AsrError):
    """Transcription cannot start: no model, bad inputs or options."""


@dataclasses.dataclass(frozen=True)
class TranscribeConfig:
    """How recordings are chunked and batched."""

    max_chunk_s: float = 30.0  # longest chunk given to the model, seconds
    batch_size: int = 8  # chunks per forward pass
    vad: VadConfig = dataclasses.field(default_factory=VadConfig)  # pause detection

    def __post_init__(self) -> None:
        if not self.max_chunk_s > 0:
            raise ValueError(f"max_chunk_s must be > 0, got {self.max_chunk_s}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class AudioItem:
    """One thing to transcribe: a file, or a segment of it (from a manifest)."""

    path: str  # audio file
    offset_s: float = 0.0  # start of the segment in the file, seconds
    duration_s: float | None = None  # length of the segment; None: to the end of the file
    utt_id: str | None = None  # id from a manifest (else derived from the file name)
    text: str | None = None  # reference transcript from a manifest

    @property
    def name(self) -> str:
        """``utt_id``, else the file name without suffix."""
        return self.utt_id if self.utt_id is not None else Path(self.path).stem


@dataclasses.dataclass(frozen=True)
class Word:
    """A recognised word with its time span (seconds from the start of the item)."""

    text: str  # the word
    start: float  # first frame of its first token, seconds
    end: float  # end of the last frame of its last token, seconds
    confidence: float  # mean posterior of its tokens over their frames, in [0, 1]


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


@dataclasses.dataclass(frozen=True)
class TokenSpan:
    """One emitted token and the frames it occupies."""

    token_id: int  # vocabulary index
    start: int  # first frame (where the decoder emits it)
    end: int  # one past its last frame (the argmax run stays on it until here), > start
    prob_sum: float  # sum over [start, end) of the token's posterior


def bound_malloc_heap(threshold_bytes: int = 128 * 1024) -> bool:
    """Make glibc return freed tensor buffers to the OS (process-wide; call once at start-up).

    glibc raises its mmap threshold after each large free (up to 32 MB), so later tensors of
    similar size come from the heap; with chunks of varying length the heap fragments and RSS
    creeps up with the length of the recording (+130 MB over one hour with the small model).
    A fixed threshold keeps it flat. Returns False where this is not glibc (nothing changed).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False


def resolve_model_dir(model: str | Path | None) -> Path:
    """The model folder to use: ``model``, or the bundled default when it is None."""
    if model is not None:
        return Path(model)
    if not (DEFAULT_MODEL_DIR / "config.yaml").is_file():
        raise TranscribeError(
            f"no default model is bundled with this installation ({DEFAULT_MODEL_DIR} is "
            "missing): pass --model DIR, an exported model folder (e.g. egs/synth/exp/model)"
        )
    return DEFAULT_MODEL_DIR


def bundled_decoding(model_dir: str | Path) -> tuple[Path | None, Path | None]:
    """A model folder's recommended decoding: (its ``decode.yaml`` or None, its ``lm/`` LSTM LM
    folder or None). The LM is only used with the decode config that was tuned for it."""
    model_dir = Path(model_dir)
    config = model_dir / BUNDLED_DECODE_CONFIG
    if not config.is_file():
        return None, None
    from asr.lm.io import is_lstm_lm_dir

    lm = model_dir / BUNDLED_LM_DIR
    return config, (lm if is_lstm_lm_dir(lm) else None)


def _folder_items(folder: Path) -> list[AudioItem]:
    suffixes = AUDIO_SUFFIXES
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return [AudioItem(str(p)) for p in files]


def _manifest_items(path: Path) -> list[AudioItem]:
    from asr.data.manifest import read_manifest

    items = []
    for u in read_manifest(path):
        duration = u.duration if u.duration > 0 else None
        items.append(AudioItem(u.audio_filepath, u.offset, duration, u.utt_id, u.text))
    return items


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[AudioItem], list[str]]:
    """Expand files, folders (recursively, by audio suffix) and manifests (``.jsonl``).

    Returns:
        (items in input order, one error message per input that gave nothing: an empty
        folder or an unreadable manifest). A missing file becomes an item (it fails later,
        with the other per-file errors).
    """
    items: list[AudioItem] = []
    errors: list[str] = []
    for entry in inputs:
        path = Path(entry)
        try:
            if path.is_dir():
                found = _folder_items(path)
                if not found:
                    errors.append(f"{path}: no audio files in this folder")
                items.extend(found)
            elif path.suffix.lower() in MANIFEST_SUFFIXES:
                items.extend(_manifest_items(path))
            else:
                items.append(AudioItem(str(path)))
        except AsrError as err:
            errors.append(str(err))
    return items, errors


def item_duration(item: AudioItem) -> float:
    """Length of ``item`` in seconds (reads the file header; AudioError when unreadable)."""
    total = audio_info(item.path).duration_s - item.offset_s
    if total <= 0:
        raise TranscribeError(f"{item.path}: offset {item.offset_s} s is past the end of the audio")
    return total if item.duration_s is None else min(item.duration_s, total)


def plan_chunks(item: AudioItem, cfg: TranscribeConfig) -> tuple[float, list[Segment]]:
    """(duration, chunks) of ``item``: one chunk when it is short, else VAD-cut chunks of at
    most ``cfg.max_chunk_s`` seconds, silent ones left out. Times relative to the item."""
    duration = item_duration(item)
    if duration <= cfg.max_chunk_s:
        return duration, [Segment(0.0, duration)]
    vad = detect_speech(item.path, cfg.vad, item.offset_s, duration)
    cuts = split_points(vad, cfg.max_chunk_s)
    chunks = [
        Segment(a, b)
        for a, b in itertools.pairwise(cuts)
        if b > a and vad.loud(a, b, cfg.vad.threshold_db)
    ]
    return vad.duration_s, chunks


def token_spans(
    token_ids: Sequence[int], frames: Sequence[int], log_probs: Tensor
) -> list[TokenSpan]:
    """Frame spans of the emitted tokens of one utterance.

    Args:
        token_ids: emitted tokens; frames: the frame where each is emitted (increasing).
        log_probs: (frames, vocab) log-posteriors of the utterance (valid frames only).
    Returns:
        one span per token: from its emission frame while the frame's argmax stays on it
        (at least one frame), never reaching the next token's frame.
    """
    if not token_ids:
        return []
    num_frames = log_probs.shape[0]
    best = log_probs.argmax(dim=-1).tolist()
    probs = log_probs[:, list(token_ids)].exp()  # (frames, tokens)
    spans = []
    for i, (tok, start) in enumerate(zip(token_ids, frames)):
        start = min(max(int(start), 0), num_frames - 1)
        limit = int(frames[i + 1]) if i + 1 < len(frames) else num_frames
        end = start + 1
        while end < limit and best[end] == tok:
            end += 1
        spans.append(TokenSpan(int(tok), start, end, float(probs[start:end, i].sum())))
    return spans


def words_from_spans(
    spans: Sequence[TokenSpan], tokenizer: Tokenizer, frame_shift_s: float, offset_s: float
) -> list[Word]:
    """Group token spans into words: a new word starts after a space token or at a piece
    beginning with ``▁`` (sentencepiece). Times are ``offset_s + frame * frame_shift_s``."""
    groups: list[list[TokenSpan]] = []
    current: list[TokenSpan] = []
    for span in spans:
        piece = tokenizer.vocab[span.token_id]
        if not piece.strip() or piece.strip() == "▁" or piece.startswith("▁"):
            if current:
                groups.append(current)
            current = [] if not piece.strip() or piece.strip() == "▁" else [span]
        else:
            current.append(span)
    if current:
        groups.append(current)
    words = []
    for group in groups:
        text = tokenizer.decode([s.token_id for s in group]).strip()
        if not text:
            continue
        frames = sum(s.end - s.start for s in group)
        words.append(
            Word(
                text,
                round(offset_s + group[0].start * frame_shift_s, 3),
                round(offset_s + group[-1].end * frame_shift_s, 3),
                round(min(1.0, sum(s.prob_sum for s in group) / frames), 4),
            )
        )
    return words


def _pad(waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """(batch, samples) zero-padded float32 waveforms and (batch,) lengths."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = torch.from_numpy(wave)
    return batch, lengths


@torch.inference_mode()
def decode_waves(
    model: CTCModel, decoder: Decoder, waves: Sequence[np.ndarray]
) -> list[tuple[Hypothesis, list[TokenSpan] | None]]:
    """Run a batch of waveforms through the model and decoder.

    Returns:
        per waveform its hypothesis and token spans (None when the decoder gives no frames).
    """
    batch, lengths = _pad(waves)
    log_probs, out_lengths = model(batch.to(model.device), lengths.to(model.device))
    hyps = decoder.decode(log_probs, out_lengths)
    log_probs = log_probs.float().cpu()
    out = []
    for row, hyp in enumerate(hyps):
        spans = None
        if hyp.frames is not None:
            valid = log_probs[row, : int(out_lengths[row])]
            spans = token_spans(hyp.token_ids, hyp.frames, valid)
        out.append((hyp, spans))
    return out


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


def _read_chunk(item: AudioItem, chunk: Segment, rate: int) -> np.ndarray:
    samples, _ = load_audio(item.path, rate, item.offset_s + chunk.start, chunk.end - chunk.start)
    return samples


def _decode_jobs(
    jobs: list[tuple[_Pending, int, Segment]],
    model: CTCModel,
    tokenizer: Tokenizer,
    decoder: Decoder,
) -> None:
    """Read and decode a batch of chunks, storing the results in their pending items."""
    rate = model.cfg.frontend.sample_rate_hz
    ready, waves = [], []
    for pending, index, chunk in jobs:
        if index < 0 or pending.error is not None:
            continue
        try:
            waves.append(_read_chunk(pending.item, chunk, rate))
            ready.append((pending, index, chunk))
        except AsrError as err:
            pending.error = str(err)
    if not waves:
        return
    for (pending, index, chunk), (hyp, spans) in zip(ready, decode_waves(model, decoder, waves)):
        pending.texts[index] = ChunkText(
            round(chunk.start, 3), round(chunk.end, 3), " ".join((hyp.text or "").split())
        )
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
        decoder: any :class:`asr.decode.run.Decoder`.
        items: what to transcribe (:func:`collect_inputs`).
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
        if not order or order[-1] is not job[0]:
            order.append(job[0])
        batch.append(job)
        if len(batch) >= cfg.batch_size:
            _decode_jobs(batch, model, tokenizer, decoder)
            _advance(bar, batch)
            batch = []
            yield from finished()
    _decode_jobs(batch, model, tokenizer, decoder)
    _advance(bar, batch)
    yield from finished()
    bar.close()


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
    return tqdm(total=round(total, 2), unit="s", desc="transcribe", disable=not enabled)
