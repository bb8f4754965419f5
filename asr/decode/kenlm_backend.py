"""Word-level KenLM n-gram fusion through pyctcdecode (the ``lm`` extra).

pyctcdecode runs its own CTC prefix beam search over the acoustic model's tokens (characters
with ``" "`` as the word delimiter, or sentencepiece pieces with ``"▁"``) and scores every
completed word with a KenLM model (ARPA or binary), optionally restricted to a unigram list
and boosted by hotwords. The CTC blank (``"<blank>"``, id 0) is given to pyctcdecode as ``""``.

Results are :class:`asr.decode.beam.BeamHypothesis` records. pyctcdecode reports word spans;
each word's first token gets the word's start frame exactly and its other tokens frames
interpolated within the span. ``lm_score`` holds pyctcdecode's weighted LM and length part
(its combined score minus the acoustic score), since it does not report log P_LM separately.

Loading is quiet on the happy path: KenLM's progress lines are dropped
(:func:`asr.lm.ngram.quiet_kenlm`), and so are two pyctcdecode warnings that fire on any
character model with a small or ``<s>``-holding vocabulary ("Unigrams and labels don't seem to
agree", "Only N unigrams passed as vocabulary"); :func:`check_words_encodable` makes the
real check (an LM for other tokens is an error). Other warnings and errors are shown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from asr.decode.base import Decoder
from asr.decode.beam import BeamHypothesis, BeamSearchConfig, BeamSearchError

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer

KENLM_SUFFIXES = (".arpa", ".bin", ".binary", ".klm", ".arpa.gz")


class KenLMError(BeamSearchError):
    """The KenLM backend cannot be built (missing package or file, unusable vocabulary)."""


# pyctcdecode's loggers and the start of the warnings they give on the happy path.
_PYCTCDECODE_NOISE = {
    "pyctcdecode.alphabet": "Unigrams and labels don't seem to agree",
    "pyctcdecode.language_model": "Only %s unigrams passed as vocabulary",
}


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """KenLM's progress lines and pyctcdecode's happy-path warnings dropped while loading."""
    from asr.lm.ngram import quiet_kenlm  # here: the decoding algorithms import no LM code

    filters = [(logging.getLogger(n), _DropMessage(m)) for n, m in _PYCTCDECODE_NOISE.items()]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        with quiet_kenlm():
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


def is_kenlm_path(path: str | Path) -> bool:
    """True when ``path`` names a KenLM file by its suffix (.arpa, .bin, .binary, .klm)."""
    name = str(path).lower()
    return any(name.endswith(s) for s in KENLM_SUFFIXES)


def pyctcdecode_labels(vocab: Sequence[str]) -> list[str]:
    """pyctcdecode's label list for a tokenizer vocabulary: the blank becomes ``""``."""
    labels = list(vocab)
    labels[0] = ""
    return labels


