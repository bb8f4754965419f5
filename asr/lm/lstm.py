"""Token-level LSTM language model: embedding, N LSTM layers, optional projection, tied output.

The model reads ``<s> t1 ... tn`` and predicts ``t1 ... tn </s>`` where ``<s>`` and ``</s>``
are both id 0 (see :mod:`asr.lm.base`). It implements :class:`asr.lm.base.LanguageModel`, so
the decoder can use it directly; :meth:`LSTMLM.forward` is the teacher-forced training path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn

from asr.lm.base import LanguageModel, LMError, LMState
from asr.lm.int8 import Int8Linear

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class LSTMLMConfig:
    """Architecture of :class:`LSTMLM` (the vocabulary comes from the tokenizer)."""

    embedding_dim: int = 512  # size of the token embeddings
    hidden_size: int = 512  # LSTM cell size
    num_layers: int = 2  # stacked LSTM layers
    proj_size: int = 0  # LSTM output projection (torch's proj_size; 0: none)
    dropout: float = 0.1  # dropout on embeddings, between layers and before the output layer
    tie_embeddings: bool = True  # output layer reuses the input embedding matrix

    def __post_init__(self) -> None:
        if min(self.embedding_dim, self.hidden_size, self.num_layers) < 1:
            raise ValueError("embedding_dim, hidden_size and num_layers must be >= 1")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ValueError(f"proj_size must lie in [0, hidden_size), got {self.proj_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def output_size(self) -> int:
        """Size of the LSTM's output vectors (the projection size when there is one)."""
        return self.proj_size or self.hidden_size


