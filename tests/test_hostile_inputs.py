"""Issue 25, items 8, 9, 11, 12, 15-19 and 21: output lost or replaced when nothing (or someone
else) wrote it, or when the disk filled; output names that meant another input; bad options
that crashed, ran silently wrong or blamed a file the user never touched; a default thread
count that crawled on a busy machine."""

from __future__ import annotations

import errno
import json
import os
import shutil
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


def test_a_manifest_without_references_is_transcribed(tmp_path, monkeypatch, capsys):
    """A manifest of audio to transcribe needs no ``text``: it failed with "missing key 'text'"
    and then "transcribed 0/0". Tuning, which scores against the references, still needs it."""
    from asr.data.inputs import manifest_items
    from asr.data.manifest import ManifestError

    monkeypatch.chdir(tmp_path)
    _audio_and_model(tmp_path)
    Path("audio.jsonl").write_text(json.dumps({"audio_filepath": "a.wav"}) + "\n")
    assert main(["transcribe", "audio.jsonl", "--model", "m", "--out", "hyp.txt"]) == 0
    assert "transcribed 1/1" in capsys.readouterr().err
    assert Path("hyp.txt").is_file()
    with pytest.raises(ManifestError, match=r"audio\.jsonl:1: missing key 'text'"):
        manifest_items("audio.jsonl")


def _copies(*names: str) -> None:
    """Copies of ``a.wav`` (:func:`_audio_and_model`) at ``names``."""
    for name in names:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy("a.wav", name)


