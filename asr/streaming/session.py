"""A recognition stream: audio pieces in, partial and final results out.

:class:`Stream` joins the chunked acoustic model (:mod:`asr.streaming.encoder`), a streaming
decoder (:mod:`asr.streaming.decoder`) and the endpointer (:mod:`asr.streaming.endpoint`):
``accept(samples)`` runs whatever the new audio allows and returns the results it produced:
the final result of every utterance that ended (silence after speech, or ``max_utterance_s``)
and then the current partial result when its text changed. Partial results may still change;
final ones do not. ``finish()`` ends the stream and returns the last final result.

Committed frames (their look-ahead has arrived) advance the decoder. With
``StreamConfig.provisional`` (default) a partial also covers the frames after them up to the
end of the audio so far (:meth:`ChunkedEncoder.provisional`, the missing look-ahead treated as
the end of the file), decoded greedily after the committed best hypothesis
(:func:`extend_greedy`) without touching the decoder: partials no longer wait for the
look-ahead, and finals are exactly those without it. It is recomputed when
``provisional_every_s`` of new audio arrived or committed frames did (then the emitting encoder
window already holds them), and only once the endpointer's VAD has heard speech in the
utterance.

Example::

    stream = open_stream(model)                 # the model's recommended decoding
    for piece in pieces:                         # float32 at model.sample_rate
        for r in stream.accept(piece):
            print("final" if r.final else "partial", r.text)
    stream.finish()
    print([r.text for r in stream.finals])
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from asr.inference.vad import VadConfig
from asr.inference.word_timing import Word, token_spans, words_from_spans
from asr.streaming.decoder import extend_greedy, stream_decoder
from asr.streaming.encoder import ChunkConfig, ChunkedEncoder
from asr.streaming.endpoint import Endpointer
from asr.streaming.features import StreamingError

if TYPE_CHECKING:
    from asr.decode.base import Decoder
    from asr.decode.beam import BeamHypothesis
    from asr.decode.greedy import GreedyHypothesis
    from asr.decode.spec import DecodeSpec
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import Tokenizer


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """Options of a :class:`Stream`."""

    chunk: ChunkConfig = dataclasses.field(default_factory=ChunkConfig)  # chunking, look-ahead
    endpoint: bool = True  # end utterances at silences (else only at finish / max length)
    endpoint_silence_s: float = 0.35  # silence after speech that ends an utterance (the final
    # comes this long after the speaker stops, plus compute; docs/streaming.md has the choice)
    max_utterance_s: float = 30.0  # an utterance is ended here at the latest
    vad: VadConfig = dataclasses.field(default_factory=VadConfig)  # the endpoint detector
    provisional: bool = True  # partials also cover the frames still waiting for look-ahead
    provisional_every_s: float = 0.1  # ... recomputed after this much new audio at most

    def __post_init__(self) -> None:
        if self.endpoint_silence_s <= 0 or self.max_utterance_s <= 1:
            raise StreamingError("endpoint_silence_s must be > 0 and max_utterance_s > 1")
        if self.provisional_every_s <= 0:
            raise StreamingError("provisional_every_s must be > 0")


@dataclasses.dataclass(frozen=True)
class StreamResult:
    """The text of one utterance, partial (may change) or final."""

    text: str  # the hypothesis
    words: tuple[Word, ...]  # with start/end in seconds from the start of the stream
    start: float  # utterance start, seconds from the start of the stream
    end: float  # audio consumed when this result was made, seconds
    final: bool  # True: this utterance's text will not change
    utterance: int  # index of the utterance in the stream, from 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of the result (as ``asr serve`` sends it)."""
        words = [dataclasses.asdict(w) for w in self.words]
        return {
            "type": "final" if self.final else "partial",
            "utterance": self.utterance,
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "words": words,
        }


