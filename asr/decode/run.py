"""Decode a manifest with an exported model into a NeMo-style prediction JSONL.

Utterances are sorted by duration and cut into batches of at most ``batch_seconds`` padded
seconds (an utterance longer than that is a batch of one), decoded with any registered
:class:`Decoder`, and written in manifest order. An utterance whose audio cannot be read is
reported, written with an empty ``pred_text`` and an ``error`` field (so scoring counts it as
deleted words), and does not stop the others.

Decoders are found by name in a small registry; the beam-search module adds its own with::

    @register_decoder("beam")
    class BeamDecoder(Decoder):
        def __init__(self, tokenizer: Tokenizer, lm: str | None = None, beam_size: int = 16): ...
        def decode(self, log_probs, lengths): ...   # -> list of Hypothesis

Output line (``asr score`` reads ``pred_text`` and matches by ``utt_id`` or ``audio_filepath``)::

    {"audio_filepath": "...", "duration": 6.35, "text": "NO NO ...", "pred_text": "NO NO ...",
     "utt_id": "0_0_0_0_1_1_1_1", "tokens": ["N", "O", ...], "token_times_s": [0.52, 0.6, ...]}
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from asr.atomic import atomic_open
from asr.decode.greedy import greedy_decode
from asr.errors import AsrError

if TYPE_CHECKING:
    from asr.data.manifest import Utterance
    from asr.models.ctc import CTCModel
    from asr.tokenizer import Tokenizer


class DecodeError(AsrError):
    """Decoding cannot start or finish: unknown decoder, bad options, nothing to decode."""


class Hypothesis(Protocol):
    """What a decoder returns per utterance (``asr.decode.greedy.GreedyHypothesis`` is one)."""

    text: str | None  # the transcript
    token_ids: tuple[int, ...]  # emitted token ids
    frames: tuple[int, ...] | None  # per token, the (first) output frame where it is emitted


class Decoder(ABC):
    """Turns a batch of CTC log-probabilities into hypotheses; one instance decodes many batches."""

    @abstractmethod
    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[Hypothesis]:
        """log_probs: (batch, frames, vocab), lengths: (batch,) -> one hypothesis per row."""


_DECODERS: dict[str, Callable[..., Decoder]] = {}


def register_decoder(name: str) -> Callable[[Callable[..., Decoder]], Callable[..., Decoder]]:
    """Class decorator: make a decoder available as ``make_decoder(name, tokenizer, **opts)``."""

    def add(factory: Callable[..., Decoder]) -> Callable[..., Decoder]:
        _DECODERS[name] = factory
        return factory

    return add


def _load_builtin_decoders() -> None:
    """Import the decoders that live in their own modules (they register themselves)."""
    import asr.decode.beam_decoder  # noqa: F401  ("beam": prefix search, LSTM or KenLM fusion)


def decoder_names() -> list[str]:
    """Names of the registered decoders."""
    _load_builtin_decoders()
    return sorted(_DECODERS)


def make_decoder(name: str, tokenizer: Tokenizer, **options: Any) -> Decoder:
    """Build the decoder registered as ``name`` with ``tokenizer`` and keyword ``options``."""
    _load_builtin_decoders()
    if name not in _DECODERS:
        raise DecodeError(f"unknown decoder {name!r} (known: {', '.join(decoder_names())})")
    try:
        return _DECODERS[name](tokenizer, **options)
    except TypeError as err:
        raise DecodeError(f"decoder {name!r}: bad options {sorted(options)}: {err}") from None


@register_decoder("greedy")
class GreedyDecoder(Decoder):
    """Best path: argmax per frame, repeats collapsed, blanks dropped (batched, on any device)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[Hypothesis]:
        return list(greedy_decode(log_probs, lengths, self.tokenizer, self.tokenizer.blank_id))


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
        raise DecodeError(f"batch seconds must be > 0, got {batch_seconds}")
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


@dataclasses.dataclass(frozen=True)
class _Loaded:
    index: int  # position in the utterance list
    samples: Any  # numpy (samples,) float32, or None when the file could not be read
    error: str | None  # why it could not be read


class _AudioItems(torch.utils.data.Dataset):
    """Reads utterance audio at the model's rate; failures become items with an error."""

    def __init__(self, utterances: Sequence[Utterance], sample_rate: int) -> None:
        self.utterances = utterances
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> _Loaded:
        from asr.audio import load_audio

        utt = self.utterances[index]
        try:
            samples, _ = load_audio(
                utt.audio_filepath,
                self.sample_rate,
                offset_s=utt.offset,
                duration_s=utt.duration if utt.duration > 0 else None,
            )
        except AsrError as err:
            return _Loaded(index, None, str(err))
        if len(samples) == 0:
            return _Loaded(index, None, f"{utt.audio_filepath}: no samples")
        return _Loaded(index, samples, None)


def _pad(items: Sequence[_Loaded]) -> tuple[Tensor, Tensor]:
    """(batch, samples) zero-padded float32 waveforms and (batch,) lengths."""
    lengths = torch.tensor([len(it.samples) for it in items], dtype=torch.long)
    waves = torch.zeros(len(items), int(lengths.max()), dtype=torch.float32)
    for row, it in enumerate(items):
        waves[row, : len(it.samples)] = torch.from_numpy(it.samples)
    return waves, lengths


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One utterance's result: a hypothesis, or the error that prevented decoding it."""

    index: int  # position in the utterance list
    hypothesis: Hypothesis | None  # None when the audio could not be read
    error: str | None  # the reason, else None


