"""Decode a manifest with a loaded model into a NeMo-style prediction JSONL.

The manifest is read and checked first (:func:`read_decode_manifest`), the model and its decoder
are loaded once by the caller (:func:`asr.api.load_model`, :meth:`asr.api.Model.decoder`).
Utterances are sorted by duration and cut into batches of at most ``batch_seconds`` padded
seconds (an utterance longer than that is a batch of one), run through the model by
:mod:`asr.inference.forward`, decoded, and written in manifest order. An utterance whose audio
cannot be read is reported, written with an empty ``pred_text`` and an ``error`` field (so scoring
counts it as deleted words), and does not stop the others.

Output line (``asr score`` reads ``pred_text`` and matches by ``utt_id`` or ``audio_filepath``)::

    {"audio_filepath": "...", "duration": 6.35, "text": "NO NO ...", "pred_text": "NO NO ...",
     "utt_id": "0_0_0_0_1_1_1_1", "tokens": ["N", "O", ...], "token_times_s": [0.52, 0.6, ...]}

Example::

    items = read_decode_manifest("data/test.jsonl")
    model = asr.load_model("exp/model")
    decoder = model.decoder(model.decode_spec(decoder="greedy"))
    decode_manifest(model.network, model.tokenizer, decoder, items, "exp/decode/hyp.jsonl")
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from asr.decode.base import DecodeError, Decoder, Hypothesis
from asr.inference.forward import duration_batches, iter_emissions
from asr.io.atomic import atomic_open

if TYPE_CHECKING:
    from asr.data.inputs import AudioItem
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import Tokenizer


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One utterance's result: a hypothesis, or the error that prevented decoding it."""

    index: int  # position in the item list
    hypothesis: Hypothesis | None  # None when the audio could not be read
    error: str | None  # the reason, else None


@torch.inference_mode()
def decode_items(
    model: CTCModel,
    decoder: Decoder,
    items: Sequence[AudioItem],
    batch_seconds: float = 300.0,
    num_workers: int = 0,
    progress: bool = False,
) -> Iterator[Decoded]:
    """Decode ``items`` in duration-sorted batches; yields results in batch order.

    Args:
        model: the acoustic model (put in eval mode); audio is read at its front-end's rate.
        decoder: turns log-probs into hypotheses.
        items: what to decode (a manifest's lines, :func:`asr.data.inputs.manifest_items`).
        batch_seconds: padded audio seconds per batch (default 300).
        num_workers: processes reading audio (0: in this process).
        progress: show a progress bar (utterances) on stderr.
    """
    durations = [item.duration_s or 0.0 for item in items]
    keyed = ([(i, items[i]) for i in batch] for batch in duration_batches(durations, batch_seconds))
    bar = tqdm(total=len(items), desc="decode", unit="utt", disable=not progress)
    for batch in iter_emissions(model, keyed, num_workers):
        for key, error in batch.failures:
            yield Decoded(key, None, error)
        if batch.keys:
            for key, hyp in zip(batch.keys, decoder.decode(batch.log_probs, batch.lengths)):
                yield Decoded(key, hyp, None)
        bar.update(len(batch.keys) + len(batch.failures))
    bar.close()


def prediction_record(
    item: AudioItem, result: Decoded, tokenizer: Tokenizer, frame_shift_s: float
) -> dict[str, Any]:
    """The JSON object written for one manifest line (see the module docstring)."""
    record: dict[str, Any] = {"audio_filepath": item.path, "duration": item.duration_s or 0.0}
    if item.offset_s:
        record["offset"] = item.offset_s
    hyp = result.hypothesis
    record["text"] = item.text
    record["pred_text"] = (hyp.text or "") if hyp is not None else ""
    record["utt_id"] = item.name
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


def read_decode_manifest(manifest: str | Path) -> list[AudioItem]:
    """The utterances of ``manifest`` to decode, checked before any model loads.

    Raises:
        DecodeError: no utterances, or two with one id (``asr score`` matches by id);
            ManifestError: a bad line.
    """
    from asr.data.inputs import manifest_items

    items = manifest_items(manifest)
    if not items:
        raise DecodeError(f"{manifest}: no utterances to decode")
    seen: dict[str, int] = {}
    for line, item in enumerate(items, 1):
        if item.name in seen:
            raise DecodeError(
                f"{manifest}: utterance {line} has the id {item.name!r} "
                f"of utterance {seen[item.name]}"
            )
        seen[item.name] = line
    return items


def decode_manifest(
    model: CTCModel,
    tokenizer: Tokenizer,
    decoder: Decoder,
    items: Sequence[AudioItem],
    out: str | Path,
    batch_seconds: float = 300.0,
    num_workers: int = 0,
    progress: bool = False,
) -> DecodeSummary:
    """Decode every utterance of ``items`` (:func:`read_decode_manifest`) into ``out``.

    Args:
        model: the acoustic model (torch or onnxruntime, :func:`asr.api.load_model`).
        tokenizer: its tokenizer; decoder: turns its log-probs into hypotheses.
        items: the manifest's utterances (``text`` is copied through as the reference).
        out: prediction JSONL, written atomically in manifest order.
        batch_seconds: padded audio seconds per batch (default 300).
        num_workers: processes reading audio.
        progress: show a progress bar.
    Per-file audio errors are reported in the summary (and on stderr), not raised.
    """
    start = time.perf_counter()
    results: list[Decoded | None] = [None] * len(items)
    errors = []
    for result in decode_items(model, decoder, items, batch_seconds, num_workers, progress):
        results[result.index] = result
        if result.error is not None:
            errors.append(result.error)
            print(f"error: {result.error}", file=sys.stderr)
    wall = time.perf_counter() - start
    with atomic_open(out) as fh:
        for item, result in zip(items, results):
            record = prediction_record(item, result, tokenizer, model.frame_shift_s)  # type: ignore[arg-type]
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    seconds = sum(item.duration_s or 0.0 for item in items)
    return DecodeSummary(Path(out), len(items), tuple(errors), seconds, wall)
