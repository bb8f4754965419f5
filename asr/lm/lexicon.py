"""A word lexicon on top of any token-level LM: words outside the list pay a penalty.

:class:`LexiconLM` wraps a :class:`asr.lm.base.LanguageModel` over a character vocabulary and
follows every prefix through a letter trie of the lexicon's words. A word pays ``penalty``
(natural log, <= 0) once, at the token where it leaves the lexicon: the letter that no lexicon
word continues with, or the word boundary (space or ``</s>``) after a prefix that is not itself
a word. Everything else is the wrapped LM's log-probability, so with ``penalty = 0`` the
wrapper scores exactly like the LM, and with a large penalty the beam search keeps to the
lexicon's words (a soft or hard lexicon constraint on the LSTM search, like pyctcdecode's
unigram list for KenLM).

Example::

    lm = LexiconLM(lstm, ["THE", "CAT"], tokenizer, penalty=-5.0)
    hyps = beam_search(log_probs, lengths, BeamSearchConfig(alpha=1.0), lm, tokenizer)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from asr.lm.base import BOUNDARY_ID, LanguageModel, LMError, LMState

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer

ROOT = 0  # trie node of an empty word (after <s> or a space)


def lexicon_tables(
    words: Sequence[str], vocab: Sequence[str], space: str = " "
) -> tuple[torch.Tensor, torch.Tensor]:
    """The trie of ``words`` over a character vocabulary, as two dense tables.

    Args:
        words: the lexicon (upper-case words in the tokenizer's characters; others are skipped).
        vocab: the tokenizer vocabulary (``vocab[0]`` the blank, used as ``</s>``; ``space``
            separates words).
        space: the word separator symbol (default ``" "``).
    Returns:
        ``(next_node, leaves)``, both ``(nodes + 1, vocab)``: the node after each token (a
        boundary returns to :data:`ROOT`; the last node is the out-of-lexicon sink) and True
        where that token makes the current word leave the lexicon.
    Raises:
        LMError: the vocabulary has no ``space`` symbol, or no word fits the vocabulary.
    """
    index = {sym: i for i, sym in enumerate(vocab)}
    if space not in index:
        raise LMError(f"a lexicon needs a word separator {space!r} in the vocabulary")
    children: list[dict[int, int]] = [{}]
    is_word = [False]
    for word in words:
        ids = [index.get(ch) for ch in word]
        if not ids or None in ids or index[space] in ids:
            continue
        node = ROOT
        for tok in ids:
            if tok not in children[node]:
                children[node][tok] = len(children)
                children.append({})
                is_word.append(False)
            node = children[node][tok]
        is_word[node] = True
    if len(children) == 1:
        raise LMError("no lexicon word can be spelt with the tokenizer's symbols")
    sink, size = len(children), len(vocab)
    next_node = torch.full((sink + 1, size), sink, dtype=torch.long)
    leaves = torch.zeros((sink + 1, size), dtype=torch.bool)
    boundary = [BOUNDARY_ID, index[space]]
    for node, kids in enumerate(children):
        leaves[node] = True  # a letter no lexicon word continues with
        for tok, child in kids.items():
            next_node[node, tok] = child
            leaves[node, tok] = False
        leaves[node, boundary] = node != ROOT and not is_word[node]
    next_node[:, boundary] = ROOT
    return next_node, leaves  # the sink row: no token leaves again


class LexiconLM(LanguageModel):
    """``lm`` plus ``penalty`` for every word outside ``words`` (see the module docstring).

    Args:
        lm: the token-level LM to wrap (e.g. the character LSTM).
        words: the lexicon.
        tokenizer: the acoustic model's tokenizer (a character vocabulary with a space).
        penalty: natural-log score of a word outside the lexicon (default -5.0; 0: none).
    """

    def __init__(
        self, lm: LanguageModel, words: Sequence[str], tokenizer: Tokenizer, penalty: float = -5.0
    ) -> None:
        if not penalty <= 0:
            raise LMError(f"the lexicon penalty must be <= 0, got {penalty}")
        lm.check_compatible(tokenizer)
        self.lm, self.vocab, self.penalty = lm, list(tokenizer.vocab), float(penalty)
        self.next_node, leaves = lexicon_tables(words, self.vocab)
        self.node_penalty = leaves.float() * self.penalty  # (nodes + 1, vocab)

    def _wrap(self, base: LMState, node: torch.Tensor) -> LMState:
        penalty = self.node_penalty.to(base.log_probs.device)[node]
        return LMState((*base.tensors, base.log_probs, node), base.log_probs + penalty)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        base = self.lm.initial_state(batch_size, device)
        root = torch.full((batch_size,), ROOT, dtype=torch.long, device=base.log_probs.device)
        return self._wrap(base, root)

    def step(self, tokens: torch.Tensor, state: LMState) -> tuple[torch.Tensor, LMState]:
        *tensors, base_log_probs, node = state.tensors
        _, base = self.lm.step(tokens, LMState(tuple(tensors), base_log_probs))
        table = self.next_node.to(node.device)
        new = self._wrap(base, table[node, tokens.to(node.device, torch.long)])
        return new.log_probs, new
