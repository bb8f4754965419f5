"""Tokenizers: char and sentencepiece round trips, blank at id 0, save/load, clear errors."""

from __future__ import annotations

import itertools

import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.text.normalize import iter_novel_sentences, normalize_text
from asr.text.tokenizer import (
    BLANK,
    DEFAULT_CHAR_VOCAB,
    TOKENIZER_FILE,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    TokenizerError,
    load_tokenizer,
)

NORMALIZED = st.text(alphabet=st.sampled_from(DEFAULT_CHAR_VOCAB[1:]), max_size=60)


def test_char_default_vocab() -> None:
    tok = CharTokenizer()
    assert tok.vocab_size == 29
    assert tok.vocab[0] == BLANK and tok.blank_id == 0
    assert tok.vocab[1] == " " and tok.vocab[-1] == "'"
    assert tok.encode("AB Z'") == [2, 3, 1, 27, 28]


@settings(max_examples=200, deadline=None)
@given(NORMALIZED)
def test_char_round_trip(text: str) -> None:
    tok = CharTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text) and 0 not in ids
    assert tok.decode(ids) == text


def test_char_decode_drops_only_blanks() -> None:
    tok = CharTokenizer()
    # CTC collapse is the decoder's job: repeats survive, blanks go.
    assert tok.decode([0, 9, 9, 0, 9, 1, 0]) == "HHH "
    with pytest.raises(TokenizerError, match="token id 29 at position 1"):
        tok.decode([2, 29])


def test_char_unknown_characters() -> None:
    with pytest.raises(TokenizerError, match=r"character 'a' \(U\+0061\) at position 2"):
        CharTokenizer().encode("HIa")
    assert CharTokenizer(unknown="skip").encode("HIa!") == [9, 10]


def test_char_custom_vocab_and_bad_vocab(tmp_path) -> None:
    tok = CharTokenizer([BLANK, "a", "b", "é", " "])
    assert tok.decode(tok.encode("a é b")) == "a é b"
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).vocab == tok.vocab
    with pytest.raises(TokenizerError, match="must start with"):
        CharTokenizer(["a", "b"])
    with pytest.raises(TokenizerError, match="duplicate"):
        CharTokenizer([BLANK, "a", "a"])
    with pytest.raises(TokenizerError, match="one character"):
        CharTokenizer([BLANK, "ab"])


def test_char_save_load(tmp_path) -> None:
    tok = CharTokenizer()
    tok.save(tmp_path / "model")
    loaded = load_tokenizer(tmp_path / "model")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.vocab == list(DEFAULT_CHAR_VOCAB)
    text = "IT'S A FINE DAY"
    assert loaded.encode(text) == tok.encode(text)


@pytest.fixture(scope="module")
def novel_sentences(shared_data) -> list[str]:
    """~2k normalised sentences of a real novel (deterministic: the first 2000)."""
    path = shared_data / "text" / "eltec-eng" / "ENG18481_Dickens.txt.gz"
    raw = itertools.islice(iter_novel_sentences(path), 2000)
    return [s for s in map(normalize_text, raw) if s]


@pytest.mark.parametrize(("model_type", "vocab_size"), [("bpe", 256), ("unigram", 200)])
def test_sentencepiece_train_round_trip(tmp_path, novel_sentences, model_type, vocab_size):
    tok = SentencePieceTokenizer.train(
        iter(novel_sentences), tmp_path / "m", vocab_size, model_type=model_type
    )
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == vocab_size
    assert tok.vocab[0] == BLANK and tok.vocab[1] == "<unk>"
    # The raw sentencepiece model agrees: blank is its pad id 0, ids are its own ids.
    proc = spm.SentencePieceProcessor(model_file=str(tmp_path / "m" / "tokenizer.model"))
    assert proc.pad_id() == 0 and proc.IdToPiece(0) == BLANK
    for text in novel_sentences[:300]:
        ids = tok.encode(text)
        assert 0 not in ids and tok.unk_id not in ids
        assert ids == proc.EncodeAsIds(text)
        assert tok.decode(ids) == text
        # blanks anywhere are ignored by decode
        assert tok.decode([0, *itertools.chain.from_iterable((i, 0) for i in ids)]) == text
    assert len(tok.encode(novel_sentences[0])) < len(novel_sentences[0])  # pieces > chars
    loaded = load_tokenizer(tmp_path / "m")
    assert isinstance(loaded, SentencePieceTokenizer)
    assert loaded.vocab == tok.vocab
    assert loaded.encode(novel_sentences[1]) == tok.encode(novel_sentences[1])
    # save into another model directory copies the model file
    loaded.save(tmp_path / "copy")
    assert load_tokenizer(tmp_path / "copy").vocab == tok.vocab
    with pytest.raises(TokenizerError, match=r"character 'é' \(U\+00E9\)"):
        tok.encode("CAFé")


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory, novel_sentences) -> SentencePieceTokenizer:
    out = tmp_path_factory.mktemp("bpe")
    return SentencePieceTokenizer.train(novel_sentences, out, 128, model_type="bpe")


WORDS = st.lists(
    st.text(alphabet=st.sampled_from(DEFAULT_CHAR_VOCAB[2:]), min_size=1, max_size=12),
    max_size=8,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(WORDS)
def test_sentencepiece_round_trip_any_normalized_text(bpe_tokenizer, text: str) -> None:
    """Any text in the normalised alphabet (single spaces) survives encode -> decode."""
    ids = bpe_tokenizer.encode(text)
    assert 0 not in ids
    assert bpe_tokenizer.decode(ids) == text


def test_sentencepiece_bad_arguments(tmp_path) -> None:
    texts = ["HELLO WORLD", "A SMALL TEXT"]
    with pytest.raises(TokenizerError, match="model_type"):
        SentencePieceTokenizer.train(texts, tmp_path, 10, model_type="word")  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match="sentencepiece training failed"):
        SentencePieceTokenizer.train(texts, tmp_path, 5000)


def test_load_tokenizer_errors(tmp_path) -> None:
    with pytest.raises(TokenizerError, match="tokenizer directory not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(TokenizerError, match=f"{TOKENIZER_FILE}: not found"):
        load_tokenizer(tmp_path)
    spec = tmp_path / TOKENIZER_FILE
    spec.write_text("kind: [unclosed\n")
    with pytest.raises(TokenizerError, match="not valid YAML"):
        load_tokenizer(tmp_path)
    spec.write_text("kind: words\n")
    with pytest.raises(TokenizerError, match="field 'kind' must be one of"):
        load_tokenizer(tmp_path)
    spec.write_text("kind: char\nvocab: [a, b]\n")
    with pytest.raises(TokenizerError, match="must start with"):
        load_tokenizer(tmp_path)
    spec.write_text("kind: sentencepiece\nmodel: tokenizer.model\n")
    with pytest.raises(TokenizerError, match="sentencepiece model file not found"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a sentencepiece model"):
        load_tokenizer(tmp_path)
    spec.write_text("kind: sentencepiece\nmodel: ../elsewhere.model\n")
    with pytest.raises(TokenizerError, match="must be a file name"):
        load_tokenizer(tmp_path)
