"""asr tokenizer: char (default and from text), bpe/unigram from manifests and text files, skip
and --force, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.manifest import Utterance, write_manifest
from asr.text.tokenizer import DEFAULT_CHAR_VOCAB, load_tokenizer

SENTENCES = [
    "THE CAT SAT ON THE MAT",
    "A DOG'S LIFE IS NOT SO BAD",
    "QUICK BROWN FOXES",
    "HELLO WORLD",
]


@pytest.fixture()
def manifest(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    utts = [Utterance(f"a{i}.wav", 1.0, text) for i, text in enumerate(SENTENCES)]
    write_manifest(path, utts)
    return path


def test_char_default(tmp_path, capsys):
    assert main(["tokenizer", "--out", str(tmp_path / "tok")]) == 0
    tok = load_tokenizer(tmp_path / "tok")
    assert tok.vocab == list(DEFAULT_CHAR_VOCAB) and tok.vocab_size == 29
    assert "29 symbols" in capsys.readouterr().out


def test_char_from_text_is_the_character_set(tmp_path, manifest):
    text = tmp_path / "extra.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as fh:
        fh.write("ZZ TOP\n\n")
    out = tmp_path / "tok"
    args = ["tokenizer", "--from-text", "--manifest", str(manifest), "--text", str(text)]
    assert main([*args, "--out", str(out)]) == 0
    tok = load_tokenizer(out)
    expected = sorted(set("".join(SENTENCES) + "ZZTOP") - {" "})
    assert tok.vocab == ["<blank>", " ", *expected]
    for sentence in SENTENCES:
        assert tok.decode(tok.encode(sentence)) == sentence


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_from_manifest(tmp_path, manifest, kind):
    out = tmp_path / kind
    args = ["tokenizer", "--kind", kind, "--vocab-size", "28", "--manifest", str(manifest)]
    assert main([*args, "--out", str(out)]) == 0
    tok = load_tokenizer(out)
    assert tok.vocab_size == 28 and tok.vocab[0] == "<blank>"
    for sentence in SENTENCES:
        assert tok.decode(tok.encode(sentence)) == sentence


def test_existing_tokenizer_is_kept_unless_forced(tmp_path, manifest, capsys):
    out = tmp_path / "tok"
    assert main(["tokenizer", "--out", str(out)]) == 0
    args = ["tokenizer", "--from-text", "--manifest", str(manifest), "--out", str(out)]
    assert main(args) == 0
    assert "exists" in capsys.readouterr().out
    assert load_tokenizer(out).vocab_size == 29
    assert main([*args, "--force"]) == 0
    assert load_tokenizer(out).vocab_size < 29


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kind", "bpe"], "needs --vocab-size"),
        (["--kind", "char", "--vocab-size", "10"], "applies to bpe/unigram"),
        (["--from-text"], "--from-text needs --manifest or --text"),
        (["--manifest", "{manifest}"], "only read with --from-text"),
        (["--kind", "bpe", "--vocab-size", "10", "--text", "{missing}"], "cannot read text"),
    ],
)
def test_errors_are_one_line(tmp_path, manifest, capsys, extra, message):
    extra = [a.format(manifest=manifest, missing=tmp_path / "nope.txt") for a in extra]
    assert main(["tokenizer", *extra, "--out", str(tmp_path / "tok")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