@torch.inference_mode()
def decode_utterances(
    model: CTCModel,
    decoder: Decoder,
    utterances: Sequence[Utterance],
    batch_seconds: float = 300.0,
    num_workers: int = 0,
    progress: bool = False,
) -> Iterator[Decoded]:
    """Decode ``utterances`` in duration-sorted batches; yields results in batch order.

    Args:
        model: the acoustic model (put in eval mode); audio is read at its front-end's rate.
        decoder: turns log-probs into hypotheses.
        utterances: what to decode (manifest entries).
        batch_seconds: padded audio seconds per batch (default 300).
        num_workers: DataLoader processes reading audio (0: in this process).
        progress: show a progress bar (utterances) on stderr.
    """
    model.eval()
    rate = model.cfg.frontend.sample_rate_hz
    batches = duration_batches([u.duration for u in utterances], batch_seconds)
    loader = torch.utils.data.DataLoader(
        _AudioItems(utterances, rate),
        batch_sampler=batches,
        collate_fn=list,
        num_workers=num_workers,
    )
    bar = tqdm(total=len(utterances), desc="decode", unit="utt", disable=not progress)
    for items in loader:
        good = [it for it in items if it.error is None]
        for it in items:
            if it.error is not None:
                yield Decoded(it.index, None, it.error)
        if good:
            waves, lengths = _pad(good)
            log_probs, out_lengths = model(waves.to(model.device), lengths.to(model.device))
            for it, hyp in zip(good, decoder.decode(log_probs, out_lengths)):
                yield Decoded(it.index, hyp, None)
        bar.update(len(items))
    bar.close()


def _utt_id(utt: Utterance) -> str:
    """The manifest ``utt_id``, else the file stem (with ``@offset`` when the offset is set)."""
    if utt.utt_id is not None:
        return utt.utt_id
    stem = Path(utt.audio_filepath).stem
    return f"{stem}@{utt.offset:g}" if utt.offset else stem


def prediction_record(
    utt: Utterance, result: Decoded, tokenizer: Tokenizer, frame_shift_s: float
) -> dict[str, Any]:
    """The JSON object written for one utterance (see the module docstring)."""
    record: dict[str, Any] = {"audio_filepath": utt.audio_filepath, "duration": utt.duration}
    if utt.offset:
        record["offset"] = utt.offset
    hyp = result.hypothesis
    record["text"] = utt.text
    record["pred_text"] = (hyp.text or "") if hyp is not None else ""
    record["utt_id"] = _utt_id(utt)
    if hyp is not None:
        record["tokens"] = [tokenizer.vocab[i] for i in hyp.token_ids]
        if hyp.frames is not None:
            record["token_times_s"] = [round(f * frame_shift_s, 3) for f in hyp.frames]
    if result.error is not None:
        record["error"] = result.error
    return record


@dataclasses.dataclass(frozen=True)
class DecodeSummary:
    """What :func:`decode_manifest` did."""

    out: Path  # the prediction JSONL
    num_utterances: int  # lines written
    errors: tuple[str, ...]  # one message per utterance that could not be decoded
    audio_seconds: float  # manifest seconds decoded
    wall_seconds: float  # time spent decoding (model loading excluded)

    @property
    def real_time_factor(self) -> float:
        """Wall seconds per audio second."""
        return self.wall_seconds / max(self.audio_seconds, 1e-9)


def decode_manifest(
    model_path: str | Path,
    manifest: str | Path,
    out: str | Path,
    decoder: str = "greedy",
    decoder_options: dict[str, Any] | None = None,
    batch_seconds: float = 300.0,
    device: str = "cpu",
    num_workers: int = 0,
    progress: bool = False,
) -> DecodeSummary:
    """Decode every utterance of ``manifest`` with the model in ``model_path`` into ``out``.

    Args:
        model_path: exported model folder (``asr.models.io.export_model``).
        manifest: JSONL manifest to decode (``text`` is copied through as the reference).
        out: prediction JSONL, written atomically in manifest order.
        decoder: a registered decoder name (default "greedy").
        decoder_options: keyword options of that decoder.
        batch_seconds: padded audio seconds per batch (default 300).
        device: "cpu", "cuda" or "auto" (cuda when available).
        num_workers: DataLoader processes reading audio.
        progress: show a progress bar.
    Per-file audio errors are reported in the summary (and on stderr), not raised.
    """
    from asr.data.manifest import read_manifest
    from asr.models.io import load_model

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DecodeError("--device cuda: no CUDA device available (use --device cpu)")
    utterances = read_manifest(manifest)
    if not utterances:
        raise DecodeError(f"{manifest}: no utterances to decode")
    model, tokenizer = load_model(model_path, device=device)
    dec = make_decoder(decoder, tokenizer, **(decoder_options or {}))
    start = time.perf_counter()
    results: list[Decoded | None] = [None] * len(utterances)
    errors = []
    for result in decode_utterances(model, dec, utterances, batch_seconds, num_workers, progress):
        results[result.index] = result
        if result.error is not None:
            errors.append(result.error)
            print(f"error: {result.error}", file=sys.stderr)
    wall = time.perf_counter() - start
    with atomic_open(out) as fh:
        for utt, result in zip(utterances, results):
            record = prediction_record(utt, result, tokenizer, model.frame_shift_s)
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    seconds = sum(u.duration for u in utterances)
    return DecodeSummary(Path(out), len(utterances), tuple(errors), seconds, wall)
