"""Decoders that advance chunk by chunk: greedy, and the CTC prefix beam search with its LM.

:class:`BeamStream` composes the frame step of :mod:`asr.decode.beam` (the same ``_Search``
object, beams and per-frame token pruning that :func:`asr.decode.beam.beam_search` uses), but
keeps the beams, their LM states and the back-pointers between calls: each chunk's frames are
searched once, the LM state of every prefix is carried with it, and the best hypothesis so far
(with the end-of-sentence LM score, as at the end of an utterance) is available at any time.
Fed a whole utterance in any chunking, it gives exactly :func:`beam_search`'s result.

:func:`extend_greedy` makes a provisional hypothesis without touching a decoder: the committed
best hypothesis followed by the best path of frames whose look-ahead has not arrived (their
tokens may change). For the beam decoder it is a cheap stand-in for continuing the search on a
copy, which would cost a beam step (the LSTM LM included) for every provisional frame at every
update (``docs/streaming.md`` has the measured cost).

Example::

    dec = stream_decoder(model.decoder(model.decode_spec()))
    dec.advance(log_probs_chunk)          # (frames, vocab)
    print(dec.best().text)
    guess = extend_greedy(dec.best(), pending, prev=last_id, offset=frames_so_far, tokenizer=tok)
    dec.reset()                           # next utterance
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from asr.decode.beam import (
    BeamHypothesis,
    _candidates,
    _finish,
    _initial_beams,
    _length_table,
    _Search,
)
from asr.decode.beam_decoder import BeamDecoder
from asr.decode.greedy import GreedyDecoder, GreedyHypothesis, collapse_path
from asr.streaming.features import StreamingError

if TYPE_CHECKING:
    from asr.decode.base import Decoder
    from asr.text.tokenizer import Tokenizer


class StreamDecoder(Protocol):
    """What the session needs of a streaming decoder."""

    def reset(self) -> None: ...

    def advance(self, log_probs: Tensor) -> None: ...

    def best(self) -> BeamHypothesis | GreedyHypothesis: ...


class GreedyStream:
    """Best path, frame by frame.

    Args:
        tokenizer: the model's tokenizer.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.reset()

    def reset(self) -> None:
        """Forget the utterance."""
        self.ids: list[int] = []
        self.log_prob = 0.0

    def advance(self, log_probs: Tensor) -> None:
        """Search ``(frames, vocab)`` more frames."""
        if len(log_probs):
            best, ids = log_probs.max(dim=-1)
            self.ids += ids.tolist()
            self.log_prob += float(best.sum())

    def best(self) -> GreedyHypothesis:
        """The best path of the frames so far."""
        path = collapse_path(self.ids, self.tokenizer.blank_id)
        tokens = tuple(token for token, _ in path)
        text = self.tokenizer.decode(list(tokens))
        return GreedyHypothesis(tokens, tuple(frame for _, frame in path), text, self.log_prob)


class BeamStream:
    """Resumable prefix beam search (batch of one) with shallow LM fusion.

    Args:
        decoder: a :class:`BeamDecoder` (its options, LM and tokenizer are used; the LM is
            shared, not copied).
    """

    def __init__(self, decoder: BeamDecoder) -> None:
        self.cfg = decoder.cfg
        self.lm = decoder.lm
        self.tokenizer = decoder.tokenizer
        vocab = decoder.tokenizer.vocab_size
        self.table = _length_table(
            self.cfg, vocab, self.tokenizer, torch.device("cpu"), torch.float32
        )
        self.reset()

    def reset(self) -> None:
        """Start a new utterance: empty beams, fresh LM states."""
        vocab = self.tokenizer.vocab_size
        self.search = _Search(self.cfg, self.lm, vocab, self.table)
        device = torch.device("cpu")
        self.beams = _initial_beams(1, self.cfg.beam_size, torch.float32, device, self.lm)
        self.frames = 0

    @torch.no_grad()
    def advance(self, log_probs: Tensor) -> None:
        """Search ``(frames, vocab)`` more frames (the LM states travel with the beams)."""
        count = len(log_probs)
        if count == 0:
            return
        lp = log_probs.float().cpu()[None]
        lengths = torch.tensor([count])
        tokens, tok_lp, counts = _candidates(lp, lengths, self.cfg)
        active = torch.ones(1, dtype=torch.bool)
        for t in range(count):
            frame = self.frames + t
            if counts[t] > 0:
                c = counts[t]
                self.beams = self.search.advance(
                    self.beams, lp[:, t], active, tokens[:, t, :c], tok_lp[:, t, :c], frame
                )
            else:
                self.beams = self.search.stay_only(self.beams, lp[:, t], active)
        self.frames += count

    def best(self) -> BeamHypothesis:
        """The best hypothesis so far, ranked as at the end of an utterance."""
        hyps = _finish(self.search, self.beams, self.tokenizer)[0]
        if hyps:
            return hyps[0]
        return BeamHypothesis((), (), "", float("-inf"), float("-inf"), 0.0, 0.0)


def extend_greedy(
    hyp: BeamHypothesis | GreedyHypothesis,
    log_probs: Tensor,
    prev: int,
    offset: int,
    tokenizer: Tokenizer,
) -> BeamHypothesis | GreedyHypothesis:
    """``hyp`` followed by the best path of more frames (a provisional hypothesis).

    Args:
        hyp: the committed best hypothesis (not modified).
        log_probs: ``(frames, vocab)`` the frames after the committed ones.
        prev: the argmax token of the last committed frame (blank if none): a token repeated
            across the boundary is emitted once, as greedy decoding of the whole would.
        offset: frame index of ``log_probs[0]`` in the utterance.
        tokenizer: gives the text.
    Returns:
        ``hyp`` itself when the frames add no token, else a :class:`GreedyHypothesis` with
        ``log_prob`` = the committed score plus the new frames' best-path log-probability.
    """
    if len(log_probs) == 0:
        return hyp
    best, ids = log_probs.max(dim=-1)
    new = collapse_path(ids.tolist(), tokenizer.blank_id, prev)
    if not new:
        return hyp
    tokens = (*hyp.token_ids, *(token for token, _ in new))
    frames = (*hyp.frames, *(offset + frame for _, frame in new))
    base = hyp.log_prob if isinstance(hyp, GreedyHypothesis) else hyp.score
    score = base + float(best.sum())
    return GreedyHypothesis(tokens, frames, tokenizer.decode(list(tokens)), score)


def stream_decoder(decoder: Decoder) -> StreamDecoder:
    """The streaming form of a built decoder (greedy or beam).

    Raises:
        StreamingError: another decoder (the KenLM decoder cannot be advanced chunk by chunk).
    """
    if isinstance(decoder, GreedyDecoder):
        return GreedyStream(decoder.tokenizer)
    if isinstance(decoder, BeamDecoder):
        if isinstance(decoder.lm, torch.nn.Module):
            decoder.lm.to("cpu")
        return BeamStream(decoder)
    raise StreamingError(
        f"streaming supports the greedy and beam decoders, not {type(decoder).__name__}"
    )
