"""CTC prefix beam search shallow-fused with a token-level language model, batched in torch.

All utterances of a batch and all their beams advance together, frame by frame, as ``(B, K)``
tensors (see :mod:`asr.decode.prefix` for the recursion). A hypothesis is ranked by::

    score = log P_ctc(prefix) + alpha * log P_LM(prefix) + beta * length

with ``length`` in tokens or words. The LM (any :class:`asr.lm.base.LanguageModel`) is asked
once per frame, in one batched ``step``, for the states of the prefixes that entered the beams
at that frame; a prefix's state is computed once and then carried with it (and kept in a small
cache, so a prefix pruned and found again is not recomputed). ``log P_LM(</s> | prefix)`` is
added before the final ranking.

Example::

    hyps = beam_search(log_probs, lengths, BeamSearchConfig(beam_size=16, alpha=0.5), lm=lm)
    best_text = hyps[0][0].text
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from asr.decode import prefix as P
from asr.decode.lm_cache import LMStateCache
from asr.errors import AsrError

if TYPE_CHECKING:
    from asr.lm.base import LanguageModel, LMState
    from asr.text.tokenizer import Tokenizer


NO_PARENT = 0  # parent hash of the empty prefix (a real hash is 0 with probability 2**-64)


class BeamSearchError(AsrError):
    """Beam search cannot run with these inputs (shapes, LM/vocabulary mismatch)."""


@dataclasses.dataclass(frozen=True)
class BeamSearchConfig:
    """Options of :func:`beam_search` (``conf/decode/beam.yaml``)."""

    beam_size: int = 16  # prefixes kept per utterance after every frame
    token_top_k: int = 32  # at most this many non-blank tokens may start at a frame
    token_min_logp: float | None = -10.0  # ...and only those above this log-prob (best kept)
    beam_threshold: float | None = 25.0  # drop beams this far below the best score (None: off)
    blank_skip_threshold: float | None = None  # frames with log P(blank) above this only
    # extend no prefix (e.g. -0.001; None: never skip)
    alpha: float = 0.5  # LM weight
    beta: float = 0.0  # length bonus per length unit
    length_unit: Literal["tokens", "words"] = "tokens"  # what beta counts
    nbest: int = 1  # hypotheses returned per utterance
    lm_cache_size: int = 4096  # LM states of recent prefixes kept for reuse (0: no cache)

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.token_top_k < 1 or self.nbest < 1:
            raise ValueError("beam_size, token_top_k and nbest must be >= 1")
        if self.nbest > self.beam_size:
            raise ValueError(f"nbest ({self.nbest}) cannot exceed beam_size ({self.beam_size})")
        if self.length_unit not in ("tokens", "words"):
            raise ValueError(f"length_unit must be 'tokens' or 'words', got {self.length_unit!r}")
        if self.beam_threshold is not None and self.beam_threshold <= 0:
            raise ValueError(f"beam_threshold must be > 0, got {self.beam_threshold}")
        if self.lm_cache_size < 0:
            raise ValueError(f"lm_cache_size must be >= 0, got {self.lm_cache_size}")


@dataclasses.dataclass(frozen=True)
class BeamHypothesis:
    """One of the n-best hypotheses of an utterance."""

    token_ids: tuple[int, ...]  # emitted tokens
    frames: tuple[int, ...]  # per token, the output frame where it was first emitted
    text: str | None  # tokenizer.decode(token_ids), or None without a tokenizer
    score: float  # acoustic_score + alpha * lm_score + beta * length
    acoustic_score: float  # log P_ctc(token_ids | audio), summed over alignments
    lm_score: float  # log P_LM(token_ids </s>) (0 without an LM)
    length: float  # length in the configured unit (tokens or words)


@dataclasses.dataclass(frozen=True)
class _Beams:
    """K beams of B utterances; every field ``(B, K)``."""

    pb: Tensor  # log P(prefix, last frame blank)
    pnb: Tensor  # log P(prefix, last frame non-blank)
    lm: Tensor  # log P_LM(prefix) (unweighted)
    length: Tensor  # length in the configured unit
    last: Tensor  # last token (blank id for the empty prefix)
    hash: Tensor  # prefix hash (int64)
    parent_hash: Tensor  # hash of the prefix without its last token (empty prefix: matches none)
    state: LMState | None  # LM states, row b * K + k


def _initial_beams(
    batch: int, beams: int, dtype: torch.dtype, device: torch.device, lm: LanguageModel | None
) -> _Beams:
    pb = torch.full((batch, beams), P.NEG_INF, dtype=dtype, device=device)
    pb[:, 0] = 0.0
    zeros = torch.zeros(batch, beams, dtype=dtype, device=device)
    long = torch.zeros(batch, beams, dtype=torch.long, device=device)
    state = lm.initial_state(batch * beams, device) if lm is not None else None
    pnb = torch.full_like(pb, P.NEG_INF)
    return _Beams(pb, pnb, zeros, zeros, long, long + P.HASH_OFFSET, long + NO_PARENT, state)


class _Search:
    """One batched search: holds the config, the LM and the per-frame back-pointers."""

    def __init__(
        self, cfg: BeamSearchConfig, lm: LanguageModel | None, vocab_size: int, word_table: Tensor
    ) -> None:
        self.cfg = cfg
        self.lm = lm
        self.vocab_size = vocab_size
        self.word_table = word_table  # (V, V) length increment of appending c after l
        self.history: list[tuple[Tensor, Tensor]] = []  # per frame: parent (B,K), token (B,K)
        self.history_frames: list[int] = []
        self.cache = LMStateCache(lm, cfg.lm_cache_size) if lm is not None else None
        self.lm_steps = 0  # batched LM calls made
        self.lm_rows = 0  # prefixes scored by the LM

    def stay_only(self, beams: _Beams, frame_lp: Tensor, active: Tensor) -> _Beams:
        """A frame on which no prefix is extended (blank-dominated or past the end)."""
        pb, pnb = P.stay_update(beams.pb, beams.pnb, beams.last, frame_lp)
        keep = active[:, None]
        return dataclasses.replace(
            beams, pb=torch.where(keep, pb, beams.pb), pnb=torch.where(keep, pnb, beams.pnb)
        )

    def candidates(
        self, beams: _Beams, frame_lp: Tensor, keep: Tensor, tokens: Tensor, tok_lp: Tensor
    ) -> tuple[Tensor, ...]:
        """Every beam staying (columns ``0..K-1``) and extended by every token (``K + k C + c``).

        Returns:
            ``(pb, pnb, lm, length, hash)`` of the candidates, each ``(B, K + K C)``.
        """
        batch, size = beams.pb.shape
        stay_pb, stay_pnb = P.stay_update(beams.pb, beams.pnb, beams.last, frame_lp)
        stay_pb = torch.where(keep, stay_pb, beams.pb)
        stay_pnb = torch.where(keep, stay_pnb, beams.pnb)
        ext_pnb = P.extend_update(beams.pb, beams.pnb, beams.last, tokens, tok_lp)
        ext_hash = P.extend_hash(beams.hash[:, :, None], tokens[:, None, :])
        valid = P.logaddexp(beams.pb, beams.pnb) > P.NEG_INF
        add, merged = P.merge_extensions(
            (beams.pb, beams.pnb, beams.last, beams.hash, beams.parent_hash, valid), tokens, tok_lp
        )
        stay_pnb = P.logaddexp(stay_pnb, add)
        ext_pnb = ext_pnb.view(batch, -1).masked_fill(merged, P.NEG_INF)
        increment = self.word_table[beams.last[:, :, None], tokens[:, None]]  # (B, K, C)
        ext_len = beams.length[:, :, None] + increment
        ext_lm = beams.lm[:, :, None].expand(-1, -1, tokens.shape[1])
        if beams.state is not None:
            lm_next = beams.state.log_probs.view(batch, size, -1).to(ext_lm.dtype)
            ext_lm = ext_lm + lm_next.gather(2, tokens[:, None, :].expand(-1, size, -1))
        return (
            torch.cat([stay_pb, torch.full_like(ext_pnb, P.NEG_INF)], 1),
            torch.cat([stay_pnb, ext_pnb], 1),
            torch.cat([beams.lm, ext_lm.reshape(batch, -1)], 1),
            torch.cat([beams.length, ext_len.reshape(batch, -1)], 1),
            torch.cat([beams.hash, ext_hash.reshape(batch, -1)], 1),
        )

    def advance(
        self,
        beams: _Beams,
        frame_lp: Tensor,
        active: Tensor,
        tokens: Tensor,
        tok_lp: Tensor,
        frame: int,
    ) -> _Beams:
        """One frame of prefix beam search.

        Args:
            beams: the current beams.
            frame_lp: ``(B, V)`` this frame's log-probabilities.
            active: ``(B,)`` the frame is inside the utterance.
            tokens, tok_lp: ``(B, C)`` the tokens that may extend prefixes at this frame and
                their log-probabilities (``-inf``: not allowed; see :func:`_candidates`).
            frame: the frame index (recorded for token times).
        """
        cfg, (batch, size), ncand = self.cfg, beams.pb.shape, tokens.shape[1]
        keep = active[:, None]
        pb, pnb, lm, length, hashes = self.candidates(beams, frame_lp, keep, tokens, tok_lp)
        scores = P.logaddexp(pb, pnb) + cfg.alpha * lm + cfg.beta * length
        top, idx = P.prune_scores(scores, size, cfg.beam_threshold)
        idx = torch.where(keep, idx, torch.arange(size, device=idx.device).expand(batch, -1))
        dead = (top == P.NEG_INF) & keep
        is_ext = idx >= size
        parent = torch.where(is_ext, (idx - size).div(ncand, rounding_mode="floor"), idx)
        new_tok = tokens.gather(1, ((idx - size) % ncand).clamp(min=0))
        token = torch.where(is_ext, new_tok, torch.full_like(new_tok, -1))
        self.history.append((parent, token))
        self.history_frames.append(frame)
        new_hash = hashes.gather(1, idx)
        return _Beams(
            pb=pb.gather(1, idx).masked_fill(dead, P.NEG_INF),
            pnb=pnb.gather(1, idx).masked_fill(dead, P.NEG_INF),
            lm=lm.gather(1, idx),
            length=length.gather(1, idx),
            last=torch.where(is_ext, new_tok, beams.last.gather(1, parent)),
            hash=new_hash,
            parent_hash=torch.where(
                is_ext, beams.hash.gather(1, parent), beams.parent_hash.gather(1, parent)
            ),
            state=self.new_states(beams, parent, token, new_hash),
        )

    def new_states(
        self, beams: _Beams, parent: Tensor, token: Tensor, hashes: Tensor
    ) -> LMState | None:
        """LM states of the new beams: the parent's, or (for extensions) one batched step."""
        if beams.state is None or self.lm is None or self.cache is None:
            return None
        batch, size = parent.shape
        rows = (torch.arange(batch, device=parent.device)[:, None] * size + parent).view(-1)
        state = self.lm.select_state(beams.state, rows)
        ext = (token.view(-1) >= 0).nonzero().view(-1)
        if ext.numel() == 0:
            return state
        utt = ext.div(size, rounding_mode="floor")
        fresh, computed = self.cache.states(
            utt, hashes.view(-1)[ext], token.view(-1)[ext], self.lm.select_state(state, ext)
        )
        self.lm_steps += int(computed > 0)
        self.lm_rows += computed
        mapping = torch.arange(batch * size, device=parent.device)
        mapping[ext] = batch * size + torch.arange(ext.numel(), device=parent.device)
        return self.lm.select_state(self.lm.concat_states([state, fresh]), mapping)

    def backtrack(self, order: Tensor) -> tuple[list[list[list[int]]], list[list[list[int]]]]:
        """Token ids and their frames of beams ``order (B, n)`` of the final frame."""
        batch, n = order.shape
        if not self.history:
            empty: list[list[list[int]]] = [[[] for _ in range(n)] for _ in range(batch)]
            return empty, [[[] for _ in range(n)] for _ in range(batch)]
        idx, picked = order, []
        for parent, token in reversed(self.history):
            picked.append(token.gather(1, idx))
            idx = parent.gather(1, idx)
        mat = torch.stack(picked[::-1], dim=2).cpu()  # (B, n, R)
        frames = torch.tensor(self.history_frames)
        tokens_out, frames_out = [], []
        for b in range(batch):
            tok_b, fr_b = [], []
            for j in range(n):
                row = mat[b, j]
                emitted = row >= 0
                tok_b.append(row[emitted].tolist())
                fr_b.append(frames[emitted].tolist())
            tokens_out.append(tok_b)
            frames_out.append(fr_b)
        return tokens_out, frames_out


