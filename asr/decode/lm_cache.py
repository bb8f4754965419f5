"""LM states of recently seen prefixes, so the beam search computes each one once.

A prefix that enters the beams gets its LM state from one batched ``LanguageModel.step`` over
all new prefixes of the frame. If it is pruned and later re-created (the same parent extended by
the same token a few frames on), the cached state is reused. The cache holds at most ``capacity``
rows and is emptied when full (the live beams carry their own copies, so nothing is lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from asr.lm.base import LanguageModel, LMState


class LMStateCache:
    """Maps (utterance, prefix hash) to the prefix's LM state.

    Args:
        lm: the language model whose states are cached.
        capacity: rows kept (0: no caching; every request is computed).
    """

    def __init__(self, lm: LanguageModel, capacity: int) -> None:
        self.lm = lm
        self.capacity = capacity
        self.chunks: list[LMState] = []
        self.index: dict[tuple[int, int], tuple[int, int]] = {}
        self.rows = 0
        self.hits = 0

    def states(
        self, utt: Tensor, hashes: Tensor, tokens: Tensor, parents: LMState
    ) -> tuple[LMState, int]:
        """States of ``n`` prefixes ``parent + token``.

        Args:
            utt: ``(n,)`` utterance index of each prefix (keys are per utterance).
            hashes: ``(n,)`` int64 prefix hashes.
            tokens: ``(n,)`` the last token of each prefix.
            parents: the ``n`` parent prefixes' states.
        Returns:
            ``(state of the n prefixes, number computed by the LM now)``.
        """
        if self.capacity == 0:
            return self.lm.step(tokens, parents)[1], int(tokens.numel())
        keys = list(zip(utt.tolist(), hashes.tolist()))
        found = [self.index.get(k) for k in keys]
        miss = [i for i, f in enumerate(found) if f is None]
        if len(miss) == len(keys):
            fresh = self.lm.step(tokens, parents)[1]
            self._store(keys, fresh)
            return fresh, len(keys)
        parts: list[LMState] = []
        source = [0] * len(keys)
        offset = 0
        by_chunk: dict[int, list[int]] = {}
        for i, f in enumerate(found):
            if f is not None:
                by_chunk.setdefault(f[0], []).append(i)
        for chunk, members in by_chunk.items():
            rows = torch.tensor([found[i][1] for i in members], device=tokens.device)
            parts.append(self.lm.select_state(self.chunks[chunk], rows))
            for j, i in enumerate(members):
                source[i] = offset + j
            offset += len(members)
        if miss:  # after reading the hits: storing may empty the cache
            miss_t = torch.tensor(miss, device=tokens.device)
            fresh = self.lm.step(tokens[miss_t], self.lm.select_state(parents, miss_t))[1]
            self._store([keys[i] for i in miss], fresh)
            parts.append(fresh)
            for j, i in enumerate(miss):
                source[i] = offset + j
        self.hits += len(keys) - len(miss)
        joined = self.lm.concat_states(parts) if len(parts) > 1 else parts[0]
        return self.lm.select_state(joined, torch.tensor(source, device=tokens.device)), len(miss)

    def _store(self, keys: list[tuple[int, int]], state: LMState) -> None:
        if self.rows + len(keys) > self.capacity:
            self.chunks, self.index, self.rows = [], {}, 0
            if len(keys) > self.capacity:
                return
        chunk = len(self.chunks)
        self.chunks.append(state)
        for row, key in enumerate(keys):
            self.index[key] = (chunk, row)
        self.rows += len(keys)
