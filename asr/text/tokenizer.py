"""Tokenizers: text <-> token ids for CTC models and language models, behind one interface.

Every tokenizer's vocabulary has the CTC blank ``"<blank>"`` at index 0. A tokenizer is saved
into a model directory as ``tokenizer.yaml`` (its kind and, for characters, the vocabulary) plus
any files it needs (``tokenizer.model`` for sentencepiece); :func:`load_tokenizer` reads it back.
Nothing is pickled.

``decode`` removes blanks and nothing else: collapsing CTC repeats is the decoder's job.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import yaml

from asr.errors import AsrError
from asr.io.atomic import atomic_write_bytes, atomic_write_text
from asr.io.folders import SENTENCEPIECE_FILE, TOKENIZER_FILE

BLANK = "<blank>"
# blank, space, A-Z, apostrophe: the LibriSpeech alphabet of asr.text.normalize.normalize_text.
DEFAULT_CHAR_VOCAB: tuple[str, ...] = (BLANK, " ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "'")


class TokenizerError(AsrError):
    """Bad tokenizer files, vocabularies, or text/ids the tokenizer cannot handle."""


class Tokenizer(ABC):
    """Maps text to token ids and back; ``vocab[0]`` is the CTC blank ``"<blank>"``."""

    kind: ClassVar[str]  # the ``kind`` written to tokenizer.yaml
    blank_id: ClassVar[int] = 0
    vocab: list[str]

    @property
    def vocab_size(self) -> int:
        """Number of symbols including the blank (the acoustic model's output size)."""
        return len(self.vocab)

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (never the blank)."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; blanks are dropped, repeats are kept."""

    @abstractmethod
    def save(self, model_dir: str | Path) -> None:
        """Write ``tokenizer.yaml`` (and any model file) into ``model_dir``, atomically."""

    @classmethod
    @abstractmethod
    def _from_spec(cls, model_dir: Path, spec: dict) -> Tokenizer:
        """Rebuild from the parsed ``tokenizer.yaml`` of ``model_dir``."""

    def _check_ids(self, ids: Sequence[int]) -> list[int]:
        out = [int(i) for i in ids]
        for position, i in enumerate(out):
            if not 0 <= i < len(self.vocab):
                raise TokenizerError(
                    f"token id {i} at position {position} is outside the vocabulary "
                    f"(size {len(self.vocab)})"
                )
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _write_spec(model_dir: str | Path, spec: dict) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False)
    atomic_write_text(model_dir / TOKENIZER_FILE, text)


class CharTokenizer(Tokenizer):
    """One token per character.

    Args:
        vocab: the symbols, ``vocab[0]`` must be ``"<blank>"`` and the others single, distinct
            characters. Default: :data:`DEFAULT_CHAR_VOCAB` (29 symbols: blank, space, A-Z, ').
        unknown: what ``encode`` does with a character outside the vocabulary: ``"error"``
            (default) raises a :class:`TokenizerError` naming it, ``"skip"`` drops it.
    """

    kind = "char"

    def __init__(
        self, vocab: Sequence[str] | None = None, unknown: Literal["error", "skip"] = "error"
    ) -> None:
        vocab = list(DEFAULT_CHAR_VOCAB if vocab is None else vocab)
        if not vocab or vocab[0] != BLANK:
            raise TokenizerError(f"char vocabulary must start with {BLANK!r}, got {vocab[:1]}")
        for position, symbol in enumerate(vocab[1:], start=1):
            if not isinstance(symbol, str) or len(symbol) != 1:
                raise TokenizerError(
                    f"char vocabulary entry {position} must be one character, got {symbol!r}"
                )
        if len(set(vocab)) != len(vocab):
            dupes = sorted({s for s in vocab if vocab.count(s) > 1})
            raise TokenizerError(f"char vocabulary has duplicate symbols {dupes}")
        if unknown not in ("error", "skip"):
            raise TokenizerError(f"unknown must be 'error' or 'skip', got {unknown!r}")
        self.vocab = vocab
        self.unknown = unknown
        self._ids = {symbol: i for i, symbol in enumerate(vocab) if i != self.blank_id}

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``.

        Raises:
            TokenizerError: a character is not in the vocabulary (unless ``unknown="skip"``).
        """
        ids = []
        for position, ch in enumerate(text):
            i = self._ids.get(ch)
            if i is not None:
                ids.append(i)
            elif self.unknown == "error":
                raise TokenizerError(
                    f"character {ch!r} (U+{ord(ch):04X}) at position {position} of {text[:40]!r} "
                    "is not in the tokenizer vocabulary (normalise the text first)"
                )
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Concatenate the characters of ``ids``, dropping blanks."""
        return "".join(self.vocab[i] for i in self._check_ids(ids) if i != self.blank_id)

    def save(self, model_dir: str | Path) -> None:
        """Write ``tokenizer.yaml`` with ``kind: char`` and the vocabulary."""
        _write_spec(model_dir, {"kind": self.kind, "vocab": self.vocab})

    @classmethod
    def _from_spec(cls, model_dir: Path, spec: dict) -> CharTokenizer:
        vocab = spec.get("vocab")
        if not isinstance(vocab, list):
            raise TokenizerError(f"{model_dir / TOKENIZER_FILE}: field 'vocab' must be a list")
        try:
            return cls(vocab)
        except TokenizerError as err:
            raise TokenizerError(f"{model_dir / TOKENIZER_FILE}: {err}") from None


