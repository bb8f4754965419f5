"""Perplexity of an LSTM LM folder or a KenLM n-gram (ARPA/binary) on normalised sentences.

Both kinds score ``sentence </s>``. Per-token perplexity divides by the model's tokens plus one
``</s>`` per sentence; per-word perplexity divides the same log-probability by the words plus
one ``</s>`` per sentence (SRILM's convention), so models over different token inventories
(characters, pieces, words) compare on the same footing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from asr.lm.text_data import make_batches


@dataclasses.dataclass(frozen=True)
class PerplexityResult:
    """Totals over a text and the perplexities they give."""

    sentences: int  # scored sentences
    words: int  # words (whitespace-separated) in them
    tokens: int  # model tokens in them (without </s>)
    oov: int  # out-of-vocabulary tokens (n-grams: scored as <unk>; LSTM: always 0)
    log_prob: float  # natural-log probability of everything, </s> included

    @property
    def ppl_token(self) -> float:
        return math.exp(-self.log_prob / max(self.tokens + self.sentences, 1))

    @property
    def ppl_word(self) -> float:
        return math.exp(-self.log_prob / max(self.words + self.sentences, 1))

    @property
    def bits_per_token(self) -> float:
        return -self.log_prob / max(self.tokens + self.sentences, 1) / math.log(2.0)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def lstm_perplexity(
    lm_dir: str | Path,
    sentences: Iterable[str],
    max_batch_tokens: int = 16384,
    device: str = "cpu",
    progress: bool = True,
) -> PerplexityResult:
    """Score normalised sentences with an exported LSTM LM (batched, sorted by length)."""
    from asr.lm.io import load_lm

    model, tokenizer = load_lm(lm_dir, device)
    totals = [0, 0, 0, 0.0]
    bar = tqdm(desc="scoring", unit="sent", disable=not progress, dynamic_ncols=True)
    for chunk in _chunks(sentences, 2000):
        ids = [tokenizer.encode(text) for text in chunk]
        for batch in make_batches(ids, max_batch_tokens, 256):
            totals[3] += float(model.score_sentences(batch).sum())
        totals[0] += len(chunk)
        totals[1] += sum(len(text.split()) for text in chunk)
        totals[2] += sum(len(i) for i in ids)
        bar.update(len(chunk))
        bar.set_postfix(ppl_word=f"{math.exp(-totals[3] / (totals[1] + totals[0])):.2f}")
    bar.close()
    return PerplexityResult(int(totals[0]), int(totals[1]), int(totals[2]), 0, totals[3])


def ngram_perplexity(
    model_path: str | Path, sentences: Iterable[str], progress: bool = True
) -> PerplexityResult:
    """Score normalised sentences with a KenLM model (characters or words, auto-detected)."""
    from asr.lm.ngram import KenLMScorer

    scorer = KenLMScorer(model_path)
    n_sent = n_words = n_tokens = n_oov = 0
    total = 0.0
    for text in tqdm(sentences, desc="scoring", unit="sent", disable=not progress):
        log_prob, oov = scorer.score(text)
        total += log_prob
        n_sent += 1
        n_words += len(text.split())
        n_tokens += len(scorer.tokens(text))
        n_oov += oov
    return PerplexityResult(n_sent, n_words, n_tokens, n_oov, total)


def perplexity(
    lm_path: str | Path, sentences: Iterable[str], progress: bool = True, **kwargs
) -> PerplexityResult:
    """Dispatch on the model: an LSTM LM folder or a KenLM ``.arpa``/binary file."""
    from asr.lm.base import LMError
    from asr.lm.io import is_lstm_lm_dir

    path = Path(lm_path)
    if path.is_dir():
        if not is_lstm_lm_dir(path):
            raise LMError(f"{path}: not an exported LSTM LM folder (no lm.yaml)")
        return lstm_perplexity(path, sentences, progress=progress, **kwargs)
    if not path.is_file():
        raise LMError(f"{path}: no such language model file or folder")
    return ngram_perplexity(path, sentences, progress=progress)