def read_unigrams(path: str | Path) -> list[str]:
    """Words of a unigram list (one per line, or the first field of each line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise KenLMError(f"{path}: cannot read the unigram list ({err.strerror})") from None
    words = [line.split()[0] for line in lines if line.strip()]
    if not words:
        raise KenLMError(f"{path}: the unigram list is empty")
    return words


@dataclasses.dataclass(frozen=True)
class KenLMOptions:
    """What the KenLM backend needs beyond :class:`asr.decode.beam.BeamSearchConfig`."""

    unigrams: str | None = None  # unigram list file (None: pyctcdecode reads the ARPA's)
    hotwords: tuple[str, ...] = ()  # words or phrases to boost
    hotword_weight: float = 10.0  # their boost (pyctcdecode's hotword_weight)
    unk_score_offset: float = -10.0  # log10 penalty of words outside the unigram list


class KenLMDecoder(Decoder):
    """pyctcdecode beam search with a KenLM model (the ``kenlm`` decoder).

    Args:
        tokenizer: the acoustic model's tokenizer.
        lm_path: ``.arpa`` or binary KenLM file (None: pyctcdecode's search without an LM).
        cfg: beam size, alpha, beta, token_min_logp, beam_threshold (as beam_prune_logp) and
            nbest are used; LM weights apply to pyctcdecode's base-10 KenLM scores as it defines.
        options: unigrams, hotwords and their weight.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        lm_path: str | Path | None,
        cfg: BeamSearchConfig | None = None,
        options: KenLMOptions | None = None,
    ) -> None:
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError:
            raise KenLMError(
                "the KenLM backend needs pyctcdecode and kenlm: pip install 'asr[lm]'"
            ) from None
        self.tokenizer = tokenizer
        self.cfg = cfg or BeamSearchConfig()
        self.options = options or KenLMOptions()
        if lm_path is not None:
            _check_lm_file(lm_path)
        unigrams = read_unigrams(self.options.unigrams) if self.options.unigrams else None
        if unigrams is not None:
            check_words_encodable(tokenizer, unigrams, str(self.options.unigrams))
        elif lm_path is not None and str(lm_path).lower().endswith(".arpa"):
            check_words_encodable(tokenizer, arpa_unigrams(lm_path), str(lm_path))
        try:
            with _quiet_loading():
                self.decoder = build_ctcdecoder(
                    pyctcdecode_labels(tokenizer.vocab),
                    kenlm_model_path=str(lm_path) if lm_path is not None else None,
                    unigrams=unigrams,
                    alpha=self.cfg.alpha,
                    beta=self.cfg.beta,
                    unk_score_offset=self.options.unk_score_offset,
                )
        except (ValueError, OSError, RuntimeError) as err:
            reason = str(err).split(" threw ")[-1].strip()
            raise KenLMError(f"{lm_path}: cannot load the KenLM model: {reason}") from None

    def decode_nbest(self, log_probs: Tensor, lengths: Tensor) -> list[list[BeamHypothesis]]:
        """``(batch, frames, vocab)`` log-probs -> per utterance its n-best (best first)."""
        lp = log_probs.detach().float().cpu().numpy()
        out = []
        for b, n in enumerate(lengths.tolist()):
            beams = self.decoder.decode_beams(
                lp[b, :n],
                beam_width=self.cfg.beam_size,
                beam_prune_logp=-(self.cfg.beam_threshold or 1e9),
                token_min_logp=self.cfg.token_min_logp
                if self.cfg.token_min_logp is not None
                else -1e9,
                hotwords=list(self.options.hotwords) or None,
                hotword_weight=self.options.hotword_weight,
            )
            out.append([self._hypothesis(beam) for beam in beams[: self.cfg.nbest]])
        return out

    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[BeamHypothesis]:
        """The best hypothesis of each utterance."""
        return [h[0] for h in self.decode_nbest(log_probs, lengths)]

    def with_weights(self, alpha: float, beta: float) -> KenLMDecoder:
        """This decoder with LM weight ``alpha`` and length bonus ``beta`` (set in place: the
        KenLM model is not loaded again)."""
        self.cfg = dataclasses.replace(self.cfg, alpha=alpha, beta=beta)
        self.decoder.reset_params(alpha=alpha, beta=beta)
        return self

    def _hypothesis(self, beam) -> BeamHypothesis:
        text, _, word_frames, acoustic, combined = beam[:5]
        ids: list[int] = []
        frames: list[int] = []
        for k, (word, (start, end)) in enumerate(word_frames):
            if k > 0 and self.tokenizer.vocab[1:2] == [" "]:
                ids.append(1)
                frames.append(int(start))
            word_ids = self.tokenizer.encode(word)
            ids.extend(word_ids)
            span = max(int(end) - int(start) - 1, 0)
            for j in range(len(word_ids)):
                frames.append(int(start) + (span * j) // max(len(word_ids), 1))
        return BeamHypothesis(
            tuple(ids),
            tuple(frames),
            text,
            float(combined),
            float(acoustic),
            float(combined - acoustic),
            float(len(text.split())),
        )


def _check_lm_file(path: str | Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise KenLMError(f"{path}: KenLM file not found")
    try:
        import kenlm  # noqa: F401
    except ImportError:
        raise KenLMError(
            f"{path}: reading KenLM models needs the kenlm package: pip install 'asr[lm]'"
        ) from None
    if str(path).lower().endswith(".arpa"):
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
        if "\\data\\" not in head:
            raise KenLMError(f"{path}: not an ARPA file (no \\data\\ section)")


def check_words_encodable(tokenizer: Tokenizer, words: Sequence[str], where: str) -> None:
    """Raise :class:`KenLMError` when most LM words use symbols the acoustic model cannot emit.

    A few odd words are harmless (they are never hypothesised); a majority means the LM was
    built for other tokens (e.g. a lower-case LM with an upper-case model).
    """
    allowed = set("".join(tokenizer.vocab[1:]).replace("\u2581", ""))
    words = [w for w in words if w not in ("<s>", "</s>", "<unk>")]
    bad = [w for w in words if not set(w) <= allowed]
    if words and len(bad) * 2 > len(words):
        raise KenLMError(
            f"{where}: {len(bad)} of {len(words)} LM words (e.g. {bad[0]!r}) use symbols the "
            f"acoustic model cannot emit: the LM does not match the model's tokens"
        )


def arpa_unigrams(path: str | Path) -> list[str]:
    """The words of an ARPA file's 1-gram section."""
    words: list[str] = []
    in_unigrams = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and (line.startswith("\\") or not line):
                if words or line.startswith("\\"):
                    break
            elif in_unigrams:
                parts = line.split("\t")
                if len(parts) >= 2:
                    words.append(parts[1])
    return words