class SentencePieceTokenizer(Tokenizer):
    """Sentencepiece BPE or unigram pieces; ids are sentencepiece's own ids.

    The model is trained with ``pad_id=0`` whose piece is ``"<blank>"`` (so the blank is id 0
    in sentencepiece too and any tool reading ``tokenizer.model`` agrees on the ids),
    ``unk_id=1``, no BOS/EOS, and the identity normaliser: text must already be normalised
    (:func:`asr.text.normalize.normalize_text`), and ``decode(encode(t)) == t`` for such text.

    Args:
        model_file: a ``tokenizer.model`` written by :meth:`train`.
    """

    kind = "sentencepiece"

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece as spm

        model_file = Path(model_file)
        if not model_file.is_file():
            raise TokenizerError(f"{model_file}: sentencepiece model file not found")
        self.processor = spm.SentencePieceProcessor()
        try:
            self.processor.Load(str(model_file))
        except (OSError, RuntimeError) as err:
            raise TokenizerError(f"{model_file}: not a sentencepiece model ({err})") from None
        self.model_file = model_file
        self.vocab = [self.processor.IdToPiece(i) for i in range(self.processor.GetPieceSize())]
        if self.vocab[0] != BLANK or self.processor.pad_id() != 0:
            raise TokenizerError(
                f"{model_file}: piece 0 must be the pad piece {BLANK!r}, got {self.vocab[0]!r} "
                "(train it with SentencePieceTokenizer.train)"
            )
        self.unk_id = self.processor.unk_id()
        self._chars = {ch for piece in self.vocab[2:] for ch in piece.replace("▁", " ")}

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        model_dir: str | Path,
        vocab_size: int,
        model_type: Literal["bpe", "unigram"] = "bpe",
        max_sentences: int = 2_000_000,
        seed_sentencepiece_size: int = 1_000_000,
    ) -> SentencePieceTokenizer:
        """Train on normalised ``texts`` and save into ``model_dir``.

        Args:
            texts: sentences, already normalised (iterated once, streamed).
            model_dir: folder for ``tokenizer.model`` and ``tokenizer.yaml`` (created).
            vocab_size: total symbols including the blank and ``<unk>``.
            model_type: ``"bpe"`` or ``"unigram"``.
            max_sentences: sentencepiece samples at most this many sentences.
            seed_sentencepiece_size: unigram seed vocabulary size.
        Raises:
            TokenizerError: bad arguments, or text too small for ``vocab_size``.
        """
        import sentencepiece as spm

        if model_type not in ("bpe", "unigram"):
            raise TokenizerError(f"model_type must be 'bpe' or 'unigram', got {model_type!r}")
        if vocab_size < 4:
            raise TokenizerError(f"vocab_size must be at least 4, got {vocab_size}")
        proto = io.BytesIO()
        try:
            spm.SentencePieceTrainer.Train(
                sentence_iterator=(t for t in texts if t.strip()),
                model_writer=proto,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                normalization_rule_name="identity",
                pad_id=0,
                pad_piece=BLANK,
                unk_id=1,
                bos_id=-1,
                eos_id=-1,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                seed_sentencepiece_size=seed_sentencepiece_size,
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as err:
            raise TokenizerError(f"sentencepiece training failed: {err}") from None
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(model_dir / SENTENCEPIECE_FILE, proto.getvalue())
        tokenizer = cls(model_dir / SENTENCEPIECE_FILE)
        tokenizer._save_spec(model_dir)
        return tokenizer

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text``.

        Raises:
            TokenizerError: ``text`` has a character the model has never seen.
        """
        ids = self.processor.EncodeAsIds(text)
        if self.unk_id in ids:
            bad = next((ch for ch in text if ch not in self._chars), "?")
            raise TokenizerError(
                f"character {bad!r} (U+{ord(bad):04X}) in {text[:40]!r} is not in the "
                "sentencepiece vocabulary (normalise the text first)"
            )
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenise ``ids`` after dropping blanks."""
        return self.processor.DecodeIds([i for i in self._check_ids(ids) if i != self.blank_id])

    def save(self, model_dir: str | Path) -> None:
        """Copy ``tokenizer.model`` into ``model_dir`` and write ``tokenizer.yaml``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / SENTENCEPIECE_FILE
        if target.resolve() != self.model_file.resolve():
            atomic_write_bytes(target, self.model_file.read_bytes())
        self._save_spec(model_dir)

    def _save_spec(self, model_dir: Path) -> None:
        spec = {"kind": self.kind, "model": SENTENCEPIECE_FILE, "vocab_size": self.vocab_size}
        _write_spec(model_dir, spec)

    @classmethod
    def _from_spec(cls, model_dir: Path, spec: dict) -> SentencePieceTokenizer:
        name = spec.get("model", SENTENCEPIECE_FILE)
        if not isinstance(name, str) or Path(name).name != name:
            raise TokenizerError(
                f"{model_dir / TOKENIZER_FILE}: field 'model' must be a file name, got {name!r}"
            )
        tokenizer = cls(model_dir / name)
        expected = spec.get("vocab_size", tokenizer.vocab_size)
        if expected != tokenizer.vocab_size:
            raise TokenizerError(
                f"{model_dir / TOKENIZER_FILE}: vocab_size {expected} but {name} has "
                f"{tokenizer.vocab_size} pieces"
            )
        return tokenizer


_KINDS: dict[str, type[Tokenizer]] = {
    CharTokenizer.kind: CharTokenizer,
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
}


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """Load the tokenizer saved in ``model_dir`` (its ``tokenizer.yaml`` says which kind).

    Raises:
        TokenizerError: no such folder, no or malformed ``tokenizer.yaml``, unknown kind, or
            missing/corrupt files; the message names the file.
    """
    model_dir = Path(model_dir)
    spec_path = model_dir / TOKENIZER_FILE
    if not model_dir.is_dir():
        raise TokenizerError(f"{model_dir}: tokenizer directory not found")
    if not spec_path.is_file():
        raise TokenizerError(f"{spec_path}: not found (no tokenizer saved in {model_dir})")
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TokenizerError(f"{spec_path}: not valid YAML ({detail})") from None
    if not isinstance(spec, dict):
        raise TokenizerError(f"{spec_path}: expected a mapping with a 'kind' field")
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise TokenizerError(
            f"{spec_path}: field 'kind' must be one of {sorted(_KINDS)}, got {kind!r}"
        )
    return _KINDS[kind]._from_spec(model_dir, spec)


def vocab_difference(
    lm_vocab: Sequence[str],
    am_vocab: Sequence[str],
    names: tuple[str, str] = ("LM", "acoustic model"),
) -> str | None:
    """None when the vocabularies are identical, else a short description of how they differ
    (``names``: what to call the two vocabularies, default the LM's and the acoustic model's)."""
    lm_vocab, am_vocab = list(lm_vocab), list(am_vocab)
    if lm_vocab == am_vocab:
        return None
    a, b = names
    parts = []
    if len(lm_vocab) != len(am_vocab):
        parts.append(f"sizes {len(lm_vocab)} ({a}) vs {len(am_vocab)} ({b})")
    for i, (x, y) in enumerate(zip(lm_vocab, am_vocab, strict=False)):
        if x != y:
            parts.append(f"first difference at id {i}: {x!r} ({a}) vs {y!r} ({b})")
            break
    only_lm = sorted(set(lm_vocab) - set(am_vocab))[:5]
    only_am = sorted(set(am_vocab) - set(lm_vocab))[:5]
    if only_lm:
        parts.append(f"only in {a}: {only_lm}")
    if only_am:
        parts.append(f"only in {b}: {only_am}")
    return "; ".join(parts)


def char_vocab(texts: Iterable[str]) -> list[str]:
    """``["<blank>", " ", sorted other characters...]`` of the characters in ``texts``."""
    chars: set[str] = set()
    for text in texts:
        chars.update(text)
    chars.discard(" ")
    return [BLANK, " ", *sorted(chars)]


def build_tokenizer(
    kind: str,
    out: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int | None = None,
) -> Tokenizer:
    """Build and save a tokenizer of ``kind`` into ``out``; returns it.

    Args:
        kind: "char", "bpe" or "unigram".
        out: the tokenizer folder (created).
        texts: normalised sentences; char: None gives the default 29 symbols, else their
            character set; bpe/unigram: required, the training text.
        vocab_size: bpe/unigram only: symbols including the blank and ``<unk>``.
    """
    if kind == "char":
        if vocab_size is not None:
            raise TokenizerError("--vocab-size applies to bpe/unigram, not to char tokenizers")
        tokenizer = CharTokenizer(None if texts is None else char_vocab(texts))
        if texts is not None and tokenizer.vocab_size == 2:
            raise TokenizerError("no characters in the given text (empty manifests/files?)")
        tokenizer.save(out)
        return tokenizer
    if texts is None or vocab_size is None:
        raise TokenizerError(f"a {kind} tokenizer needs --vocab-size and --manifest/--text")
    return SentencePieceTokenizer.train(texts, out, vocab_size, model_type=kind)
