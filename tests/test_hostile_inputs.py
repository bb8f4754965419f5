"""Issue 25, items 8, 9, 11 and 16-18: output lost or replaced when nothing (or someone else)
wrote it, and bad options that crashed, ran silently wrong or blamed a file the user never
touched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from asr.cli import build_parser, main
from asr.cli._options import MAX_THREADS
from asr.decode.spec import DecodeSpecError, build_spec
from asr.io.atomic import OutputExistsError, atomic_write_text
from tests.test_hostile_outputs import _audio_and_model, snapshot


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_a_run_that_transcribed_nothing_writes_and_replaces_nothing(tmp_path, monkeypatch, capsys):
    """Item 8: the only input missing left --out at 0 bytes (with --overwrite: the user's file
    emptied; without: an empty file that then blocked the retry)."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("y.srt").write_text("keep\n")
    before = snapshot(tmp_path)
    base = ["transcribe", "nosuch.flac", "--model", "m", "--format", "srt"]
    assert main([*base, "--out", "y.srt", "--overwrite"]) == 1
    assert main([*base, "--out", "z.srt"]) == 1
    assert "z.srt not written: nothing transcribed" in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # y.srt kept, no z.srt (nor a temporary file)
    assert main(["transcribe", "a.wav", "--model", "m", "--out", "z.srt", "--format", "srt"]) == 0


def test_a_file_that_appeared_during_the_run_is_not_replaced(tmp_path, monkeypatch, capsys):
    """Item 9: two runs writing one new --out: the slower replaced the other's result."""
    import asr.inference.transcribe

    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    original = asr.inference.transcribe.transcribe_items
    other = {"path": Path()}

    def other_run_first(*args, **kwargs):  # the other run writes while this one works
        other["path"].parent.mkdir(exist_ok=True)
        other["path"].write_text(f"the other run's {other['path'].suffix}\n")
        yield from original(*args, **kwargs)

    monkeypatch.setattr(asr.inference.transcribe, "transcribe_items", other_run_first)
    for argv, culprit in (
        (["--out", "hyp.txt"], "hyp.txt"),
        (["--format", "json", "--out", "out/"], "out/a.json"),
    ):
        other["path"] = Path(culprit)
        assert main(["transcribe", "a.wav", "--model", "m", *argv]) == 2
        err = _error_line(capsys)
        assert culprit in err and "appeared while this run worked" in err, err
    assert Path("hyp.txt").read_text() == "the other run's .txt\n"
    assert Path("out", "a.json").read_text() == "the other run's .json\n"
    assert sorted(os.listdir(".")) == sorted(["a.jsonl", "a.wav", "hyp.txt", "m", "out"])
    assert os.listdir("out") == ["a.json"]


def test_exclusive_atomic_write(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "first\n", exclusive=True)
    with pytest.raises(OutputExistsError, match="appeared while this run worked"):
        atomic_write_text(path, "second\n", exclusive=True)
    assert path.read_text() == "first\n" and os.listdir(tmp_path) == ["x.txt"]


def test_a_replaced_file_keeps_its_permissions(tmp_path, monkeypatch):
    """Item 11: --overwrite turned a 0600 file into 0644."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("secret.txt").write_text("old\n")
    os.chmod("secret.txt", 0o600)
    assert main(["transcribe", "a.wav", "--model", "m", "--out", "secret.txt", "--overwrite"]) == 0
    assert Path("secret.txt").read_text() != "old\n"
    assert stat.S_IMODE(os.stat("secret.txt").st_mode) == 0o600
    atomic_write_text(tmp_path / "new.txt", "new\n")  # a new file: the usual permissions
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o666 & ~mask


BAD_FLAGS = [  # item 16 (crash, huge allocation, silent nonsense) and 17 (blamed decode.yaml)
    (["--beam-size", "1000000000"], "--beam-size", "from 1 to 1024"),
    (["--beam-size", "0"], "--beam-size", "from 1 to 1024"),
    (["--beam-size", "-1"], "--beam-size", "from 1 to 1024"),
    (["--threads", "100000"], "--threads", f"to {MAX_THREADS}"),
    (["--threads", "-1"], "--threads", f"to {MAX_THREADS}"),
    (["--alpha", "1e308"], "--alpha", "between -100 and 100"),
    (["--alpha", "-1e308"], "--alpha", "between -100 and 100"),
    (["--alpha", "nan"], "--alpha", "finite"),
    (["--beta", "inf"], "--beta", "finite"),
]


@pytest.mark.parametrize(("flags", "flag", "reason"), BAD_FLAGS)
@pytest.mark.parametrize("command", ["transcribe", "decode"])
def test_bad_decoding_flags_are_refused_up_front_naming_the_flag(
    capsys, command, flags, flag, reason
):
    argv = ["a.wav"] if command == "transcribe" else ["--manifest", "a.jsonl", "--out", "h.jsonl"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, *argv, *flags])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}: " in last and reason in last, last
    assert "decode.yaml" not in last


def test_negative_numbers_in_exponent_form_are_values():
    """Item 18: ``--alpha -1e-3`` was read as an option."""
    args = build_parser().parse_args(["transcribe", "a.wav", "--alpha", "-1e-3", "--beta", "-2"])
    assert (args.alpha, args.beta) == (-0.001, -2.0)


@pytest.mark.parametrize(
    ("keywords", "named"),
    [({"beam_size": -1}, "beam_size"), ({"beam_size": 0}, "beam_size"),
     ({"alpha": float("nan")}, "alpha"), ({"beta": 1e308}, "beta"),
     ({"beam_size": 10**9}, "beam_size")],
)  # fmt: skip
def test_bad_keywords_name_the_keyword_not_the_models_decode_yaml(tmp_path, keywords, named):
    """Item 17: ``asr.transcribe(beam_size=-1)`` blamed the bundled model's decode.yaml."""
    config = tmp_path / "decode.yaml"
    config.write_text("beam_size: 8\n")
    with pytest.raises(DecodeSpecError) as err:
        build_spec(bundled=(config, None), **keywords)
    assert str(err.value).startswith(f"decoding option {named}: "), err.value
    assert "decode.yaml" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "said"),
    [(b"hello\n", "cannot read the .nemo archive: not a tar file"),
     (b"<!DOCTYPE html><html><body>Please log in</body></html>", "it is an HTML page"),
     (b"", "the file is empty")],
)  # fmt: skip
def test_import_nemo_of_a_file_that_is_no_archive_is_one_line(tmp_path, capsys, content, said):
    """Item 18: a 5-line error listing every compression tarfile tried."""
    source = tmp_path / "model.nemo"
    source.write_bytes(content)
    assert main(["import-nemo", str(source), "--out", str(tmp_path / "out")]) == 2
    err = _error_line(capsys)
    assert said in err, err
    assert not (tmp_path / "out").exists()


def test_transcribing_an_empty_manifest_fails(tmp_path, monkeypatch, capsys):
    """Item 18: an empty manifest gave "transcribed 0/0 input(s)" and rc 0."""
    monkeypatch.chdir(tmp_path)
    Path("empty.jsonl").write_text("")
    assert main(["transcribe", "empty.jsonl", "--out", "hyp.txt"]) == 2
    assert "empty.jsonl: no audio to transcribe" in _error_line(capsys)
    assert main(["decode", "--manifest", "empty.jsonl", "--out", "hyp.jsonl"]) == 2
    assert "no utterances to decode" in _error_line(capsys)
    assert os.listdir(".") == ["empty.jsonl"]
