"""Chunked inference of the convolutional acoustic model with cached left context and a
small look-ahead.

Every output frame of a stack of "same"-padded convolutions depends on a window of input
frames: its receptive field, :func:`receptive_field` frames on each side (for the bundled
default model about 10 s). :class:`ChunkedEncoder` keeps the raw features of the recent past
(the left context, ``left_frames``) and, whenever ``chunk_frames`` new output frames have at
least ``right_frames`` feature frames of look-ahead after them, runs the encoder on
``[left context | new frames | look-ahead]`` and emits the new frames' log-probabilities.
The edges of that window are zero-padded as the ends of an utterance are, so an emitted frame
equals the whole-utterance one exactly when ``left_frames`` and ``right_frames`` cover the
receptive field (``tests/test_streaming.py`` checks it); with a small look-ahead it is an
approximation whose cost in WER ``bench/streaming.py`` measures. At the end of the stream
(:meth:`ChunkedEncoder.flush`) the remaining frames see the true end.

:meth:`ChunkedEncoder.provisional` gives the frames after the emitted ones up to the end of the
features so far, the missing look-ahead treated as the end of the utterance (zero-padded, as
whole-utterance inference treats the end of a file): partial results from them come before
their look-ahead arrives, and may change once it has. Nothing is emitted or dropped by it; the
part of an emitting window after its new frames is kept and reused when nothing arrived since.

Example::

    enc = ChunkedEncoder(model.network, ChunkConfig(chunk_s=0.24, left_s=2.0, right_s=0.24))
    enc.accept(samples)            # any number of samples at the model's rate
    log_probs = enc.step()         # (new frames, vocab), possibly empty
    guess = enc.provisional()      # (pending frames, vocab): not emitted, may change
    rest = enc.flush()             # the audio ended
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from asr.models.tcn import EncoderConfig
from asr.streaming.features import StreamingError, StreamingFeatures

if TYPE_CHECKING:
    from asr.models.ctc import CTCModel

# Output frames computed in one encoder call at most (a huge accept() is split).
MAX_OUT_PER_CALL = 1000


def receptive_field(cfg: EncoderConfig) -> int:
    """Input (feature) frames on each side that one encoder output frame depends on.

    Sums ``dilation * (kernel - 1) / 2`` of every convolution, scaled by the strides before it.
    """
    total, scale = 0, 1
    for block in cfg.blocks:
        for index in range(block.repeat):
            last = index == block.repeat - 1
            total += scale * block.dilation * (block.kernel - 1) // 2
            if last or not block.stride_last:
                scale *= block.stride
    return total


@dataclasses.dataclass(frozen=True)
class ChunkConfig:
    """Chunking of streaming inference, in seconds of audio (rounded to whole frames)."""

    chunk_s: float = 0.24  # new audio per encoder call
    left_s: float = 2.0  # left context kept and recomputed with each chunk
    right_s: float = 0.48  # look-ahead each emitted frame waits for (its latency)

    def __post_init__(self) -> None:
        if self.chunk_s <= 0 or self.left_s < 0 or self.right_s < 0:
            raise StreamingError("chunk_s must be > 0, left_s and right_s >= 0")


class ChunkedEncoder:
    """Audio pieces in, CTC log-probabilities of the new output frames out.

    Args:
        network: the acoustic model (eval mode, any device).
        cfg: chunking options.
        left_frames, right_frames: override ``cfg``'s context in feature frames (tests use
            :func:`receptive_field`).
    """

    def __init__(
        self,
        network: CTCModel,
        cfg: ChunkConfig | None = None,
        left_frames: int | None = None,
        right_frames: int | None = None,
    ) -> None:
        cfg = cfg or ChunkConfig()
        self.network = network
        self.features = StreamingFeatures(network.frontend)
        self.sub = network.cfg.encoder.subsampling
        shift_s = network.cfg.frontend.frame_shift_ms / 1000.0
        self.chunk_out = max(1, round(cfg.chunk_s / shift_s / self.sub))
        self.left = left_frames if left_frames is not None else round(cfg.left_s / shift_s)
        self.right = right_frames if right_frames is not None else round(cfg.right_s / shift_s)
        self.left = math.ceil(self.left / self.sub) * self.sub  # keep the stride phase
        self.reset()

    def reset(self) -> None:
        """Start a new utterance (the front-end's normalisation statistics are kept)."""
        self.features.reset()
        self.feats = torch.zeros(0, self.features.frontend.num_features)
        self.fbase = 0  # utterance feature index of feats[0]
        self.emitted = 0  # output frames emitted
        self.tail: Tensor | None = None  # frames after the emitted ones of the last window
        self.tail_total = -1  # feature frames when ``tail`` was computed
        self.computed_at = 0  # samples when features were last computed

    @property
    def samples(self) -> int:
        """Samples received in this utterance."""
        return self.features.total

    def accept(self, samples: np.ndarray) -> None:
        """Append ``(n,)`` float32 samples at the model's rate."""
        self.features.accept(samples)

    def step(self) -> Tensor:
        """Log-probs ``(frames, vocab)`` of the output frames whose look-ahead has arrived, in
        multiples of the chunk (possibly none)."""
        self._add_features()
        total = self.fbase + len(self.feats)
        ready = (total - 1 - self.right) // self.sub + 1 - self.emitted if total else 0
        if ready < self.chunk_out:
            return torch.zeros(0, self.network.vocab_size)
        return self._emit(ready - ready % self.chunk_out, final=False)

    @property
    def available(self) -> int:
        """Output frames the features so far cover (emitted or not)."""
        total = self.fbase + len(self.feats)
        if total == 0:
            return 0
        return int(self.network.encoder.output_lengths(torch.tensor([total]))[0])

    @torch.no_grad()
    def provisional(self) -> Tensor:
        """Log-probs ``(frames, vocab)`` of the output frames after the emitted ones up to the
        end of the features so far, the window's end taken as the end of the utterance (the
        missing look-ahead zero-padded as at the end of a file). Emits and keeps nothing.

        Reuses the tail of the last emitting window when no features arrived since; otherwise
        runs the encoder on ``[left context | pending frames]``.
        """
        self._add_features()
        total = self.fbase + len(self.feats)
        count = self.available - self.emitted
        if count <= 0:
            return torch.zeros(0, self.network.vocab_size)
        if self.tail is not None and self.tail_total == total and len(self.tail) == count:
            return self.tail
        start = max(0, self.emitted * self.sub - self.left)
        log_probs = self._run(start, total)
        first = self.emitted - start // self.sub
        self.tail, self.tail_total = log_probs[first : first + count], total
        return self.tail

    def flush(self) -> Tensor:
        """Log-probs ``(frames, vocab)`` of every remaining frame: the audio ended here."""
        self._add(self.features.compute(final=True))
        total = self.fbase + len(self.feats)
        length = torch.tensor([total])
        out_total = int(self.network.encoder.output_lengths(length)[0]) if total else 0
        return self._emit(out_total - self.emitted, final=True)

    def _add(self, new: Tensor) -> None:
        if len(new):
            self.feats = torch.cat([self.feats, new])

    def _add_features(self) -> None:
        """The feature frames the audio so far allows (nothing to do when none arrived)."""
        if self.features.total != self.computed_at:
            self.computed_at = self.features.total
            self._add(self.features.compute())

    @torch.no_grad()
    def _emit(self, count: int, final: bool) -> Tensor:
        parts = []
        while count > 0:
            n = min(count, MAX_OUT_PER_CALL)
            parts.append(self._window(n, final and n == count))
            count -= n
        self._trim()
        if not parts:
            return torch.zeros(0, self.network.vocab_size)
        return torch.cat(parts)

    def _window(self, n: int, final: bool) -> Tensor:
        """Run the encoder over [left | n new output frames | look-ahead]; ``(n, vocab)``."""
        start = max(0, self.emitted * self.sub - self.left)
        total = self.fbase + len(self.feats)
        end = total
        if not final:  # at least the look-ahead; more only while it is already there
            end = min(total, (self.emitted + n - 1) * self.sub + 1 + max(self.right, self.left))
        log_probs = self._run(start, end)
        first = self.emitted - start // self.sub
        out = log_probs[first : first + n]
        self.emitted += n
        self.tail, self.tail_total = None, -1
        if end == total and not final:  # the frames after these, for provisional()
            self.tail, self.tail_total = log_probs[first + n :], total
        return out

    def _run(self, start: int, end: int) -> Tensor:
        """The encoder on feature frames ``[start, end)`` (``start`` a multiple of the stride),
        both ends padded as an utterance's; ``(output frames of the window, vocab)`` float32."""
        window = self.feats[start - self.fbase : end - self.fbase]
        x = self.features.normalize(window).to(self.network.device)[None]
        lengths = torch.tensor([len(window)], device=x.device)
        log_probs, _ = self.network.forward_features(x, lengths)
        return log_probs[0].float().cpu()

    def _trim(self) -> None:
        keep_from = max(0, self.emitted * self.sub - self.left - self.sub)
        drop = keep_from - self.fbase
        if drop > 0:
            self.feats = self.feats[drop:]
            self.fbase = keep_from
