"""asr.scoring.wer, asr.scoring.transcripts and ``asr score``: against hand counts, a brute-force
edit distance and jiwer's own rates (text conventions: tests/test_scoring_convention.py)."""

from __future__ import annotations

import json
import math

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.cli import main
from asr.scoring.transcripts import detect_format, read_transcripts
from asr.scoring.wer import ScoreError, format_alignment, format_report, score


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Textbook Levenshtein distance (unit costs), independent of jiwer."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def _counts(report) -> tuple[int, int, int, int]:
    w = report.words
    return w.hits, w.substitutions, w.deletions, w.insertions


@pytest.mark.parametrize(
    ("ref", "hyp", "hits", "subs", "dels", "ins"),
    [
        ("THE CAT SAT", "THE CAT SAT", 3, 0, 0, 0),
        ("THE CAT SAT", "THE CAT SAT DOWN", 3, 0, 0, 1),
        ("THE CAT SAT", "THE DOG SAT", 2, 1, 0, 0),
        ("THE CAT SAT", "CAT SAT", 2, 0, 1, 0),
        ("A B C D", "A X C", 2, 1, 1, 0),
        ("A B", "", 0, 0, 2, 0),
        ("", "A B", 0, 0, 0, 2),
        ("", "", 0, 0, 0, 0),
        ("  A   B ", "A B", 2, 0, 0, 0),  # whitespace runs are one separator
    ],
)
def test_hand_computed_word_counts(ref, hyp, hits, subs, dels, ins):
    report = score([ref], [hyp])
    assert _counts(report) == (hits, subs, dels, ins)
    n = len(ref.split())
    errors = subs + dels + ins
    expected = errors / n if n else (0.0 if errors == 0 else math.inf)
    assert report.wer == expected
    assert report.num_utterances == 1
    assert report.num_utterances_with_errors == int(errors > 0)


def test_empty_reference_rates_and_json():
    report = score({"a": "", "b": ""}, {"a": "", "b": "X"})
    assert math.isinf(report.wer) and math.isinf(report.cer)
    data = report.to_dict()
    assert data["wer"] is None and data["words"]["insertions"] == 1
    json.dumps(data, allow_nan=False)
    assert score([""], [""]).wer == 0.0


def test_hand_computed_character_counts():
    report = score(["abc", "ab cd"], ["abd", "abcd"])
    # abc -> abd: 1 sub of 3 chars; "ab cd" -> "abcd": 1 deleted space of 5 chars.
    assert report.chars.ref_len == 8 and report.chars.errors == 2
    assert report.cer == 2 / 8
    assert report.chars.substitutions == 1 and report.chars.deletions == 1


words = st.lists(st.sampled_from(["A", "B", "C", "D"]), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=1, max_size=4))
def test_counts_match_brute_force_edit_distance(pairs):
    refs = [" ".join(r) for r, _ in pairs]
    hyps = [" ".join(h) for _, h in pairs]
    report = score(refs, hyps)
    for utt, (ref, hyp) in zip(report.utterances, pairs):
        w = utt.words
        assert w.errors == edit_distance(ref, hyp)
        assert w.hits + w.substitutions + w.deletions == len(ref) == w.ref_len
        assert w.hits + w.substitutions + w.insertions == len(hyp) == w.hyp_len
        # The alignment spells out both sides.
        assert [t.ref for t in utt.alignment if t.ref is not None] == ref
        assert [t.hyp for t in utt.alignment if t.hyp is not None] == hyp
        assert all((t.op == "C") == (t.ref == t.hyp) for t in utt.alignment)
        assert utt.chars.errors == edit_distance(list(" ".join(ref)), list(" ".join(hyp)))
    total_ref = sum(len(r) for r, _ in pairs)
    if total_ref:
        assert report.wer == pytest.approx(jiwer.wer(refs, hyps))
        assert report.cer == pytest.approx(jiwer.cer(refs, hyps))


