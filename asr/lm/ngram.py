"""Interpolated modified Kneser-Ney n-gram estimation to ARPA, and KenLM scoring.

``lmplz`` is not available here, so :func:`estimate_arpa` implements what it computes (Chen &
Goodman's interpolated modified Kneser-Ney, as in Heafield et al. 2013), vectorised in NumPy and
streaming over sentences:

- every sentence is ``<s> w1 .. wn </s>``; n-grams never cross sentences;
- adjusted counts ``a``: raw counts for the highest order and for n-grams starting with ``<s>``,
  otherwise the number of distinct left extensions ``|{v: c(v w) > 0}|``;
- discounts per order from the counts-of-counts ``t1..t4`` of the adjusted counts:
  ``Y = t1 / (t1 + 2 t2)``, ``D1 = 1 - 2Y t2/t1``, ``D2 = 2 - 3Y t3/t2``, ``D3+ = 3 - 4Y t4/t3``;
- ``p(w|c) = (a(c w) - D(a(c w))) / sum_x a(c x) + gamma(c) p(w|c')`` with
  ``gamma(c) = (D1 N1(c.) + D2 N2(c.) + D3+ N3+(c.)) / sum_x a(c x)`` and ``c'`` the context
  without its first word; unigrams interpolate with the uniform distribution over the
  vocabulary (``</s>`` and ``<unk>`` included, ``<s>`` excluded).

The ARPA file stores ``log10 p`` of every n-gram seen and ``log10 gamma`` as the back-off weight
of every context, which makes KenLM's back-off queries return exactly the interpolated
probabilities. N-grams are packed into int64 keys, so ``vocabulary ** order < 2**63`` (any
order up to 12 for characters, 3 for words with under 2 M types).

Character models: a sentence is its characters with the space written as ``|`` (ARPA separates
tokens by whitespace); see :func:`char_tokens`.

KenLM prints its progress while it reads an ARPA file ("Loading the LM will be faster if you
build a binary file.", a ruler and a row of ``*``) on the process's standard error;
:func:`quiet_kenlm` drops those lines and passes on any other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from asr.errors import AsrError
from asr.io.atomic import atomic_open

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPACE = "|"  # how a space character is written as a token in character ARPA files


class NgramError(AsrError):
    """An n-gram model cannot be estimated, written or read."""


# KenLM's chatter while loading an ARPA file, one pattern per line (stripped).
_KENLM_CHATTER = re.compile(
    r"Loading the LM will be faster if you build a binary file\.|Reading .*|[-0-9]*5---10-+[-0-9]*"
    r"|\*+"
)


@contextlib.contextmanager
def quiet_kenlm() -> Iterator[None]:
    """While the block runs, file descriptor 2 (where KenLM's C++ code writes) goes to a
    temporary file; afterwards its lines are written to :data:`sys.stderr`, except KenLM's
    loading chatter (:data:`_KENLM_CHATTER`), so real warnings and errors stay visible."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to redirect
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines()
            kept = [x for x in lines if x.strip() and not _KENLM_CHATTER.fullmatch(x.strip())]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def char_tokens(text: str) -> list[str]:
    """The tokens of a normalised sentence for a character n-gram (space -> ``|``)."""
    return [SPACE if ch == " " else ch for ch in text]


@dataclasses.dataclass(frozen=True)
class NgramStats:
    """What :func:`estimate_arpa` produced."""

    order: int  # highest order
    counts: tuple[int, ...]  # n-grams written per order (1..order)
    discounts: tuple[tuple[float, float, float], ...]  # (D1, D2, D3+) per order
    sentences: int  # training sentences
    tokens: int  # training tokens (without <s> and </s>)


class _Counter:
    """Streaming raw counts of every n-gram order, merged chunk by chunk."""

    def __init__(self, order: int, bits: int) -> None:
        self.order, self.bits = order, bits
        self.keys = [np.zeros(0, np.int64) for _ in range(order + 1)]
        self.counts = [np.zeros(0, np.int64) for _ in range(order + 1)]

    def add(self, seq: np.ndarray, sent_id: np.ndarray) -> None:
        """Count the n-grams of the concatenated sentences ``seq`` (sentence of each token)."""
        for n in range(1, self.order + 1):
            if len(seq) < n:
                break
            span = len(seq) - n + 1
            ok = sent_id[:span] == sent_id[n - 1 :]
            key = np.zeros(span, np.int64)
            for j in range(n):
                key = (key << self.bits) | seq[j : j + span]
            keys, counts = np.unique(key[ok], return_counts=True)
            self._merge(n, keys, counts)

    def _merge(self, n: int, keys: np.ndarray, counts: np.ndarray) -> None:
        all_keys = np.concatenate([self.keys[n], keys])
        all_counts = np.concatenate([self.counts[n], counts])
        self.keys[n], inverse = np.unique(all_keys, return_inverse=True)
        self.counts[n] = np.bincount(inverse, weights=all_counts).astype(np.int64)


FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback


def _discounts(adjusted: np.ndarray, order: int, fallback: bool) -> tuple[float, float, float]:
    t = [int(np.sum(adjusted == i)) for i in (1, 2, 3, 4)]
    ok = min(t) > 0
    if ok:
        y = t[0] / (t[0] + 2 * t[1])
        d = (1 - 2 * y * t[1] / t[0], 2 - 3 * y * t[2] / t[1], 3 - 4 * y * t[3] / t[2])
        ok = all(0 < x < i + 1 for i, x in enumerate(d))
    if ok:
        return d
    if fallback:
        return FALLBACK_DISCOUNTS
    if min(t) == 0:
        raise NgramError(
            f"order {order}: cannot compute modified Kneser-Ney discounts from counts-of-counts "
            f"t1..t4 = {t} (too little text for this order: pass discounts or "
            "discount_fallback=True)"
        )
    raise NgramError(f"order {order}: discounts out of range (t1..t4 = {t})")


def _adjusted_counts(counter: _Counter, bos: int) -> list[np.ndarray]:
    """Kneser-Ney adjusted counts per order (index 0 unused)."""
    order, bits = counter.order, counter.bits
    adjusted = [np.zeros(0, np.int64)] + [c.copy() for c in counter.counts[1:]]
    for n in range(1, order):
        keys = counter.keys[n]
        suffix = counter.keys[n + 1] & ((1 << (bits * n)) - 1)  # drop the first token
        left_ext = np.bincount(np.searchsorted(keys, suffix), minlength=len(keys))
        starts_bos = (keys >> (bits * (n - 1))) == bos
        adjusted[n] = np.where(starts_bos, counter.counts[n], left_ext)
    return adjusted


def _interpolate(
    counter: _Counter,
    adjusted: list[np.ndarray],
    discounts: list[tuple[float, float, float]],
    vocab_size: int,
    bos: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """log10 probabilities and log10 back-off weights of every n-gram, per order."""
    bits = counter.bits
    probs: list[np.ndarray] = [np.zeros(0)] * (counter.order + 1)
    backoffs: list[np.ndarray] = [np.zeros(0)] * (counter.order + 1)
    for n in range(1, counter.order + 1):
        keys, a = counter.keys[n], adjusted[n].astype(np.float64)
        d = np.asarray((0.0, *discounts[n - 1]))[np.minimum(a, 3).astype(np.int64)]
        if n == 1:
            ctx = np.zeros(len(keys), np.int64)
            a = np.where(keys == bos, 0.0, a)  # <s> is never predicted
            lower = np.full(len(keys), 1.0 / vocab_size)
            num_ctx = 1
        else:
            ctx = np.searchsorted(counter.keys[n - 1], keys >> bits)
            suffix = np.searchsorted(counter.keys[n - 1], keys & ((1 << (bits * (n - 1))) - 1))
            lower = 10.0 ** probs[n - 1][suffix]
            num_ctx = len(counter.keys[n - 1])
        denom = np.bincount(ctx, weights=a, minlength=num_ctx)
        mass = np.bincount(ctx, weights=np.where(a > 0, d, 0.0), minlength=num_ctx)
        gamma = np.divide(mass, denom, out=np.ones_like(mass), where=denom > 0)
        p = np.maximum(a - d, 0.0) / np.maximum(denom[ctx], 1e-300) + gamma[ctx] * lower
        probs[n] = np.log10(p)
        if n > 1:
            backoffs[n - 1] = np.log10(gamma)
        else:
            unigram_gamma = gamma[0]
    backoffs[counter.order] = np.zeros(len(counter.keys[counter.order]))
    probs[0] = np.asarray([math.log10(unigram_gamma / vocab_size)])  # an unseen token (<unk>)
    return probs, backoffs


def estimate_arpa(
    sentences: Iterable[Sequence[str]],
    order: int,
    out_path: str | Path,
    discounts: Sequence[tuple[float, float, float]] | None = None,
    chunk_tokens: int = 4_000_000,
    discount_fallback: bool = False,
) -> NgramStats:
    """Estimate an interpolated modified Kneser-Ney model and write it as ARPA (atomically).

    Args:
        sentences: token sequences (words, or :func:`char_tokens`), streamed once.
        order: highest n-gram order (>= 1).
        out_path: the ARPA file to write.
        discounts: ``(D1, D2, D3+)`` per order 1..order (default: from counts-of-counts).
        chunk_tokens: tokens counted per chunk before merging (bounds the memory).
        discount_fallback: use lmplz's fallback discounts (0.5, 1, 1.5) for an order whose
            counts-of-counts cannot give discounts (tiny or tiny-vocabulary text) instead of
            raising.
    Raises:
        NgramError: a bad order or discounts, or ``out_path`` cannot be written (one line).
    """
    if order < 1:
        raise NgramError(f"order must be >= 1, got {order}")
    if discounts is not None and len(discounts) != order:
        raise NgramError(f"need {order} discount triples, got {len(discounts)}")
    ids = {BOS: 0, EOS: 1, UNK: 2}
    bits = 63 // order
    counter = _Counter(order, bits)
    num_sentences = num_tokens = 0
    seq: list[int] = []
    sid: list[int] = []
    for sentence in sentences:
        row = [0] + [ids.setdefault(tok, len(ids)) for tok in sentence] + [1]
        seq.extend(row)
        sid.extend([num_sentences] * len(row))
        num_sentences += 1
        num_tokens += len(row) - 2
        if len(seq) >= chunk_tokens:
            _count_chunk(counter, seq, sid, ids)
            seq, sid = [], []
    _count_chunk(counter, seq, sid, ids)
    adjusted = _adjusted_counts(counter, bos=0)
    if discounts is None:
        discounts = [_discounts(adjusted[n], n, discount_fallback) for n in range(1, order + 1)]
    unigram_types = set(counter.keys[1].tolist()) | {ids[UNK]}
    vocab_size = len(unigram_types - {ids[BOS]})
    probs, backoffs = _interpolate(counter, adjusted, list(discounts), vocab_size, bos=0)
    words = [w for w, _ in sorted(ids.items(), key=lambda kv: kv[1])]
    try:
        counts = _write_arpa(out_path, counter, probs, backoffs, words)
    except OSError as err:  # a full disk: atomic, so an existing file is kept
        raise NgramError(
            f"{out_path}: cannot write the ARPA file ({err.strerror or err}); nothing was "
            "written there (a file already there is kept as it was)"
        ) from None
    return NgramStats(order, counts, tuple(tuple(d) for d in discounts), num_sentences, num_tokens)


def _count_chunk(counter: _Counter, seq: list[int], sid: list[int], ids: dict) -> None:
    if len(ids) >= 1 << counter.bits:
        raise NgramError(
            f"{len(ids)} token types do not fit order {counter.order} in 63-bit keys "
            f"(at most {(1 << counter.bits) - 1}); use a lower order"
        )
    if seq:
        counter.add(np.asarray(seq, np.int64), np.asarray(sid, np.int64))


def _write_arpa(
    out_path: str | Path,
    counter: _Counter,
    probs: list[np.ndarray],
    backoffs: list[np.ndarray],
    words: list[str],
) -> tuple[int, ...]:
    bits, mask = counter.bits, (1 << counter.bits) - 1
    unk = words.index(UNK)
    uni_keys = counter.keys[1]
    has_unk = bool(np.any(uni_keys == unk))
    counts = [len(counter.keys[n]) for n in range(1, counter.order + 1)]
    counts[0] += 0 if has_unk else 1
    with atomic_open(out_path, "w", encoding="utf-8") as fh:
        fh.write("\\data\\\n")
        for n, c in enumerate(counts, start=1):
            fh.write(f"ngram {n}={c}\n")
        for n in range(1, counter.order + 1):
            fh.write(f"\n\\{n}-grams:\n")
            if n == 1 and not has_unk:
                fh.write(f"{probs[0][0]:.7f}\t{UNK}\t0\n")
            keys, p, b = counter.keys[n], probs[n], backoffs[n]
            for i, key in enumerate(keys.tolist()):
                toks = [words[(key >> (bits * (n - 1 - j))) & mask] for j in range(n)]
                lp = -99.0 if toks == [BOS] else float(p[i])
                line = f"{lp:.7f}\t{' '.join(toks)}"
                fh.write(line + (f"\t{b[i]:.7f}\n" if n < counter.order else "\n"))
        fh.write("\n\\end\\\n")
    return tuple(counts)


class KenLMScorer:
    """Sentence log-probabilities (natural log) from an ARPA or binary KenLM model.

    Args:
        path: ``.arpa`` or KenLM binary file.
        chars: True for character models (tokens are characters, space written as ``|``).
    """

    def __init__(self, path: str | Path, chars: bool | None = None) -> None:
        try:
            import kenlm
        except ImportError:
            raise NgramError("scoring an n-gram model needs the 'kenlm' Python module") from None
        if not Path(path).is_file():
            raise NgramError(f"{path}: no such n-gram model file")
        try:
            with quiet_kenlm():
                self.model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as err:
            raise NgramError(f"{path}: KenLM cannot read it ({err})") from None
        self.order = self.model.order
        self.chars = chars if chars is not None else (SPACE in self.model)

    def tokens(self, text: str) -> list[str]:
        """Model tokens of a normalised sentence."""
        return char_tokens(text) if self.chars else text.split()

    def score(self, text: str) -> tuple[float, int]:
        """(ln P(sentence </s>), number of out-of-vocabulary tokens) of a normalised sentence."""
        toks = self.tokens(text)
        total, oov = 0.0, 0
        for log10_p, _, is_oov in self.model.full_scores(" ".join(toks), bos=True, eos=True):
            total += log10_p
            oov += int(is_oov)
        return total * math.log(10.0), oov
