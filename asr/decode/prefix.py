"""Pure tensor helpers of CTC prefix beam search: hashing, extension, merging and pruning.

Beams are tensorised: for ``B`` utterances and ``K`` beams every field is a ``(B, K)`` tensor.
A prefix (a collapsed token sequence) is identified by a 64-bit rolling hash; two beams of the
same utterance with the same hash are the same prefix. All probabilities are natural logs.

CTC prefix recursion for one frame with log-probabilities ``lp (vocab,)`` and a prefix ``y``
ending in token ``l`` with blank-ending and non-blank-ending log-probabilities ``pb, pnb``:

* staying ``y``:  ``pb' = lse(pb, pnb) + lp[blank]``, ``pnb' = pnb + lp[l]`` (repeat collapsed);
* extending ``y + c``: ``pnb' = (pb if c == l else lse(pb, pnb)) + lp[c]``, ``pb' = -inf``.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG_INF = float("-inf")
HASH_MULTIPLIER = 0x100000001B3  # FNV-64 prime; int64 arithmetic wraps modulo 2**64
HASH_OFFSET = 1469598103934665603  # hash of the empty prefix


def extend_hash(hashes: Tensor, tokens: Tensor) -> Tensor:
    """Hash of ``prefix + token`` from the prefix hash (wrapping int64 arithmetic).

    Args:
        hashes: ``(...)`` int64 prefix hashes.
        tokens: token ids broadcastable against ``hashes``.
    Returns:
        the extended hashes, broadcast shape.
    """
    return (hashes ^ (tokens.long() + 1)) * HASH_MULTIPLIER


def logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) + exp(b))`` that is ``-inf`` (not NaN) when both are ``-inf``."""
    return torch.logaddexp(a, b)


def stay_update(
    pb: Tensor, pnb: Tensor, last: Tensor, frame_lp: Tensor, blank_id: int = 0
) -> tuple[Tensor, Tensor]:
    """Probabilities of the existing prefixes after one more frame.

    Args:
        pb, pnb: ``(B, K)`` blank- and non-blank-ending log-probabilities.
        last: ``(B, K)`` last token of each prefix (``blank_id`` for the empty prefix).
        frame_lp: ``(B, V)`` this frame's log-probabilities.
        blank_id: the blank's index.
    Returns:
        ``(pb', pnb')``, each ``(B, K)``.
    """
    total = logaddexp(pb, pnb)
    new_pb = total + frame_lp[:, blank_id : blank_id + 1]
    repeat = frame_lp.gather(1, last)
    new_pnb = torch.where(last == blank_id, torch.full_like(pnb, NEG_INF), pnb + repeat)
    return new_pb, new_pnb


def frame_candidates(
    frame_lp: Tensor, top_k: int, min_logp: float | None, blank_id: int = 0
) -> tuple[Tensor, Tensor]:
    """The tokens each utterance may emit at this frame (per-frame token pruning).

    Keeps the ``top_k`` best non-blank tokens and drops those below ``min_logp``, except the
    frame's most likely symbol (when that is the blank, a frame with no token above
    ``min_logp`` extends no prefix).

    Args:
        frame_lp: ``(B, V)`` log-probabilities.
        top_k: candidates per frame, at most ``V - 1``.
        min_logp: threshold on a token's log-probability (None: no threshold).
        blank_id: the blank's index.
    Returns:
        ``tokens (B, C)`` long and their log-probabilities ``(B, C)`` (``-inf`` when pruned).
    """
    masked = frame_lp.clone()
    masked[:, blank_id] = NEG_INF
    lp, tokens = masked.topk(min(top_k, frame_lp.shape[1] - 1), dim=1)
    if min_logp is not None:
        drop = lp < min_logp
        drop[:, 0] &= lp[:, 0] < frame_lp[:, blank_id]  # keep the frame's argmax (as pyctcdecode)
        lp = lp.masked_fill(drop, NEG_INF)
    return tokens, lp


def extend_update(
    pb: Tensor, pnb: Tensor, last: Tensor, tokens: Tensor, token_lp: Tensor
) -> Tensor:
    """Non-blank-ending log-probability of every extension ``prefix k + token c``.

    Args:
        pb, pnb, last: ``(B, K)`` beam fields.
        tokens, token_lp: ``(B, C)`` this frame's candidate tokens and log-probabilities.
    Returns:
        ``(B, K, C)`` log-probabilities (a repeated token extends only blank-ending paths).
    """
    total = logaddexp(pb, pnb)[:, :, None]
    same = tokens[:, None, :] == last[:, :, None]
    base = torch.where(same, pb[:, :, None], total)
    return base + token_lp[:, None, :]