def test_against_jiwer_on_realistic_sentences():
    refs = {
        "1": "HE HOPED THERE WOULD BE STEW FOR DINNER TURNIPS AND CARROTS",
        "2": "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM",
        "3": "AFTER EARLY NIGHTFALL THE YELLOW LAMPS WOULD LIGHT UP HERE AND THERE",
    }
    hyps = {
        "3": "AFTER EARLY NIGHT FALL THE YELLOW LAMPS WOULD LIGHT UP HERE AND THERE",
        "1": "HE HOPED THERE WOULD BE STEW FOR DINNER TURNIPS AND CARROTS",
        "2": "STUFF IT IN TO YOU HIS BELLY COUNSEL HIM",
    }
    report = score(refs, hyps)
    ordered = [hyps[k] for k in refs]
    out = jiwer.process_words(list(refs.values()), ordered)
    assert report.wer == pytest.approx(out.wer)
    assert (report.words.substitutions, report.words.deletions, report.words.insertions) == (
        out.substitutions,
        out.deletions,
        out.insertions,
    )
    assert report.cer == pytest.approx(jiwer.cer(list(refs.values()), ordered))
    assert [u.utt_id for u in report.utterances] == ["1", "2", "3"]  # reference order
    assert report.num_utterances_with_errors == 2


def test_confusions_are_counted_and_ranked():
    refs = ["A CAT", "A CAT SAT", "THE DOG", "THE END"]
    hyps = ["THE CAT", "THE CAT", "A DOG", "THE END NOW"]
    report = score(refs, hyps)
    assert report.substitutions == (("A", "THE", 2), ("THE", "A", 1))
    assert report.deletions == (("SAT", 1),)
    assert report.insertions == (("NOW", 1),)
    text = format_report(report, title="hyp.txt", top=1)
    assert "      2  A -> THE" in text and "THE -> A" not in text
    assert "%WER 55.56 [ 5 / 9, 1 ins, 1 del, 3 sub ]" in text
    assert "%SER 100.00 [ 4 / 4 ]" in text
    assert "| word    |      4       9 |   55.6   33.3   11.1   11.1   55.6  100.0 |" in text


def test_alignment_text_and_char_unit():
    report = score(["THE CAT SAT"], ["THE KITTEN SAT DOWN"])
    assert format_alignment(report.utterances[0]).splitlines() == [
        "REF: THE CAT    SAT ***",
        "HYP: THE KITTEN SAT DOWN",
        "         S          I",
    ]
    chars = score(["ab c"], ["a c"], unit="char")
    assert chars.unit == "char" and chars.deletions == (("b", 1),)
    assert format_alignment(chars.utterances[0], "char").splitlines()[0] == "REF: a b   | c"
    with pytest.raises(ValueError, match="unit"):
        score(["a"], ["a"], unit="phone")


def test_pairing_errors():
    with pytest.raises(ScoreError, match=r"^hyp\.txt: no hypothesis for utterance 'b'$"):
        score({"a": "X", "b": "Y"}, {"a": "X"}, ref_name="ref.txt", hyp_name="hyp.txt")
    with pytest.raises(ScoreError, match=r"hyp\.txt: utterance 'c' is not in the reference"):
        score({"a": "X"}, {"a": "X", "c": "Y"}, ref_name="ref.txt", hyp_name="hyp.txt")
    with pytest.raises(ScoreError, match=r"hyp\.txt: has 1 utterances but ref\.txt has 2"):
        score(["X", "Y"], ["X"], ref_name="ref.txt", hyp_name="hyp.txt")
    with pytest.raises(ScoreError, match=r"^hyp\.txt: has no utterance ids but ref\.txt has"):
        score({"a": "X"}, ["X"], ref_name="ref.txt", hyp_name="hyp.txt")


# ---------------------------------------------------------------- transcript files


def test_read_formats(tmp_path):
    (tmp_path / "k").write_text("1089-1-0 HELLO WORLD\n1089-1-1\n\n1089-1-2  SPACED   OUT \n")
    assert read_transcripts(tmp_path / "k") == {
        "1089-1-0": "HELLO WORLD",
        "1089-1-1": "",
        "1089-1-2": "SPACED   OUT",
    }
    (tmp_path / "h.trn").write_text("hello world (utt_a)\n(utt_b)\n")
    assert read_transcripts(tmp_path / "h.trn") == {"utt_a": "hello world", "utt_b": ""}
    (tmp_path / "p.txt").write_text("hello world\n\nthird line\n")
    assert read_transcripts(tmp_path / "p.txt") == ["hello world", "", "third line"]
    assert read_transcripts(tmp_path / "k", fmt="plain")[0] == "1089-1-0 HELLO WORLD"
    (tmp_path / "digits.txt").write_text("4 SCORE AND 7 YEARS\n")
    assert detect_format(tmp_path / "digits.txt", ["4 SCORE"]) == "kaldi"
    assert read_transcripts(tmp_path / "digits.txt", fmt="plain") == ["4 SCORE AND 7 YEARS"]


