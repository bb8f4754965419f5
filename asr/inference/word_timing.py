"""Word timings and confidences from a CTC hypothesis and its log-probabilities.

A decoder gives, per emitted token, the frame where it is emitted; :func:`token_spans` extends
each token over the following frames whose argmax stays on it, and :func:`words_from_spans`
groups tokens into words (at the space token or a ``▁`` piece) with their times and the mean
posterior of their tokens over their frames as confidence.

Example::

    spans = token_spans(hyp.token_ids, hyp.frames, log_probs)   # log_probs: (frames, vocab)
    words = words_from_spans(spans, tokenizer, frame_shift_s=0.02, offset_s=chunk_start)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer


@dataclasses.dataclass(frozen=True)
class Word:
    """A recognised word with its time span (seconds from the start of the item)."""

    text: str  # the word
    start: float  # first frame of its first token, seconds
    end: float  # end of the last frame of its last token, seconds
    confidence: float  # mean posterior of its tokens over their frames, in [0, 1]


@dataclasses.dataclass(frozen=True)
class TokenSpan:
    """One emitted token and the frames it occupies."""

    token_id: int  # vocabulary index
    start: int  # first frame (where the decoder emits it)
    end: int  # one past its last frame (the argmax run stays on it until here), > start
    prob_sum: float  # sum over [start, end) of the token's posterior


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