def test_inputs_sharing_a_file_name_are_told_apart_by_their_folders(tmp_path, monkeypatch):
    """Item 15: a/x, b/x and a/x-2 were named x, x-2 and x-2-2 (b/x under the name that means
    a/x-2, and names that changed with the order); one manifest per input repeated ids that
    asr decode refuses."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    inputs = ["a/x.wav", "b/x.wav", "a/x-2.wav"]
    _copies(*inputs)
    base = ["transcribe", "--model", "m"]
    want = {"a/x.wav": "a/x", "b/x.wav": "b/x", "a/x-2.wav": "x-2"}
    for order in (inputs, inputs[::-1]):  # the same names whatever the order
        Path("hyp.jsonl").unlink(missing_ok=True)
        assert main([*base, *order, "--format", "manifest", "--out", "hyp.jsonl"]) == 0
        lines = [json.loads(line) for line in Path("hyp.jsonl").read_text().splitlines()]
        assert {r["audio_filepath"]: r["utt_id"] for r in lines} == want
    assert main([*base, *inputs[::-1], "--format", "json", "--out", "o/"]) == 0
    assert sorted(os.listdir("o")) == ["a_x.json", "b_x.json", "x-2.json"]
    assert json.loads(Path("o", "b_x.json").read_text())["audio_filepath"] == "b/x.wav"
    assert main([*base, *inputs, "--out", "hyp.txt"]) == 0  # Kaldi-style lines, asr score's
    assert [line.split()[0] for line in Path("hyp.txt").read_text().splitlines()] == [
        "a/x", "b/x", "x-2"
    ]  # fmt: skip
    assert main([*base, *inputs, "--format", "manifest", "--out", "p/"]) == 0
    ids = [json.loads(Path("p", name).read_text())["utt_id"] for name in sorted(os.listdir("p"))]
    assert ids == ["a/x", "b/x", "x-2"]  # one manifest per input: no id twice (were x, x, x-2)


def test_inputs_that_cannot_be_told_apart_are_refused_naming_both(tmp_path, monkeypatch, capsys):
    """Item 15: a repeated manifest id was renamed x-2 (decode refuses it); now any two inputs
    that would share a name, an id or a file are refused before the model loads."""
    import asr.api

    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    _copies("a/x.wav", "b/x.wav", "a_x.wav")
    line = {"audio_filepath": "a.wav", "duration": 1.0, "text": "A", "utt_id": "u"}
    twice = [line, {**line, "audio_filepath": "a_x.wav"}]
    Path("ids.jsonl").write_text("".join(json.dumps(x) + "\n" for x in twice))
    Path("ax.jsonl").write_text(json.dumps({**line, "utt_id": "a/x"}) + "\n")
    monkeypatch.setattr(asr.api, "load_model", None)  # refused before it is needed
    before = snapshot(tmp_path)
    base = ["transcribe", "--model", "m", "--format", "json"]
    cases = [
        (["a.wav", "./a.wav"], "a.wav and a.wav are both named 'a': the same file from"),
        (["ids.jsonl"], "ids.jsonl utterance 1 and ids.jsonl utterance 2 are both named 'u'"),
        (["ax.jsonl", "a/x.wav", "b/x.wav"], "ax.jsonl utterance 1 and a/x.wav are both named"),
        (["a/x.wav", "b/x.wav", "a_x.wav", "--out", "o/"], "'a/x' and 'a_x' would both have"),
    ]
    for argv, message in cases:
        assert main([*base, *argv]) == 2
        assert message in _error_line(capsys)
    assert snapshot(tmp_path) == before


def test_output_names_and_the_files_a_folder_run_writes(tmp_path):
    """The files are known up front from the ids (:func:`asr.data.inputs.distinct_names`),
    failed inputs included; ids that would share a file or an id are refused, never renamed."""
    from asr.data.inputs import AudioItem
    from asr.inference.transcribe import TranscribeError, Transcript
    from asr.inference.writers import OutputWriter

    names = ["x", "a/b", "", "x-2"]
    writer = OutputWriter("all", f"{tmp_path}/o/", names)
    stems = ["x", "a_b", "audio", "x-2"]
    want = [
        tmp_path / "o" / f"{s}.{e}" for s in stems for e in ("txt", "tsv", "json", "srt", "vtt")
    ]
    assert writer.files() == want
    assert not (tmp_path / "o").exists()  # created with its first file, not before
    assert OutputWriter("json", tmp_path / "o" / "x.json", names).files() == [
        tmp_path / "o" / "x.json"
    ]
    assert OutputWriter("txt", None, names).files() == []
    with pytest.raises(TranscribeError, match="'a/b' and 'a_b' would both have the output file"):
        OutputWriter("json", f"{tmp_path}/o/", ["a/b", "a_b"])
    with pytest.raises(TranscribeError, match="'x' and 'x' would both have the id 'x'"):
        OutputWriter("manifest", None, ["x", "x"])
    with pytest.raises(TranscribeError, match="both have the Kaldi-style id 'a_b'"):
        OutputWriter("txt", None, ["a b", "a_b"])
    # a failed input keeps its name: what is written is always among the files checked
    writer = OutputWriter("json", f"{tmp_path}/p/", ["a/x", "b/x"])
    writer.add(Transcript(AudioItem("a/x.wav"), 0.0, "", error="unreadable"))
    writer.add(Transcript(AudioItem("b/x.wav"), 1.0, "HELLO"))
    assert writer.close() == [tmp_path / "p" / "b_x.json"] == writer.files()[1:]
    assert json.loads((tmp_path / "p" / "b_x.json").read_text())["text"] == "HELLO"


def _full_disk_after(monkeypatch, writes: int) -> None:
    """Every atomic write after the first ``writes`` fails as on a full disk (at its fsync)."""
    import asr.io.atomic

    real, done = os.fsync, []

    def fsync(fd: int) -> None:
        done.append(fd)
        if len(done) > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(asr.io.atomic.os, "fsync", fsync)


def test_a_full_disk_keeps_the_transcript(tmp_path, monkeypatch, capsys):
    """Item 12: a full disk when transcribe wrote its --out lost the decoded text (traceback)."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["transcribe", "a.wav", "--model", "m", "--format", "srt"]) == 0
    text = capsys.readouterr().out  # what the file would hold
    Path("y.srt").write_text("keep\n")
    before = snapshot(tmp_path)
    _full_disk_after(monkeypatch, 0)
    argv = ["transcribe", "a.wav", "--model", "m", "--format", "srt", "--out", "y.srt"]
    assert main([*argv, "--overwrite"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: y.srt: cannot write it"), err
    assert "No space left on device" in err and "standard output" in err
    assert out == text and snapshot(tmp_path) == before  # no temporary file left either


def test_a_full_disk_in_a_folder_keeps_the_files_written(tmp_path, monkeypatch, capsys):
    """Item 12: --format all into a folder: a traceback, and the decoded input lost."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    _copies("b/x.wav")
    assert main(["transcribe", "b/x.wav", "--model", "m", "--format", "all", "--out", "ref/"]) == 0
    _full_disk_after(monkeypatch, 5)  # the five files of a.wav, then none
    capsys.readouterr()
    argv = ["transcribe", "a.wav", "b/x.wav", "--model", "m", "--format", "all", "--out", "o/"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: o/x.txt: cannot write it"), err
    assert "No space left on device" in err and "the 5 file(s) written before it are kept" in err
    assert sorted(os.listdir("o")) == [f"a.{ext}" for ext in ("json", "srt", "tsv", "txt", "vtt")]
    assert out == Path("ref", "x.txt").read_text()  # x's text, not lost


def test_a_full_disk_is_one_line_for_features_ngram_and_import_nemo(tmp_path, monkeypatch, capsys):
    """Item 12: ``asr features``, ``asr ngram`` and ``asr import-nemo`` on a full disk ended in
    tracebacks. One line naming the file; what was done before is kept."""
    import asr.data.features
    import asr.models.io
    from tests.test_hostile_outputs import NEMO

    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    _copies("b/x.wav")
    Path("corpus.txt").write_text("HELLO WORLD\nTHE CAT SAT ON THE MAT\nHELLO CAT\n")
    Path("lm.arpa").write_text("an older model\n")
    calls = []

    def full_after_one(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(*args, **kwargs)

    real_save = asr.data.features.save_file
    monkeypatch.setattr(asr.data.features, "save_file", full_after_one)
    conf = str(Path(__file__).resolve().parents[1] / "conf" / "frontend" / "kaldi_fbank80.yaml")
    assert main(["features", "--config", conf, "a.wav", "b/x.wav", "--out", "f", "--quiet"]) == 2
    err = _error_line(capsys)
    assert "f/x.safetensors: cannot write it (No space left on device)" in err, err
    assert sorted(os.listdir("f")) == ["a.safetensors", "frontend.yaml"]  # the first is kept
    _full_disk_after(monkeypatch, 0)
    ngram = ["ngram", "corpus.txt", "--order", "2", "--discount-fallback", "--out", "lm.arpa"]
    assert main([*ngram, "--overwrite"]) == 2
    assert "lm.arpa: cannot write the ARPA file (No space left on device)" in _error_line(capsys)
    assert Path("lm.arpa").read_text() == "an older model\n"
    monkeypatch.setattr(asr.models.io, "save_file", full_after_one)
    assert main(["import-nemo", str(NEMO), "--out", "q"]) == 2
    assert "q: cannot write the model folder (No space left on device)" in _error_line(capsys)
    assert sorted(os.listdir(".")) == ["a.jsonl", "a.wav", "b", "corpus.txt", "f", "lm.arpa", "m"]


@pytest.mark.parametrize(
    ("cores", "cpus", "load", "want"),
    [(2, 2, 1.1, 1), (2, 2, 3.2, 1), (2, 2, 0.2, 2), (2, 2, 0.6, 1), (8, 16, 2.0, 8),
     (8, 16, 12.0, 4), (4, 4, 40.0, 1), (1, 2, 0.0, 1)],
)  # fmt: skip
def test_the_default_thread_count_leaves_out_busy_cpus(cores, cpus, load, want, monkeypatch):
    """Item 19: 2 cores, one busy elsewhere: torch's default 2 threads took 268 s for a 4.1-min
    file, 1 thread 20 s. The default is torch's less the CPUs the load average keeps busy."""
    from asr.inference.forward import THREAD_VARIABLES, default_threads

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert default_threads(cores, cpus, load) == want
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_threads(cores) == want
    monkeypatch.setenv("OMP_NUM_THREADS", str(cores))  # the user's choice stands
    assert default_threads(cores) == cores


def test_the_cli_uses_the_default_thread_count(tmp_path, monkeypatch, capsys):
    """Item 19: ``--threads`` unset left torch's default on a busy machine; 0 is now automatic,
    an explicit count stands, and no load average (another platform) keeps torch's count."""
    import torch

    import asr.inference.forward as forward

    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in forward.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(forward, "TORCH_THREADS", 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.3, 1.2, 1.0))  # one CPU busy elsewhere
    threads = torch.get_num_threads()
    try:
        seen = []
        for argv in ([], ["--threads", "0"], ["--threads", "2"]):
            assert main(["transcribe", "a.wav", "--model", "m", *argv]) == 0
            seen.append(torch.get_num_threads())

        def unknown():
            raise OSError("no load average here")

        monkeypatch.setattr(os, "getloadavg", unknown)
        assert main(["transcribe", "a.wav", "--model", "m"]) == 0
        seen.append(torch.get_num_threads())
    finally:
        torch.set_num_threads(threads)
    assert seen == [1, 1, 2, 2]


def test_summary_help_and_table_widths(tmp_path, monkeypatch, capsys):
    """Item 21: "0.1 min of audio" for 5.6 s; ``asr --help`` described export without ONNX;
    ``asr models`` printed 274-character lines."""
    from asr.cli.transcribe import audio_length

    assert [audio_length(s) for s in (5.6, 0.04, 59.9, 60.0, 246.0)] == [
        "5.6 s", "0.0 s", "59.9 s", "1.0 min", "4.1 min"
    ]  # fmt: skip
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["transcribe", "a.wav", "--model", "m"]) == 0
    assert "1/1 input(s), 1.0 s of audio in" in capsys.readouterr().err
    commands = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    helps = {action.dest: action.help for action in commands._choices_actions}
    assert "ONNX" in helps["export"]  # the one line asr --help shows
    monkeypatch.setenv("COLUMNS", "300")  # a wide terminal: still at most 100
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100 and any(line.startswith("jasper10x5dr ") for line in lines)
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["models"]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 60