class LSTMLM(nn.Module, LanguageModel):
    """LSTM LM over ``vocab`` (a tokenizer vocabulary whose id 0 is the sentence boundary).

    Args:
        cfg: the architecture.
        vocab: the tokenizer's symbols; ``len(vocab)`` is the input and output size.
    """

    def __init__(self, cfg: LSTMLMConfig, vocab: Sequence[str]) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab = list(vocab)
        self.int8 = False  # decoding steps on CPU: recurrent products in int8 (asr.lm.int8)
        self._derived_cache: dict[str, tuple[tuple, object]] = {}  # see _derived
        if len(self.vocab) < 2:
            raise LMError(f"vocabulary must have at least 2 symbols, got {len(self.vocab)}")
        self.embedding = nn.Embedding(len(self.vocab), cfg.embedding_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.embedding_dim,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            proj_size=cfg.proj_size,
            batch_first=True,
        )
        out = cfg.output_size
        if cfg.tie_embeddings:
            self.bottleneck = (
                nn.Linear(out, cfg.embedding_dim, bias=False)
                if out != cfg.embedding_dim
                else nn.Identity()
            )
            self.output_bias = nn.Parameter(torch.zeros(len(self.vocab)))
        else:
            self.output = nn.Linear(out, len(self.vocab))
        nn.init.normal_(self.embedding.weight, std=cfg.embedding_dim**-0.5)

    # ---------------------------------------------------------------------------- forward
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output layer: ``(..., output_size)`` LSTM outputs -> ``(..., vocab)`` logits."""
        hidden = self.dropout(hidden)
        if self.cfg.tie_embeddings:
            return nn.functional.linear(
                self.bottleneck(hidden), self.embedding.weight, self.output_bias
            )
        return self.output(hidden)

    def forward(
        self,
        inputs: torch.Tensor,
        hx: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Teacher-forced forward.

        Args:
            inputs: ``(batch, time)`` token ids, each row ``<s> t1 ... tn`` then any padding
                (padding after a sentence does not change its earlier outputs).
            hx: optional initial ``(h, c)`` in torch's layout ``(layers, batch, size)``.

        Returns:
            ``(logits (batch, time, vocab), (h, c))``.
        """
        out, hc = self.lstm(self.dropout(self.embedding(inputs)), hx)
        return self.logits(out), hc

    # ----------------------------------------------------------------- LanguageModel API
    def _zero_hx(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        dtype = self.embedding.weight.dtype
        h = torch.zeros(batch, cfg.num_layers, cfg.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, cfg.num_layers, cfg.hidden_size, device=device, dtype=dtype)
        return h, c

    def _step_hx(
        self, tokens: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, LMState]:
        """One time step for B prefixes, ``hx`` = batch-first ``(h, c)``, explicit LSTM cell maths.

        For a single step this is several times faster on CPU than ``nn.LSTM`` (whose oneDNN
        kernel re-lays out the weights on every call); it computes the same function. The first
        layer's input projection of every token is a table lookup (:meth:`_input_gates`).
        """
        table = self._input_gates().index_select(0, tokens)
        int8 = self._int8_layers() if self.int8 and table.device.type == "cpu" else None
        hs, cs = [], []
        for layer in range(self.cfg.num_layers):
            below = table if layer == 0 else hs[-1]
            gates = self._layer_gates(layer, below, hx[0][:, layer], int8)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * hx[1][:, layer] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if self.cfg.proj_size:
                h = h @ getattr(self.lstm, f"weight_hr_l{layer}").t()
            hs.append(h)
            cs.append(c)
        log_probs = torch.log_softmax(self.logits(hs[-1]).float(), dim=-1)
        state = LMState((torch.stack(hs, 1), torch.stack(cs, 1)), log_probs)
        return log_probs, state

    def _layer_gates(
        self,
        layer: int,
        below: torch.Tensor,
        h_prev: torch.Tensor,
        int8: list[Int8Linear] | None,
    ) -> torch.Tensor:
        """``(B, 4 hidden)`` gate pre-activations of ``layer``. ``below``: layer 0's input
        gates from the token table, else the output of the layer below; ``h_prev``: this
        layer's previous output; ``int8``: :meth:`_int8_layers` or None (float)."""
        if int8 is not None:
            if layer == 0:
                return below + int8[0](h_prev)
            return int8[layer](torch.cat([below.float(), h_prev.float()], 1))
        w_hh = getattr(self.lstm, f"weight_hh_l{layer}")
        if layer == 0:  # in place: ``below`` is a fresh index_select of the table
            return below.addmm_(h_prev, w_hh.t())
        w_ih = getattr(self.lstm, f"weight_ih_l{layer}")
        b_ih, b_hh = (getattr(self.lstm, f"bias_{n}_l{layer}") for n in ("ih", "hh"))
        return torch.addmm(b_ih + b_hh, below, w_ih.t()).addmm_(h_prev, w_hh.t())

    def _derived(self, name: str, tensors: Sequence[torch.Tensor], build: Callable[[], T]) -> T:
        """``build()``, cached under ``name`` until one of ``tensors`` changes (a new storage,
        an in-place update, another dtype or device): tables derived from the weights."""
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        cached = self._derived_cache.get(name)
        if cached is None or cached[0] != key:
            cached = self._derived_cache[name] = (key, build())
        return cached[1]

    def _input_gates(self) -> torch.Tensor:
        """``(vocab, 4 hidden)``: the first layer's input gates ``W_ih e_v + b_ih + b_hh`` of
        every token v, computed once and recomputed whenever those weights change."""
        lstm = self.lstm
        tensors = (self.embedding.weight, lstm.weight_ih_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        emb, w_ih, b_ih, b_hh = (t.detach() for t in tensors)
        return self._derived(
            "input_gates", tensors, lambda: torch.addmm(b_ih + b_hh, emb, w_ih.t())
        )

    def _int8_layers(self) -> list[Int8Linear]:
        """Per layer, its recurrent product in int8 (:attr:`int8`): layer 0 ``W_hh`` (its input
        gates are the table), layer l > 0 ``[W_ih W_hh]`` with both biases; rebuilt whenever
        the LSTM's weights change."""
        lstm = self.lstm

        def build() -> list[Int8Linear]:
            layers = [Int8Linear(lstm.weight_hh_l0)]
            for n in range(1, self.cfg.num_layers):
                weight = torch.cat([getattr(lstm, f"weight_{k}_l{n}") for k in ("ih", "hh")], 1)
                bias = getattr(lstm, f"bias_ih_l{n}") + getattr(lstm, f"bias_hh_l{n}")
                layers.append(Int8Linear(weight, bias))
            return layers

        return self._derived("int8_layers", list(lstm.parameters()), build)

    @torch.no_grad()
    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        """``batch_size`` empty prefixes: ``h (B, layers, out)``, ``c (B, layers, hidden)``."""
        device = torch.device(device)
        tokens = torch.full((1,), self.bos_id, dtype=torch.long, device=device)
        _, one = self._step_hx(tokens, self._zero_hx(1, device))
        index = torch.zeros(batch_size, dtype=torch.long, device=device)
        return self.select_state(one, index)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: LMState) -> tuple[torch.Tensor, LMState]:
        """One batched LSTM step for B prefixes (see :meth:`LanguageModel.step`)."""
        h, c = state.tensors
        return self._step_hx(tokens.to(h.device, torch.long), (h, c))

    @torch.no_grad()
    def score_sentences(self, sentences: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(N,)`` float64 log P(sentence + ``</s>``), one teacher-forced padded forward."""
        if not sentences:
            return torch.zeros(0, dtype=torch.float64)
        inputs, targets, mask = sentence_batch(sentences, self.embedding.weight.device)
        logits, _ = self(inputs)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(2, targets[..., None])[..., 0].double()
        return (picked * mask).sum(1).cpu()


def sentence_batch(
    sentences: Sequence[Sequence[int]], device: torch.device | str = "cpu", boundary: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad sentences into teacher-forcing tensors.

    Returns:
        ``inputs (N, T)`` = ``<s> t1 .. tn`` + padding, ``targets (N, T)`` = ``t1 .. tn </s>``
        + padding (padding is the boundary id) and ``mask (N, T)`` float, 1 on real targets;
        ``T = longest + 1``.
    """
    longest = max(len(s) for s in sentences) + 1
    inputs = torch.full((len(sentences), longest), boundary, dtype=torch.long)
    targets = torch.full((len(sentences), longest), boundary, dtype=torch.long)
    mask = torch.zeros(len(sentences), longest)
    for i, sentence in enumerate(sentences):
        n = len(sentence)
        ids = torch.as_tensor(list(sentence), dtype=torch.long)
        inputs[i, 1 : n + 1] = ids
        targets[i, :n] = ids
        mask[i, : n + 1] = 1.0
    return inputs.to(device), targets.to(device), mask.to(device)
