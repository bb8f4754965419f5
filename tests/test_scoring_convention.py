"""asr.scoring.convention: the writing convention of transcripts and the one normalisation policy
of ``asr score``, LM-weight tuning and validation (jiwer on the raw text as the reference)."""

from __future__ import annotations

import json

import jiwer
import pytest

from asr.cli import main


def test_cli_normalize(tmp_path, capsys):
    pytest.importorskip("asr.text.normalize")
    (tmp_path / "r.txt").write_text("Mr. Smith paid 5 pounds.\n")
    (tmp_path / "h.txt").write_text("MISTER SMITH PAID FIVE POUNDS\n")
    args = ["score", str(tmp_path / "r.txt"), str(tmp_path / "h.txt"), "--format", "plain"]
    assert main([*args, "--json", "--exact"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] > 0
    assert main([*args, "--json", "--normalize"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] == 0.0


@pytest.mark.parametrize(
    "texts, want",
    [
        (["Hello, world."], "mixed case with punctuation"),
        (["HELLO WORLD", "IT'S"], "upper case without punctuation or digits"),
        (["in 1465 we"], "lower case with digits"),
        (["ÉCOLE D'ÉTÉ"], "upper case without punctuation or digits"),
        (["你好。"], "no cased letters with punctuation"),
    ],
)
def test_text_convention(texts, want):
    from asr.scoring.convention import text_convention

    conv = text_convention(texts)
    assert conv.describe() == want
    assert conv.latin == (texts != ["你好。"])


def test_cli_mismatched_conventions_are_normalised_and_said(tmp_path, capsys):
    """Raw LJSpeech references (mixed case, punctuation, digits) against upper-case output gave
    101 % WER with no warning; now both are normalised and stderr says so; --exact keeps the
    text as given and warns. The normalised score equals scoring normalised references."""
    from asr.text.normalize import normalize_text

    raw = ["Printing, in the only sense with which we are at present concerned,",
           "the earliest book printed with movable types, of about 1455,",
           'or "forty-two line Bible," in being comparatively modern.']  # fmt: skip
    hyp = ["PRINTING IN THE ONLY SENSE WITH WHICH WE ARE PRESENT CONCERNED",
           "THE EARLIEST BOOK PRINTED WITH MOVABLE TYPES OF ABOUT FOURTEEN FIFTY FIVE",
           "OR FORTY TWO LINE BIBLE IN BEING COMPARATIVELY MODERN"]  # fmt: skip
    (tmp_path / "raw.txt").write_text("\n".join(raw) + "\n")
    (tmp_path / "norm.txt").write_text("\n".join(map(normalize_text, raw)) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(hyp) + "\n")

    def run(ref: str, *extra: str) -> tuple[dict, str]:
        args = ["score", str(tmp_path / ref), str(tmp_path / "hyp.txt"), "--format", "plain"]
        assert main([*args, "--json", *extra]) == 0
        out, err = capsys.readouterr()
        return json.loads(out), err

    auto, note = run("raw.txt")
    exact, warning = run("raw.txt", "--exact")
    reference, quiet = run("norm.txt")
    assert note.startswith("note: REF is mixed case with punctuation and digits, HYP is upper "
                           "case without punctuation or digits: both normalised")  # fmt: skip
    assert len(note.splitlines()) == 1 and auto["normalized"] and not reference["normalized"]
    assert auto["wer"] == reference["wer"] == pytest.approx(1 / 33)  # AT deleted
    assert quiet == ""  # matching conventions: nothing to say
    assert warning.startswith("warning: REF is mixed case") and "--exact" in warning
    assert exact["wer"] > 0.3 and not exact["normalized"]
    with pytest.raises(SystemExit):  # argparse: one or the other
        main(["score", str(tmp_path / "raw.txt"), str(tmp_path / "hyp.txt"), "--exact",
              "--normalize"])  # fmt: skip
    assert "not allowed with" in capsys.readouterr().err


def test_cli_non_latin_text_is_never_normalised_by_default(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("Привет, мир.\n")
    (tmp_path / "h.txt").write_text("привет мир\n")
    args = ["score", str(tmp_path / "r.txt"), str(tmp_path / "h.txt"), "--format", "plain"]
    assert main([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["wer"] == 1.0 and "not Latin script: scored as given" in err


def test_tuning_scores_under_the_policy_of_asr_score() -> None:
    """LM-weight tuning and validation score as ``asr score`` does: raw references with case and
    punctuation are normalised against upper-case hypotheses (the old tuner counted them)."""
    from asr.inference.tune import word_error_rate
    from asr.scoring.convention import comparable, decide_normalization

    refs = ["Hello, world: 21 ships.", "It's fine."]
    hyps = ["HELLO WORLD TWENTY ONE SHIPS", "IT'S FINE"]
    assert word_error_rate(refs, hyps) == 0.0
    assert jiwer.wer(refs, hyps) > 0.5  # as given they differ in every word
    assert decide_normalization(refs, hyps, "never").apply is False
    assert "scored as given" in (decide_normalization(refs, hyps, "never").message or "")
    same = ["HELLO WORLD", "IT'S FINE"]
    assert comparable(same, hyps, "auto")[2].apply is False  # same convention: as given
    ids = comparable({"a": refs[0]}, {"a": hyps[0]}, "auto")
    assert ids[0] == {"a": "HELLO WORLD TWENTY ONE SHIPS"} and ids[2].message.startswith("note:")
