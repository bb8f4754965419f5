"""The ``beam`` decoder of ``asr decode``: prefix beam search, with or without a language model.

``lm`` picks the fusion: ``None``/``"none"`` (acoustic scores only), an exported LSTM LM folder
(our batched :func:`asr.decode.beam.beam_search`), or a KenLM ``.arpa``/``.bin`` file (word-level
fusion through pyctcdecode, :mod:`asr.decode.kenlm_backend`). Search options come from a decode
config YAML (``conf/decode/beam.yaml``, written by ``asr tune-decoder``) and keyword overrides.

Example::

    dec = make_decoder("beam", tokenizer, lm="exp/lm", config="conf/decode/beam.yaml", alpha=0.4)
    hyps = dec.decode(log_probs, lengths)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from asr import config as config_io
from asr.decode.beam import BeamHypothesis, BeamSearchConfig, BeamSearchError, beam_search
from asr.decode.kenlm_backend import KenLMDecoder, KenLMOptions, is_kenlm_path
from asr.decode.run import Decoder, register_decoder

if TYPE_CHECKING:
    from asr.lm.base import LanguageModel
    from asr.tokenizer import Tokenizer


def load_beam_config(path: str | Path | None = None, **fields: Any) -> BeamSearchConfig:
    """A :class:`BeamSearchConfig` from a YAML file (or the defaults) with ``fields`` replaced.

    ``None`` values in ``fields`` are ignored (so unset CLI flags keep the file's values).
    """
    data = config_io.read_yaml(path) if path is not None else {}
    data.update({k: v for k, v in fields.items() if v is not None})
    where = f"{path}:" if path is not None else "beam search options"
    return config_io.from_dict(BeamSearchConfig, data, where=where)


def load_language_model(
    path: str | Path, tokenizer: Tokenizer, device: str | torch.device = "cpu"
) -> LanguageModel:
    """An exported LSTM LM folder, checked against the acoustic model's tokenizer."""
    from asr.lm.io import load_lm

    lm, _ = load_lm(path, device)
    lm.check_compatible(tokenizer)
    return lm


def _empty() -> BeamHypothesis:
    return BeamHypothesis((), (), "", float("-inf"), float("-inf"), 0.0, 0.0)


@register_decoder("beam")
class BeamDecoder(Decoder):
    """Prefix beam search, optionally fused with an LSTM LM or a KenLM n-gram.

    Args:
        tokenizer: the acoustic model's tokenizer.
        lm: None or "none", an LSTM LM folder, or a KenLM ``.arpa``/``.bin`` file.
        config: decode config YAML (:class:`BeamSearchConfig` fields); None: defaults.
        unigrams, hotwords, hotword_weight: KenLM backend options (see :class:`KenLMOptions`).
        **fields: :class:`BeamSearchConfig` fields overriding the file (None: keep).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        lm: str | Path | None = None,
        config: str | Path | None = None,
        unigrams: str | None = None,
        hotwords: tuple[str, ...] | list[str] = (),
        hotword_weight: float = 10.0,
        **fields: Any,
    ) -> None:
        self.tokenizer = tokenizer
        self.cfg = load_beam_config(config, **fields)
        self.lm: LanguageModel | None = None
        self.kenlm: KenLMDecoder | None = None
        lm = None if lm is None or str(lm).lower() == "none" else lm
        kenlm_opts = unigrams is not None or bool(hotwords)
        if (lm is not None and is_kenlm_path(lm)) or (lm is None and kenlm_opts):
            options = KenLMOptions(unigrams, tuple(hotwords), hotword_weight)
            self.kenlm = KenLMDecoder(tokenizer, lm, self.cfg, options)
        elif lm is not None:
            if not Path(lm).is_dir():
                raise BeamSearchError(f"{lm}: not an LSTM LM folder nor a KenLM file (.arpa, .bin)")
            self.lm = load_language_model(lm, tokenizer)

    def decode_nbest(self, log_probs: Tensor, lengths: Tensor) -> list[list[BeamHypothesis]]:
        """Per utterance its ``cfg.nbest`` best hypotheses."""
        if self.kenlm is not None:
            return self.kenlm.decode_nbest(log_probs, lengths)
        if self.lm is not None and isinstance(self.lm, torch.nn.Module):
            self.lm.to(log_probs.device)
        return beam_search(log_probs, lengths, self.cfg, self.lm, self.tokenizer)

    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[BeamHypothesis]:
        """The best hypothesis of each utterance."""
        return [hyps[0] if hyps else _empty() for hyps in self.decode_nbest(log_probs, lengths)]