def _check_inputs(
    log_probs: Tensor,
    lm: LanguageModel | None,
    tokenizer: Tokenizer | None,
) -> None:
    if log_probs.dim() != 3:
        raise BeamSearchError(
            f"log_probs must be (batch, frames, vocab), got {tuple(log_probs.shape)}"
        )
    if tokenizer is not None and tokenizer.vocab_size != log_probs.shape[2]:
        raise BeamSearchError(
            f"the tokenizer has {tokenizer.vocab_size} symbols but log_probs has "
            f"{log_probs.shape[2]} columns"
        )
    if lm is not None:
        if tokenizer is not None:
            lm.check_compatible(tokenizer)
        if lm.vocab_size != log_probs.shape[2]:
            raise BeamSearchError(
                f"the language model has {lm.vocab_size} tokens but the acoustic model "
                f"{log_probs.shape[2]}: they must share one vocabulary"
            )


@torch.no_grad()
def beam_search(
    log_probs: Tensor,
    lengths: Tensor | None = None,
    cfg: BeamSearchConfig | None = None,
    lm: LanguageModel | None = None,
    tokenizer: Tokenizer | None = None,
    stats: dict | None = None,
) -> list[list[BeamHypothesis]]:
    """Batched CTC prefix beam search with optional shallow LM fusion.

    Args:
        log_probs: ``(batch, frames, vocab)`` CTC log-probabilities (blank = id 0), any device.
        lengths: ``(batch,)`` valid frames per utterance (default: all frames).
        cfg: search options (default :class:`BeamSearchConfig`).
        lm: language model over the same vocabulary (None: acoustic scores only).
        tokenizer: gives ``text`` and, for ``length_unit="words"``, the word boundaries; its
            vocabulary must match the LM's.
        stats: if given, filled with ``lm_steps``, ``lm_rows`` and ``frames_searched``.
    Returns:
        per utterance, its ``cfg.nbest`` best hypotheses (fewer when fewer prefixes survive),
        best first.
    """
    cfg = cfg or BeamSearchConfig()
    _check_inputs(log_probs, lm, tokenizer)
    batch, frames, vocab = log_probs.shape
    device = log_probs.device
    lp = log_probs.detach()
    if not lp.is_floating_point():
        raise BeamSearchError(f"log_probs must be floating point, got {lp.dtype}")
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long)
    lengths = lengths.to(device).long().clamp(0, frames)
    search = _Search(cfg, lm, vocab, _length_table(cfg, vocab, tokenizer, device, lp.dtype))
    beams = _initial_beams(batch, cfg.beam_size, lp.dtype, device, lm)
    tokens, tok_lp, counts = _candidates(lp, lengths, cfg)
    searched = 0
    for t in range(int(lengths.max()) if batch else 0):
        active = lengths > t
        if counts[t] > 0:
            c = counts[t]
            beams = search.advance(beams, lp[:, t], active, tokens[:, t, :c], tok_lp[:, t, :c], t)
            searched += 1
        else:
            beams = search.stay_only(beams, lp[:, t], active)
    if stats is not None:
        stats.update(lm_steps=search.lm_steps, lm_rows=search.lm_rows, frames_searched=searched)
    return _finish(search, beams, tokenizer)


