"""The scoring interface every language model offers the decoder, batched over hypotheses.

Token ids are the acoustic model's (its tokenizer's vocabulary). Id 0 is the CTC blank, which
the acoustic model never emits as text, so the LM reuses it as the sentence boundary: fed as
input it is ``<s>``, predicted as output it is ``</s>`` (``bos_id == eos_id == 0``). The LM's
output distribution therefore covers exactly the acoustic model's vocabulary, with
``log_probs[:, 0]`` the log-probability that the sentence ends here.

A :class:`LMState` describes B prefixes (hypotheses): the model's recurrent tensors, all
batch-first, and the cached log-probabilities of the next token given each prefix. Typical
decoder use::

    state = lm.initial_state(B, device)          # B empty prefixes ("<s>" consumed)
    lp = state.log_probs                         # (B, vocab): P(first token)
    lp, state = lm.step(tokens, state)           # append tokens (B,) to the B prefixes
    state = lm.select_state(state, keep)         # beam pruning / reordering, keep: (n,)
    state = lm.concat_states([s1, s2])           # merge cached states into one batch
    end = lm.end_score(state)                    # (B,) log P(</s> | prefix)

All log-probabilities are natural logarithms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asr.errors import AsrError
from asr.text.tokenizer import vocab_difference

BOUNDARY_ID = 0  # the CTC blank id, reused as <s> (input) and </s> (output)


class LMError(AsrError):
    """A language model cannot be loaded, used with this tokenizer, or given these inputs."""


@dataclass(frozen=True)
class LMState:
    """The LM state of B prefixes; every tensor has the batch in dimension 0.

    Attributes:
        tensors: model-specific recurrent tensors, each ``(B, ...)`` (e.g. LSTM ``h`` and ``c``
            of shape ``(B, layers, hidden)``).
        log_probs: ``(B, vocab)`` float32 log P(next token | prefix); column 0 is ``</s>``.
    """

    tensors: tuple[torch.Tensor, ...]
    log_probs: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.log_probs.shape[0])


class LanguageModel(ABC):
    """Batched token-level LM over a tokenizer's vocabulary (see the module docstring)."""

    vocab: list[str]  # the tokenizer vocabulary the LM was trained on (vocab[0] = "<blank>")
    bos_id: int = BOUNDARY_ID
    eos_id: int = BOUNDARY_ID

    @property
    def vocab_size(self) -> int:
        """Size of the output distribution (= the acoustic model's vocabulary size)."""
        return len(self.vocab)

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        """State of ``batch_size`` empty prefixes (``<s>`` already consumed)."""

    @abstractmethod
    def step(self, tokens: torch.Tensor, state: LMState) -> tuple[torch.Tensor, LMState]:
        """Append ``tokens`` ``(B,)`` to the B prefixes of ``state`` in one batched forward.

        Returns:
            ``(log_probs, new_state)``: ``(B, vocab)`` log P(next token | prefix + token) and
            the state of the extended prefixes (``new_state.log_probs is log_probs``).
        """

    def select_state(self, state: LMState, index: torch.Tensor) -> LMState:
        """The states of prefixes ``index`` ``(n,)`` (repeats allowed): beam pruning/reordering."""
        index = index.to(state.log_probs.device, torch.long)
        return LMState(
            tuple(t.index_select(0, index) for t in state.tensors),
            state.log_probs.index_select(0, index),
        )

    def concat_states(self, states: Sequence[LMState]) -> LMState:
        """One state holding the prefixes of ``states`` one after the other."""
        if not states:
            raise LMError("concat_states needs at least one state")
        tensors = tuple(torch.cat(parts, 0) for parts in zip(*(s.tensors for s in states)))
        return LMState(tensors, torch.cat([s.log_probs for s in states], 0))

    def end_score(self, state: LMState) -> torch.Tensor:
        """``(B,)`` log P(</s> | prefix) of each prefix."""
        return state.log_probs[:, self.eos_id]

    @torch.no_grad()
    def score_sentences(self, sentences: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(N,)`` log P(sentence) of whole token-id sentences, ``</s>`` included.

        The default runs :meth:`step` over the padded batch; models override it with a faster
        teacher-forced forward.
        """
        device = self.initial_state(1).log_probs.device
        state = self.initial_state(len(sentences), device)
        total = torch.zeros(len(sentences), dtype=torch.float64, device=device)
        longest = max((len(s) for s in sentences), default=0)
        for t in range(longest + 1):
            tokens = [s[t] if t < len(s) else self.eos_id for s in sentences]
            target = torch.tensor(tokens, device=device)
            live = torch.tensor([t <= len(s) for s in sentences], device=device)
            gathered = state.log_probs.gather(1, target[:, None])[:, 0].double()
            total += torch.where(live, gathered, torch.zeros_like(gathered))
            if t < longest:
                _, state = self.step(target, state)
        return total.cpu()

    def check_compatible(self, tokenizer) -> None:
        """Raise :class:`LMError` unless ``tokenizer`` has exactly this LM's vocabulary.

        Args:
            tokenizer: an :class:`asr.text.tokenizer.Tokenizer` (or anything with ``vocab``).
        """
        diff = vocab_difference(self.vocab, tokenizer.vocab)
        if diff is not None:
            raise LMError(
                f"the language model's tokens do not match the acoustic model's tokenizer "
                f"({type(tokenizer).__name__}, {len(tokenizer.vocab)} symbols): {diff}"
            )
