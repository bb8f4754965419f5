"""KenLM word-level fusion through pyctcdecode (asr.decode.kenlm_backend)."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from asr.decode.beam import BeamSearchConfig, beam_search
from asr.decode.kenlm_backend import (
    KenLMDecoder,
    KenLMError,
    KenLMOptions,
    arpa_unigrams,
    is_kenlm_path,
    pyctcdecode_labels,
)
from asr.lm.ngram import KenLMScorer, quiet_kenlm
from asr.text.tokenizer import CharTokenizer

pytest.importorskip("pyctcdecode")
pytest.importorskip("kenlm")

ARPA = """\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-0.7\t</s>\t0
-0.6\tYES\t-0.2
-0.9\tNO\t-0.2
-1.2\tSEE\t-0.2

\\2-grams:
-0.2\t<s> YES
-0.3\tYES </s>
-0.4\t<s> NO
-0.3\tNO </s>

\\end\\
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture()
def arpa(tmp_path):
    path = tmp_path / "words.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return path


def spell(tok: CharTokenizer, frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, T, V) log-probs: each frame a distribution given as {symbol: prob}, rest to blank."""
    lp = torch.full((1, len(frames), tok.vocab_size), 1e-6)
    for t, probs in enumerate(frames):
        for sym, p in probs.items():
            lp[0, t, tok.vocab.index(sym)] = p
        lp[0, t, 0] += 1.0 - lp[0, t].sum()
    return lp.clamp_min(1e-6).log()


def test_labels_and_paths(arpa):
    assert pyctcdecode_labels(["<blank>", " ", "A"]) == ["", " ", "A"]
    assert is_kenlm_path("lm.arpa") and is_kenlm_path("x/4gram.BIN")
    assert not is_kenlm_path("exp/lm")
    assert arpa_unigrams(arpa) == ["<unk>", "<s>", "</s>", "YES", "NO", "SEE"]


def test_lm_flips_the_answer(arpa):
    tok = CharTokenizer()
    lp = spell(tok, [{"Y": 0.9}, {}, {"E": 0.9}, {}, {"S": 0.4, "Z": 0.5}, {}])
    lengths = torch.tensor([6])
    plain = KenLMDecoder(tok, None, BeamSearchConfig(beam_size=8, alpha=0.0, beta=0.0))
    assert plain.decode(lp, lengths)[0].text == "YEZ"
    fused = KenLMDecoder(tok, arpa, BeamSearchConfig(beam_size=8, alpha=1.0, beta=0.0))
    best = fused.decode(lp, lengths)[0]
    assert best.text == "YES"
    assert best.token_ids == tuple(tok.encode("YES")) and best.frames[0] == 0
    assert best.score < best.acoustic_score  # the LM part is a log-probability


def test_hotwords_boost(arpa):
    tok = CharTokenizer()
    lp = spell(tok, [{"N": 0.9}, {"O": 0.45, "A": 0.5}, {}, {}])
    cfg = BeamSearchConfig(beam_size=8, alpha=0.0, beta=0.0)
    assert KenLMDecoder(tok, None, cfg).decode(lp, torch.tensor([4]))[0].text == "NA"
    boosted = KenLMDecoder(tok, None, cfg, KenLMOptions(hotwords=("NO",), hotword_weight=5.0))
    assert boosted.decode(lp, torch.tensor([4]))[0].text == "NO"


def test_without_lm_agrees_with_our_beam_search():
    """Same text as our search where both are exact (peaky emissions, wide beams)."""
    tok = CharTokenizer(["<blank>", "A", "B", "C", "D"])
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(4.0 * torch.randn(8, 12, 5, generator=g), -1)
    lengths = torch.tensor([12, 9, 12, 5, 12, 7, 3, 12])
    cfg = BeamSearchConfig(
        beam_size=32, alpha=0.0, beta=0.0, token_min_logp=None, beam_threshold=None
    )
    theirs = KenLMDecoder(tok, None, cfg).decode(lp, lengths)
    ours = beam_search(lp, lengths, cfg, tokenizer=tok)
    assert [h.text for h in theirs] == [u[0].text for u in ours]


def test_word_frames_are_word_starts():
    tok = CharTokenizer()
    frames = [{"N": 0.9}, {"O": 0.9}, {}, {" ": 0.9}, {}, {"Y": 0.9}, {"E": 0.9}, {"S": 0.9}]
    hyp = KenLMDecoder(tok, None, BeamSearchConfig(alpha=0.0, beta=0.0)).decode(
        spell(tok, frames), torch.tensor([8])
    )[0]
    assert hyp.text == "NO YES"
    assert hyp.token_ids == tuple(tok.encode("NO YES"))
    assert hyp.frames[0] == 0 and hyp.frames[3] == 5  # N and Y start their words


def test_mismatched_lm_is_an_error(arpa, tmp_path):
    lower = tmp_path / "lower.arpa"
    lower.write_text(ARPA.replace("YES", "yes").replace("NO", "no").replace("SEE", "see"))
    with pytest.raises(KenLMError, match="cannot emit"):
        KenLMDecoder(CharTokenizer(), lower)
    with pytest.raises(KenLMError, match="not found"):
        KenLMDecoder(CharTokenizer(), tmp_path / "missing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("hello\n")
    with pytest.raises(KenLMError, match="not an ARPA"):
        KenLMDecoder(CharTokenizer(), bad)


def test_loading_is_quiet_on_the_happy_path(arpa, capfd, caplog):
    """Issue 25 item 20: loading an ARPA file printed KenLM's "Loading the LM will be faster if
    you build a binary file", a ruler and a row of ``*``, and pyctcdecode's "Unigrams and labels
    don't seem to agree" (our own check, check_words_encodable, is the real one)."""
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        KenLMDecoder(CharTokenizer(), arpa)
        KenLMScorer(arpa, chars=False)
    assert capfd.readouterr().err == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []


def test_real_messages_and_errors_stay_visible(tmp_path, capfd):
    """Only KenLM's loading chatter is dropped: any other line written to the process's stderr
    while loading is passed on, and a file KenLM refuses is still a one-line error."""
    chatter = (
        "Loading the LM will be faster if you build a binary file.\nReading /x/words.arpa\n"
        "----5---10---15---20---25---30---35---40---45---50---55---60---65---70---75---80---85"
        "---90---95--100\n" + "*" * 100 + "\n"
    )
    capfd.readouterr()
    with quiet_kenlm():
        os.write(2, (chatter + "WARNING: something real\n").encode())
    assert capfd.readouterr().err == "WARNING: something real\n"
    unigrams_only = tmp_path / "one.arpa"
    unigrams_only.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\tYES\n-1\tNO\n\n\\end\\\n")
    with pytest.raises(KenLMError, match=r"cannot load the KenLM model: .*bigram") as err:
        KenLMDecoder(CharTokenizer(), unigrams_only)
    assert "\n" not in str(err.value) and capfd.readouterr().err == ""