class Stream:
    """One live recognition stream (not thread-safe; one per client).

    Args:
        network: the acoustic model (eval mode).
        tokenizer: its tokenizer.
        decoder: a built greedy or beam decoder (its LM is shared between streams).
        config: streaming options.
    """

    def __init__(
        self,
        network: CTCModel,
        tokenizer: Tokenizer,
        decoder: Decoder,
        config: StreamConfig | None = None,
    ) -> None:
        self.cfg = config or StreamConfig()
        self.tokenizer = tokenizer
        self.sample_rate = int(network.cfg.frontend.sample_rate_hz)
        self.frame_shift_s = network.frame_shift_s
        self.encoder = ChunkedEncoder(network, self.cfg.chunk)
        self.decoder = stream_decoder(decoder)
        self.endpointer = Endpointer(self.sample_rate, self.cfg.vad, self.cfg.endpoint_silence_s)
        self.provisional_every = max(1, round(self.cfg.provisional_every_s / self.frame_shift_s))
        self.finals: list[StreamResult] = []
        self.partial: StreamResult | None = None
        self.samples = 0  # samples received
        self.finished = False
        self._new_utterance(0)

    def _new_utterance(self, start: int) -> None:
        self.utt_start = start
        self.utt_log_probs: list[torch.Tensor] = []  # committed frames' (frames, vocab)
        self.committed = 0  # committed frames
        self.hyp: BeamHypothesis | GreedyHypothesis | None = None  # their best (None: not yet)
        self.provisional_at = 0  # encoder.available at the last provisional partial
        self.last_text = ""

    def accept(self, samples: np.ndarray) -> list[StreamResult]:
        """Feed ``(n,)`` audio at ``sample_rate`` (float in [-1, 1], or int16 PCM).

        Returns:
            the results this audio produced: finals of ended utterances, then the partial
            result if its text changed.
        """
        if self.finished:
            raise StreamingError("the stream is finished")
        x = np.asarray(samples)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = x.astype(np.float32, copy=False).reshape(-1)
        if not np.isfinite(x).all():
            raise StreamingError("audio holds NaN or Inf values")
        out: list[StreamResult] = []
        ends = self.endpointer.accept(x) if self.cfg.endpoint else []
        pos = self.samples
        for end in ends:
            self._feed(x[pos - self.samples : end - self.samples])
            pos = end
            out += self._end_utterance(end)
        self._feed(x[pos - self.samples :])
        self.samples += len(x)
        if self.encoder.samples > self.cfg.max_utterance_s * self.sample_rate:
            out += self._end_utterance(self.samples)
        changed = self._update(self.encoder.step())
        if changed and self.partial is not None:
            out.append(self.partial)
        return out

    def finish(self) -> list[StreamResult]:
        """End the stream: the last utterance's final result (if it holds any text)."""
        if self.finished:
            return []
        out = self._end_utterance(self.samples)
        self.finished = True
        return out

    def _feed(self, x: np.ndarray) -> None:
        if len(x):
            self.encoder.accept(x)

    def _commit(self, log_probs: torch.Tensor) -> bool:
        """Advance the decoder by ``(frames, vocab)`` committed frames; True if any."""
        if len(log_probs) == 0:
            return False
        self.utt_log_probs.append(log_probs)
        self.committed += len(log_probs)
        self.decoder.advance(log_probs)
        self.hyp = self.decoder.best()
        return True

    def _best(self) -> BeamHypothesis | GreedyHypothesis:
        """The committed best hypothesis."""
        if self.hyp is None:
            self.hyp = self.decoder.best()
        return self.hyp

    def _update(self, log_probs: torch.Tensor) -> bool:
        """Commit ``(frames, vocab)`` frames and refresh the partial (with the provisional frames
        when due); True when the partial text changed."""
        committed = self._commit(log_probs)
        hyp, frames = self._best(), self.utt_log_probs
        due = committed or self.encoder.available - self.provisional_at >= self.provisional_every
        if self.cfg.provisional and due and self._heard_speech():
            self.provisional_at = self.encoder.available
            pending = self.encoder.provisional()
            if len(pending):
                blank = self.tokenizer.blank_id
                prev = int(frames[-1][-1].argmax()) if frames else blank
                hyp = extend_greedy(hyp, pending, prev, self.committed, self.tokenizer)
                frames = [*frames, pending]
        elif not committed:
            return False
        result = self._result(hyp, frames, final=False)
        self.partial = result
        changed = result.text != self.last_text
        self.last_text = result.text
        return changed

    def _heard_speech(self) -> bool:
        """The endpointer's VAD found speech in this utterance (always True without endpointing):
        no provisional frames before, so silence costs no extra encoder runs."""
        return not self.cfg.endpoint or self.endpointer.first_speech is not None

    def _end_utterance(self, end: int) -> list[StreamResult]:
        self._commit(self.encoder.flush())
        result = self._result(self._best(), self.utt_log_probs, final=True, end=end)
        self.encoder.reset()
        self.decoder.reset()
        self.endpointer.reset()
        self.partial = None
        self._new_utterance(end)
        if not result.text.strip():
            return []
        self.finals.append(result)
        return [result]

    def _result(
        self,
        hyp: BeamHypothesis | GreedyHypothesis,
        frames: list[torch.Tensor],
        final: bool,
        end: int | None = None,
    ) -> StreamResult:
        """The result of ``hyp`` over the utterance's ``(frames, vocab)`` log-prob pieces."""
        offset = self.utt_start / self.sample_rate
        words: list[Word] = []
        if hyp.token_ids and frames:
            lp = torch.cat(frames)
            spans = token_spans(hyp.token_ids, hyp.frames or (), lp)
            words = words_from_spans(spans, self.tokenizer, self.frame_shift_s, offset)
        consumed = (end if end is not None else self.samples) / self.sample_rate
        return StreamResult(
            text=(hyp.text or "").strip(),
            words=tuple(words),
            start=offset,
            end=consumed,
            final=final,
            utterance=len(self.finals),
        )


class LoadedModel(Protocol):
    """What a stream needs of a loaded model (:class:`asr.api.Model` has it; this package does
    not import the API above it)."""

    network: CTCModel
    tokenizer: Tokenizer

    def decode_spec(self, **decoding: Any) -> DecodeSpec: ...

    def decoder(self, spec: DecodeSpec) -> Decoder: ...


def open_stream(model: LoadedModel, config: StreamConfig | None = None, **decoding: Any) -> Stream:
    """A :class:`Stream` over a loaded model (:func:`asr.load_model`) with the decoding options
    of ``asr transcribe`` (no options: the model folder's recommended decoding).

    Raises:
        StreamingError: a decoder that cannot stream (kenlm); DecodeSpecError: bad options.
    """
    decoder = model.decoder(model.decode_spec(**decoding))
    return Stream(model.network, model.tokenizer, decoder, config)