def _candidates(
    lp: Tensor, lengths: Tensor, cfg: BeamSearchConfig
) -> tuple[Tensor, Tensor, list[int]]:
    """Token pruning for all frames at once.

    Returns:
        ``tokens (B, T, C)`` and ``tok_lp (B, T, C)`` sorted best first (``-inf`` where pruned,
        past the end, or on a skipped blank frame) and, per frame, the number of candidate
        columns any utterance uses (0: no prefix is extended at that frame).
    """
    batch, frames, vocab = lp.shape
    tokens, tok_lp = P.frame_candidates(lp.reshape(-1, vocab), cfg.token_top_k, cfg.token_min_logp)
    tokens, tok_lp = tokens.view(batch, frames, -1), tok_lp.view(batch, frames, -1)
    off = torch.arange(frames, device=lp.device)[None, :] >= lengths[:, None]
    if cfg.blank_skip_threshold is not None:
        off = off | (lp[:, :, 0] > cfg.blank_skip_threshold)
    tok_lp = tok_lp.masked_fill(off[:, :, None], P.NEG_INF)
    counts = (tok_lp > P.NEG_INF).sum(2).amax(0) if batch else torch.zeros(frames)
    return tokens, tok_lp, counts.tolist()


def _length_table(
    cfg: BeamSearchConfig,
    vocab: int,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """``(V, V)`` length increment of appending token c after token l."""
    if cfg.length_unit == "tokens":
        return torch.ones(vocab, vocab, dtype=dtype, device=device)
    if tokenizer is None:
        raise BeamSearchError("length_unit 'words' needs the tokenizer (to find word starts)")
    return P.word_start_table(list(tokenizer.vocab)).to(device, dtype)


def _finish(
    search: _Search, beams: _Beams, tokenizer: Tokenizer | None
) -> list[list[BeamHypothesis]]:
    """Add the end-of-sentence LM score, rank, and build the n-best lists."""
    cfg, (batch, size) = search.cfg, beams.pb.shape
    acoustic = P.logaddexp(beams.pb, beams.pnb)
    lm_total = beams.lm
    if beams.state is not None and search.lm is not None:
        lm_total = lm_total + search.lm.end_score(beams.state).view(batch, size).to(lm_total.dtype)
    score = acoustic + cfg.alpha * lm_total + cfg.beta * beams.length
    score = score.masked_fill(acoustic == P.NEG_INF, P.NEG_INF)
    order = score.topk(min(cfg.nbest, size), dim=1).indices
    tokens, frames = search.backtrack(order)
    fields = [x.gather(1, order).cpu().tolist() for x in (score, acoustic, lm_total, beams.length)]
    out = []
    for b in range(batch):
        hyps = []
        for j in range(order.shape[1]):
            if fields[0][b][j] == P.NEG_INF:
                continue
            ids = tuple(int(i) for i in tokens[b][j])
            text = tokenizer.decode(list(ids)) if tokenizer is not None else None
            hyps.append(
                BeamHypothesis(ids, tuple(frames[b][j]), text, *(float(f[b][j]) for f in fields))
            )
        out.append(hyps)
    return out