def merge_extensions(
    beams: tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor],
    tokens: Tensor,
    tok_lp: Tensor,
) -> tuple[Tensor, Tensor]:
    """Fold extensions that equal an existing prefix into that prefix.

    Extension ``prefix i + c`` equals beam ``j`` exactly when ``j``'s parent prefix is ``i``
    (``parent_hash[j] == hash[i]``) and ``c == last[j]``. Beams hold distinct prefixes, so each
    beam has at most one such extension; this costs ``O(K^2 + K C)`` per utterance instead of
    comparing all ``K C`` extensions with all ``K`` beams.

    Args:
        beams: ``(pb, pnb, last, hash, parent_hash, valid)``, each ``(B, K)``: the beams before
            this frame (``parent_hash`` of the empty prefix must match no hash).
        tokens, tok_lp: ``(B, C)`` this frame's candidate tokens and log-probabilities.
    Returns:
        ``add_pnb (B, K)``: log-probability to add (logaddexp) to each beam's ``pnb``
        (``-inf`` when nothing merges) and ``merged (B, K * C)`` bool: extension ``i * C + c``
        was folded into a beam.
    """
    pb, pnb, last, hashes, parent_hash, valid = beams
    batch, size = pb.shape
    ncand = tokens.shape[1]
    match = (hashes[:, :, None] == parent_hash[:, None, :]) & valid[:, :, None]  # (B, i, j)
    found = match.any(1) & valid
    parent = match.to(torch.uint8).argmax(1)  # (B, j)
    at = tokens[:, None, :] == last[:, :, None]  # (B, j, C)
    pos = at.to(torch.uint8).argmax(2)
    token_lp = tok_lp.gather(1, pos).masked_fill(~at.any(2), NEG_INF)
    ok = found & (token_lp > NEG_INF)
    same = last.gather(1, parent) == last
    base = torch.where(same, pb.gather(1, parent), logaddexp(pb, pnb).gather(1, parent))
    add = (base + token_lp).masked_fill(~ok, NEG_INF)
    flat = torch.where(ok, parent * ncand + pos, torch.full_like(pos, size * ncand))
    merged = torch.zeros(batch, size * ncand + 1, dtype=torch.bool, device=pb.device)
    merged.scatter_(1, flat, True)
    return add, merged[:, :-1]


def prune_scores(scores: Tensor, beam_size: int, threshold: float | None) -> tuple[Tensor, Tensor]:
    """Beam pruning: the ``beam_size`` best candidates of each row within ``threshold`` of the best.

    Args:
        scores: ``(B, N)`` candidate scores (``-inf``: no candidate).
        beam_size: beams kept per row (``N`` may be smaller: all kept).
        threshold: drop candidates more than this below the row's best (None: keep).
    Returns:
        ``(scores (B, k), index (B, k))`` sorted best first, ``k = min(beam_size, N)``;
        pruned slots have score ``-inf``.
    """
    top, index = scores.topk(min(beam_size, scores.shape[1]), dim=1)
    if threshold is not None:
        top = top.masked_fill(top < top[:, :1] - threshold, NEG_INF)
    return top, index


def word_start_table(vocab: list[str], blank_id: int = 0) -> Tensor:
    """``(V, V)`` 0/1 float: appending token ``c`` after token ``l`` starts a new word.

    Row ``blank_id`` stands for the empty prefix. Sentencepiece pieces starting with ``"▁"``
    start words; otherwise (characters) a non-space token after a space or at the start does.
    """
    size = len(vocab)
    table = torch.zeros(size, size)
    pieces = any(tok.startswith("\u2581") for tok in vocab)
    for c, tok in enumerate(vocab):
        if c == blank_id or tok == " ":
            continue
        if pieces:
            table[:, c] = float(tok.startswith("\u2581"))
            table[blank_id, c] = 1.0
        else:
            for ell, prev in enumerate(vocab):
                table[ell, c] = float(ell == blank_id or prev == " ")
    return table