def test_read_jsonl_ids_and_keys(tmp_path):
    (tmp_path / "wav").mkdir()
    lines = [
        {"audio_filepath": "wav/a.wav", "duration": 1.0, "text": "A", "pred_text": "PA"},
        {"audio_filepath": str(tmp_path / "wav" / "b.wav"), "duration": 1.0, "text": "B"},
        {"audio_filepath": "wav/b.wav", "offset": 2.5, "duration": 1.0, "text": "C"},
        {"utt_id": "u4", "audio_filepath": "x.wav", "text": "D"},
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    a, b = str(tmp_path / "wav" / "a.wav"), str(tmp_path / "wav" / "b.wav")
    assert read_transcripts(tmp_path / "m.jsonl") == {a: "PA", b: "B", f"{b}@2.5": "C", "u4": "D"}
    assert read_transcripts(tmp_path / "m.jsonl", text_key="text")[a] == "A"


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (
            '{"utt_id": "a", "text": "X"}\n{"utt_id": "a", "text": "Y"}\n',
            "jsonl",
            r"m:2: duplicate utterance id 'a' \(first on line 1\)",
        ),
        ('{"utt_id": "a", "text": "X"}\n{bad json\n', "jsonl", r"m:2: bad JSON"),
        ('{"utt_id": "a", "txt": "X"}\n', "jsonl", r"m:1: missing or non-string 'text'"),
        ('{"text": "X"}\n', "jsonl", r"m:1: needs 'utt_id' or 'audio_filepath'"),
        ("u1 A\nu2 B\nu1 C\n", "kaldi", r"m:3: duplicate utterance id 'u1'"),
        ("a (x)\nno id here\n", "trn", r"m:2: not a trn line"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path, content, fmt, message):
    (tmp_path / "m").write_text(content)
    with pytest.raises(ScoreError, match=message):
        read_transcripts(tmp_path / "m", fmt=fmt)


def test_read_missing_and_binary_files(tmp_path):
    with pytest.raises(ScoreError, match="no such file"):
        read_transcripts(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScoreError, match="not UTF-8"):
        read_transcripts(tmp_path / "bin.txt")


# ---------------------------------------------------------------- CLI


def _write_pair(tmp_path):
    ref = tmp_path / "ref.jsonl"
    hyp = tmp_path / "hyp"
    ref.write_text(
        "".join(
            json.dumps({"utt_id": f"spk-{i}", "audio_filepath": f"{i}.wav", "text": t}) + "\n"
            for i, t in enumerate(["THE CAT SAT", "ON THE MAT", "HELLO"])
        )
    )
    hyp.write_text("spk-2 HELLO\nspk-0 THE CAT SAT\nspk-1 ON A MAT TODAY\n")
    return ref, hyp


def test_cli_text_and_json(tmp_path, capsys):
    ref, hyp = _write_pair(tmp_path)
    assert main(["score", str(ref), str(hyp)]) == 0
    out = capsys.readouterr().out
    assert "%WER 28.57 [ 2 / 7, 1 ins, 0 del, 1 sub ]" in out
    assert "HYP: ON A   MAT TODAY" in out and "THE -> A" in out
    assert main(["score", str(ref), str(hyp), "--json", "--cer"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["wer"] == pytest.approx(2 / 7)
    assert data["unit"] == "char" and data["num_utterances"] == 3
    refs = ["THE CAT SAT", "ON THE MAT", "HELLO"]
    hyps = ["THE CAT SAT", "ON A MAT TODAY", "HELLO"]
    assert data["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    assert [u["utt_id"] for u in data["utterances"]] == ["spk-0", "spk-1", "spk-2"]


def test_cli_plain_text_and_alignment_filter(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("a b\nc d\n")
    (tmp_path / "h.txt").write_text("a b\nc e\n")
    assert (
        main(["score", str(tmp_path / "r.txt"), str(tmp_path / "h.txt"), "--alignments", "errors"])
        == 0
    )
    out = capsys.readouterr().out
    assert "id: 2 " in out and "id: 1 " not in out
    assert "%WER 25.00 [ 1 / 4" in out


def test_cli_mismatched_ids_are_one_line_errors(tmp_path, capsys):
    ref, hyp = _write_pair(tmp_path)
    hyp.write_text("spk-2 HELLO\nspk-0 THE CAT SAT\n")
    assert main(["score", str(ref), str(hyp)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {hyp}: no hypothesis for utterance 'spk-1'\n"
    hyp.write_text("spk-2 HELLO\nspk-0 THE CAT SAT\nspk-1 X\nspk-9 EXTRA\n")
    assert main(["score", str(ref), str(hyp)]) == 2
    assert "utterance 'spk-9' is not in the reference" in capsys.readouterr().err
    hyp.write_text("spk-2 HELLO\nspk-2 HELLO\n")
    assert main(["score", str(ref), str(hyp)]) == 2
    assert f"error: {hyp}:2: duplicate utterance id 'spk-2'" in capsys.readouterr().err


def test_cli_jsonl_matching_by_audio_path_when_hyp_lacks_ids(tmp_path, capsys):
    """REF has utt_ids, HYP (decoder output) only audio paths and pred_text: paired by path."""
    ref = tmp_path / "ref.jsonl"
    hyp = tmp_path / "out" / "hyp.jsonl"
    hyp.parent.mkdir()
    ref.write_text(
        json.dumps({"utt_id": "u1", "audio_filepath": "a.wav", "text": "A B"})
        + "\n"
        + json.dumps({"utt_id": "u2", "audio_filepath": "b.wav", "text": "C D"})
        + "\n"
    )
    hyp.write_text(
        json.dumps({"audio_filepath": "../b.wav", "text": "C D", "pred_text": "C"})
        + "\n"
        + json.dumps({"audio_filepath": str(tmp_path / "a.wav"), "pred_text": "A B"})
        + "\n"
    )
    assert main(["score", str(ref), str(hyp), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["wer"] == 0.25 and data["words"]["deletions"] == 1
    assert main(["score", str(ref), str(hyp), "--match", "utt_id"]) == 2
    assert f"error: {hyp}:1: no 'utt_id'" in capsys.readouterr().err


def _score_cli(tmp_path, capsys, ref: str, hyp: str, *extra: str) -> tuple[int, dict, str]:
    (tmp_path / "r").write_text(ref)
    (tmp_path / "h").write_text(hyp)
    rc = main(["score", str(tmp_path / "r"), str(tmp_path / "h"), "--json", *extra])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else {}), err


def test_cli_ids_without_digits_pair_by_id(tmp_path, capsys):
    """Issue 25: ids without a digit were read as plain text and paired by line number: a
    perfect hypothesis in another order scored 100 %."""
    rc, data, err = _score_cli(
        tmp_path, capsys, "alpha A B C\nbeta D E F\n", "beta D E F\nalpha A B C\n"
    )
    assert rc == 0 and data["wer"] == 0.0 and data["words"]["ref_len"] == 6
    assert [u["utt_id"] for u in data["utterances"]] == ["alpha", "beta"] and err == ""


def test_cli_bundled_samples_against_transcribe_output(tmp_path, capsys):
    """`asr transcribe asr/pretrained/samples/` prints ``name text`` lines in file-name order,
    the reverse of samples/text: scored by id (it gave 106 % WER by line number)."""
    from asr.pretrained import DEFAULT_MODEL_DIR

    ref = (DEFAULT_MODEL_DIR.parent / "samples" / "text").read_text()
    refs = dict(line.split(" ", 1) for line in ref.splitlines())
    hyps = {"ljspeech-LJ001-0001": "RETAIN IN THE ONLY SENSE WITH WHICH WE ARE PRESENT "
            "CONSTERED DIFFERS FROM MOST OF NOT FROM ALL THE REST AND PRET REPRESENTED IN THE "
            "BASIN", "synth-test": "BUT YOU MUST HAVE IT HE CLOSELY TO SEE A LIKE I WENT AND "
            "THAT CAN TRAVEL ON THE RAILWAY"}  # fmt: skip
    assert sorted(refs) == sorted(hyps) and list(refs) != sorted(refs)
    hyp = "".join(f"{k} {hyps[k]}\n" for k in sorted(hyps))
    rc, data, err = _score_cli(tmp_path, capsys, ref, hyp)
    keys = list(refs)
    assert rc == 0 and err == ""
    assert data["wer"] == pytest.approx(jiwer.wer([refs[k] for k in keys], [hyps[k] for k in keys]))
    assert data["words"]["ref_len"] == sum(len(refs[k].split()) for k in keys)


@pytest.mark.parametrize(
    ("ref", "hyp", "want"),
    [
        ("synth-test A B C\n", "synth-test A B D\n", 1 / 3),  # one-line Kaldi: id not a word
        ("alpha A B C\n", "alpha A B D\n", 1 / 3),
        ("synth-test A B C\n", "A B D\n", 1 / 3),  # one utterance against one bare line
        ("THE CAT SAT\n", "THE DOG SAT\n", 1 / 3),  # plain text stays plain
        ("a b\nc d\n", "a b\nc e\n", 1 / 4),
    ],
)
def test_cli_one_line_and_plain_files(tmp_path, capsys, ref, hyp, want):
    rc, data, _ = _score_cli(tmp_path, capsys, ref, hyp)
    assert rc == 0 and data["wer"] == pytest.approx(want)


def test_cli_says_which_pairing_when_in_doubt(tmp_path, capsys):
    _, data, err = _score_cli(tmp_path, capsys, "THE CAT\nA DOG\n", "THE CAT\nA FROG\n")
    assert data["wer"] == 0.25 and err.startswith("note: every line of") and "--format kaldi" in err
    _, data, err = _score_cli(tmp_path, capsys, "synth-test A B\n", "A C\n")
    assert data["wer"] == 0.5 and "paired with the one utterance 'synth-test'" in err
    _, data, err = _score_cli(tmp_path, capsys, "THE CAT\nA DOG\n", "THE CAT\nA FROG\n",
                              "--format", "plain")  # fmt: skip
    assert data["wer"] == 0.25 and err == ""


@pytest.mark.parametrize(
    ("ref", "hyp", "message"),
    [  # ids that disagree are never paired by line number
        ("alpha A\nbeta B\n", "alpha A\ngamma B\n", "no hypothesis for utterance 'beta'"),
        ("utt-1 A\nutt-2 B\n", "A\nB\n", "has no utterance ids but"),
        ("THE CAT\nA DOG\n", "A CAT\nTHE DOG\n", "cannot tell whether the first word"),
    ],
)
def test_cli_ids_that_disagree_are_one_line_errors(tmp_path, capsys, ref, hyp, message):
    rc, _, err = _score_cli(tmp_path, capsys, ref, hyp)
    assert rc == 2 and message in err and len(err.splitlines()) == 1


ids = st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=5, unique=True)


@settings(max_examples=200, deadline=None)
@given(ids, st.randoms(use_true_random=False), st.booleans())
def test_detection_never_pairs_different_ids(tmp_path_factory, names, rng, upper):
    """Kaldi files with the same ids in any order and any spelling of ids: auto-detection
    either pairs by id, pairs by line number only when the ids agree line by line, or
    refuses (never pairs two utterances with different ids)."""
    from asr.scoring.transcripts import detect_pair_formats

    folder = tmp_path_factory.mktemp("ids")
    names = [n.upper() for n in names] if upper else names
    order = list(names)
    rng.shuffle(order)
    (folder / "r").write_text("".join(f"{n} X Y\n" for n in names))
    (folder / "h").write_text("".join(f"{n} X Z\n" for n in order))
    try:
        pairing = detect_pair_formats(folder / "r", folder / "h")
    except ScoreError as err:
        assert "cannot tell" in str(err)
        return
    if pairing.ref_format == "plain":
        assert pairing.hyp_format == "plain" and order == names and pairing.note
    else:
        assert (pairing.ref_format, pairing.hyp_format) == ("kaldi", "kaldi")


def test_cli_output_into_a_closed_pipe_is_quiet(tmp_path):
    """`asr score ref hyp | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    ref, hyp = tmp_path / "ref.jsonl", tmp_path / "hyp.jsonl"
    lines = [{"audio_filepath": f"{i}.wav", "duration": 1.0, "utt_id": str(i)} for i in range(3000)]
    ref.write_text("".join(json.dumps({**r, "text": "A B C"}) + "\n" for r in lines))
    hyp.write_text("".join(json.dumps({**r, "pred_text": "A X C"}) + "\n" for r in lines))
    proc = subprocess.Popen(
        [sys.executable, "-m", "asr", "score", str(ref), str(hyp), "--alignments", "all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err
