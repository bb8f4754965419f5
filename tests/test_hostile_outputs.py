"""Hostile outputs and inputs (issue 17): a command never deletes or overwrites what it did not
create unless asked with ``--overwrite``, checks its output before the work, and reports bad
input as one line naming the culprit.

Each table row runs one command line against a prepared folder and asserts the exit code, that
stderr is one ``error:`` line naming the culprit, and that every file that existed before is
byte-identical afterwards (nothing deleted, nothing added: no temporary leftovers either).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr.cli import main
from asr.lm.io import save_lm
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.models.io import load_model
from asr.text.tokenizer import CharTokenizer
from tests.tone_corpus import TINY_MODEL

NEMO = Path(__file__).parent / "fixtures" / "nemo" / "quartznet.nemo"
NGRAM = ["ngram", "corpus.txt", "--order", "2", "--discount-fallback"]
LM_CONF = str(Path(__file__).resolve().parents[1] / "conf" / "lm" / "small_char.yaml")
TRAIN = ["train", "--config", "train.yaml", "--tokenizer", "tok"]
TRAIN_LM = ["train-lm", "--config", LM_CONF, "--tokenizer", "char", "--text", "corpus.txt"]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones included) -> its bytes (None for folders)."""
    tree: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            tree[os.path.relpath(path, root)] = Path(path).read_bytes()
    return tree


def _model_dir(path: Path) -> Path:
    assert main(["import-nemo", str(NEMO), "--out", str(path)]) == 0
    return path


def _lm_dir(path: Path) -> Path:
    tok = CharTokenizer()
    return save_lm(LSTMLM(LSTMLMConfig(8, 8, 1), tok.vocab), tok, path)


def _experiment(root: Path) -> None:
    """``x/``: an experiment with checkpoints, a log and its exported model."""
    (root / "x" / "checkpoints").mkdir(parents=True)
    (root / "x" / "checkpoints" / "step-120.safetensors").write_bytes(b"weights")
    (root / "x" / "log.jsonl").write_text('{"step": 120}\n')
    _model_dir(root / "x" / "model")


def _thesis(root: Path) -> None:
    (root / "v").mkdir()
    (root / "v" / "thesis.txt").write_text("four years of work\n")


def _thesis_and_model(root: Path) -> None:
    _thesis(root)
    _model_dir(root / "m")


def _two_models(root: Path) -> None:
    _model_dir(root / "m")
    _lm_dir(root / "lm")


def _texts(root: Path) -> None:
    """``corpus.txt`` (normalised sentences), ``notes.txt`` (a user's file), a model folder."""
    (root / "corpus.txt").write_text("HELLO WORLD\nTHE CAT SAT ON THE MAT\nHELLO CAT\n")
    (root / "notes.txt").write_text("my notes, not an LM\n")
    log = [{"step": s, "train/loss": 10.0 / s} for s in range(1, 11)]
    (root / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    _model_dir(root / "m")


def _librispeech(root: Path) -> None:
    """``lib/``: a real LibriSpeech-layout corpus (not one synth-corpus built)."""
    (root / "lib" / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    (root / "lib" / "LibriSpeech" / "SPEAKERS.TXT").write_text("84 | F | dev-clean | ...\n")


def _corpora(root: Path) -> None:
    """Small valid corpora (``lib/`` LibriSpeech dev-clean, ``yn/`` yesno, ``lj/`` LJSpeech) and
    ``data/`` holding a user's own ``train.jsonl`` and a ``dev-clean.jsonl`` of notes."""
    chapter = root / "lib" / "LibriSpeech" / "dev-clean" / "84" / "121123"
    chapter.mkdir(parents=True)
    sf.write(chapter / "84-121123-0000.flac", np.zeros(8000, np.float32), 16000)
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 HELLO\n")
    (root / "yn").mkdir()
    for i in range(60):
        name = "_".join(str((i >> b) & 1) for b in range(8))
        sf.write(root / "yn" / f"{name}.wav", np.zeros(800, np.float32), 8000)
    (root / "lj" / "wavs").mkdir(parents=True)
    (root / "lj" / "metadata.csv").write_text("LJ1-1|Hello there|Hello there\n")
    sf.write(root / "lj" / "wavs" / "LJ1-1.wav", np.zeros(8000, np.float32), 22050)
    (root / "data").mkdir()
    flac = chapter / "84-121123-0000.flac"
    line = {"audio_filepath": str(flac), "duration": 0.5, "text": "HELLO", "utt_id": "u1"}
    (root / "data" / "train.jsonl").write_text(json.dumps(line) + "\n")
    (root / "data" / "dev-clean.jsonl").write_text("my notes\n")
    (root / "tr").mkdir()
    sf.write(root / "tr" / "84-121123-0001.flac", np.zeros(8000, np.float32), 16000)
    (root / "tr" / "ids.tsv").write_text("84-121123-0001\tHELLO\n")
    (root / "x").mkdir()
    (root / "x" / "f").write_text("a file where a folder is needed\n")


def _runs(root: Path) -> None:
    """``x/`` a finished experiment, ``train.yaml`` a training config, ``tok/``,
    the texts of :func:`_texts` and ``v/`` a user's folder."""
    _experiment(root)
    _texts(root)
    _thesis(root)
    CharTokenizer().save(root / "tok")
    cfg = {"model": TINY_MODEL, "data": {"train_manifest": "train.jsonl"}}
    cfg["engine"] = {"device": "cpu"}
    (root / "train.yaml").write_text(yaml.safe_dump(cfg))


def _file_as_parent(root: Path) -> None:
    _model_dir(root / "m")
    (root / "f").write_text("a file, not a folder\n")


# (id, setup, argv with {root}, culprit named in the message)
REFUSED: list[tuple[str, Callable[[Path], None], list[str], str]] = [
    ("export-into-experiment", _experiment, ["export", "x/model", "x"], "x"),
    ("export-into-experiment-forced", _experiment, ["export", "x/model", "x", "--overwrite"], "x"),
    ("export-onto-source", _experiment, ["export", "x/model", "x/model", "--overwrite"], "x/model"),
    ("export-lm-over-model", _two_models, ["export", "lm", "m", "--overwrite"], "m"),
    ("export-into-user-folder", _thesis_and_model, ["export", "m", "v", "--overwrite"], "v"),
    ("export-not-a-model", _thesis, ["export", "v", "out"], "v"),
    ("export-under-a-file", _file_as_parent, ["export", "m", "f/out"], "f/out"),
    ("import-nemo-user-folder", _thesis, ["import-nemo", str(NEMO), "--out", "v"], "v"),
    (
        "import-nemo-user-folder-forced",
        _thesis,
        ["import-nemo", str(NEMO), "--out", "v", "--overwrite"],
        "v",
    ),
    (
        "import-nemo-over-lm",
        _two_models,
        ["import-nemo", str(NEMO), "--out", "lm", "--overwrite"],
        "lm",
    ),
    ("import-nemo-existing-model", _two_models, ["import-nemo", str(NEMO), "--out", "m"], "m"),
    ("import-nemo-nonempty-cwd", _thesis, ["import-nemo", str(NEMO), "--out", "."], "."),
    (
        "import-nemo-into-cwd-model",
        _two_models,
        ["import-nemo", str(NEMO), "--out", ".", "--overwrite"],
        ".",
    ),
    ("ngram-over-a-file", _texts, [*NGRAM, "--out", "notes.txt"], "notes.txt"),
    ("ngram-over-its-input", _texts, [*NGRAM, "--out", "corpus.txt", "--overwrite"], "corpus.txt"),
    ("ngram-into-a-folder", _texts, [*NGRAM, "--out", "m", "--overwrite"], "m"),
    ("ngram-unwritable", _texts, [*NGRAM, "--out", "notes.txt/x.arpa"], "notes.txt/x.arpa"),
    ("lm-text-over-a-file", _texts, ["lm-text", "corpus.txt", "--out", "notes.txt"], "notes.txt"),
    (
        "lm-text-over-its-input",
        _texts,
        ["lm-text", "corpus.txt", "--out", "corpus.txt", "--overwrite"],
        "corpus.txt",
    ),
    ("synth-corpus-into-a-corpus", _librispeech, ["synth-corpus", "--out", "lib"], "lib"),
    (
        "prepare-librispeech-over-a-non-manifest",
        _corpora,
        ["prepare", "librispeech", "--root", "lib", "--subsets", "dev-clean", "--out", "data"],
        "data/dev-clean.jsonl",
    ),
    (
        "prepare-librispeech-unwritable",
        _corpora,
        ["prepare", "librispeech", "--root", "lib", "--subsets", "dev-clean", "--out", "x/f/y"],
        "x/f/y/dev-clean.jsonl",
    ),
    (
        "prepare-yesno-over-a-users-manifest",
        _corpora,
        ["prepare", "yesno", "--root", "yn", "--out", "data"],
        "data/train.jsonl",
    ),
    (
        "prepare-ljspeech-onto-a-folder",
        _corpora,
        ["prepare", "ljspeech", "--root", "lj", "--out", "data", "--overwrite"],
        "data",
    ),
    (
        "plot-utterance-over-its-audio",
        _corpora,
        ["plot", "utterance", "lj/wavs/LJ1-1.wav", "--out", "lj/wavs/LJ1-1.wav", "--overwrite"],
        "lj/wavs/LJ1-1.wav",
    ),
    ("plot-curves-over-a-file", _texts, ["plot", "curves", ".", "--out", "notes.txt"], "notes.txt"),
    (
        "prepare-transcribed-over-its-transcripts",
        _corpora,
        [
            "prepare",
            "transcribed",
            "--root",
            "tr",
            "--transcripts",
            "tr/ids.tsv",
            "--out",
            "tr/ids.tsv",
            "--overwrite",
        ],
        "tr/ids.tsv",
    ),
    (
        "prepare-mix-over-its-input",
        _corpora,
        ["prepare", "mix", "data/train.jsonl:2", "--out", "data/train.jsonl", "--overwrite"],
        "data/train.jsonl",
    ),
    ("tokenizer-into-a-model", _texts, ["tokenizer", "--out", "m", "--overwrite"], "m"),
    ("tokenizer-unwritable", _texts, ["tokenizer", "--out", "notes.txt/tok"], "notes.txt/tok"),
    # a new run into a finished one mixed checkpoints, emptied the log and exported the old model
    ("train-into-a-run", _runs, [*TRAIN, "--exp", "x"], "x"),
    ("train-overwrite-foreign", _runs, [*TRAIN, "--exp", "x", "--overwrite"], "x/checkpoints"),
    ("train-under-a-file", _runs, [*TRAIN, "--exp", "notes.txt/x"], "notes.txt/x"),
    ("train-device-typo", _runs, [*TRAIN, "--exp", "new", "engine.device=tpu"], "train.yaml"),
    ("train-lr-nan", _runs, [*TRAIN, "--exp", "new", "optim.lr=.nan"], "train.yaml"),
    ("train-lm-into-a-run", _runs, [*TRAIN_LM, "--exp", "x"], "x"),
    ("train-lm-export-into-a-folder", _runs, [*TRAIN_LM, "--exp", "new", "--export", "v"], "v"),
    (
        "train-lm-export-over-user-files",
        _runs,
        [*TRAIN_LM, "--exp", "new", "--export", "v", "--overwrite"],
        "v",
    ),
]


def _audio_and_model(root: Path) -> None:
    _model_dir(root / "m")
    sf.write(root / "a.wav", 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
    line = {"audio_filepath": "a.wav", "duration": 1.0, "text": "A"}
    (root / "a.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")


INFER = [  # issue 17 item 2: the output of transcribe/decode was written over its own input
    ("transcribe-out-is-its-input", ["transcribe", "a.wav", "--model", "m", "--out", "a.wav"]),
    ("transcribe-out-is-its-manifest",
     ["transcribe", "a.jsonl", "--model", "m", "--out", "a.jsonl"]),
    ("decode-out-is-its-manifest",
     ["decode", "--model", "m", "--manifest", "a.jsonl", "--out", "a.jsonl"]),
    ("transcribe-unwritable-out", ["transcribe", "a.wav", "--model", "m", "--out", "/proc/x.txt"]),
]  # fmt: skip
REFUSED += [(name, _audio_and_model, argv, argv[-1]) for name, argv in INFER]


def _earlier_outputs(root: Path) -> None:
    """:func:`_audio_and_model` (``m/`` with a ``decode.yaml``), an LM ``lm/``, a user's
    ``hyp.jsonl``, ``out/a.json`` (where transcribing ``a.wav`` into ``out/`` writes) and
    ``d/a.jsonl``, a manifest of the utterance ``a``."""
    _audio_and_model(root)
    _lm_dir(root / "lm")
    (root / "m" / "decode.yaml").write_text("beam_size: 8\n")  # a bundled model's decoding
    (root / "hyp.jsonl").write_text("the only copy of a week's decode\n")
    (root / "out").mkdir()
    (root / "out" / "a.json").write_text("my notes\n")
    (root / "d").mkdir()
    line = {"audio_filepath": str(root / "a.wav"), "duration": 1.0, "text": "A", "utt_id": "a"}
    (root / "d" / "a.jsonl").write_text(json.dumps(line) + "\n")


TRANSCRIBE = ["transcribe", "a.wav", "--model", "m"]
TUNE = ["tune-decoder", "--model", "m", "--lm", "lm", "--manifest", "a.jsonl"]
REFUSED += [  # decode, transcribe and tune-decoder replaced existing outputs unasked
    ("decode-over-a-file",
     _earlier_outputs, ["decode", "--model", "m", "--manifest", "a.jsonl", "--out", "hyp.jsonl"],
     "hyp.jsonl"),
    ("transcribe-over-a-file", _earlier_outputs, [*TRANSCRIBE, "--out", "hyp.jsonl"], "hyp.jsonl"),
    ("transcribe-into-a-folder-over-a-file",
     _earlier_outputs, [*TRANSCRIBE, "--format", "json", "--out", "out"], "out/a.json"),
    ("transcribe-all-over-a-file",
     _earlier_outputs, [*TRANSCRIBE, "--format", "all", "--out", "out/"], "out/a.json"),
    ("tune-decoder-over-a-models-decode-yaml", _earlier_outputs, [*TUNE, "--out", "m"],
     "m/decode.yaml"),
    ("tune-decoder-under-a-file", _earlier_outputs, [*TUNE, "--out", "hyp.jsonl"],
     "hyp.jsonl/tune.md"),
    ("transcribe-into-a-folder-onto-its-manifest",
     _earlier_outputs,
     ["transcribe", "d/a.jsonl", "--model", "m", "--format", "manifest", "--out", "d/",
      "--overwrite"],
     "d/a.jsonl"),
]  # fmt: skip


def _refused(root: Path, argv: list[str], culprit: str, capsys) -> str:
    """Run ``argv`` in ``root``; assert rc 2, one error line naming ``culprit``, no change."""
    before = snapshot(root)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert culprit in err.split(":", 2)[1], err
    assert snapshot(root) == before
    return err


@pytest.mark.parametrize(
    ("setup", "argv", "culprit"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_outputs_leave_everything_as_it_was(
    tmp_path, monkeypatch, capsys, setup, argv, culprit
):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    _refused(tmp_path, argv, culprit, capsys)


def test_export_overwrite_replaces_only_a_model_of_the_same_kind(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _two_models(tmp_path)
    assert main(["export", "m", "m2", "--dtype", "float32"]) == 0
    err = _refused(tmp_path, ["export", "m", "m2"], "m2", capsys)
    assert "--overwrite" in err
    assert main(["export", "m", "m2", "--overwrite"]) == 0  # float16 now
    assert load_model("m2")[0] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm", "m", "m2"]  # no leftovers
    assert main(["export", "lm", "lm2"]) == 0
    assert main(["export", "lm", "lm2", "--overwrite", "--dtype", "float32"]) == 0


def test_import_nemo_into_the_current_empty_folder(tmp_path, monkeypatch, capsys):
    """``--out .`` raised ``ValueError: PosixPath('.') has an empty name``."""
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["import-nemo", str(NEMO), "--out", "."]) == 0
    assert sorted(os.listdir(".")) == ["config.yaml", "model.safetensors", "tokenizer.yaml"]
    assert load_model(".")[1].vocab_size == 29
    assert sorted(os.listdir(tmp_path)) == ["here"]  # nothing left beside it


def test_import_nemo_into_an_empty_folder_and_over_its_own_model(tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["import-nemo", str(NEMO), "--out", str(out)]) == 0
    assert main(["import-nemo", str(NEMO), "--out", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["config.yaml", "model.safetensors", "tokenizer.yaml"]
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_library_replace_refuses_a_foreign_folder(tmp_path):
    """The last line of defence (also for training's export): a folder holding anything but
    our files is never swapped out, whatever the caller checked."""
    from asr.io.folders import ModelFileError
    from asr.models.io import export_model, load_model

    model, tok = load_model(_model_dir(tmp_path / "m"))
    _experiment(tmp_path)
    before = snapshot(tmp_path / "x")
    with pytest.raises(ModelFileError, match="not a model folder"):
        export_model(model, tok, tmp_path / "x")
    assert snapshot(tmp_path / "x") == before
    assert sorted(os.listdir(tmp_path)) == ["m", "x"]


def test_text_outputs_need_overwrite_to_replace(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _texts(tmp_path)
    assert main([*NGRAM, "--out", "lm.arpa"]) == 0
    arpa = (tmp_path / "lm.arpa").read_bytes()
    _refused(tmp_path, [*NGRAM, "--out", "lm.arpa"], "lm.arpa", capsys)
    assert main([*NGRAM, "--out", "lm.arpa", "--overwrite"]) == 0
    assert (tmp_path / "lm.arpa").read_bytes() == arpa
    assert main(["lm-text", "corpus.txt", "--out", "norm.txt", "--format", "lines"]) == 0
    _refused(tmp_path, ["lm-text", "corpus.txt", "--out", "norm.txt"], "norm.txt", capsys)
    assert main(["lm-text", "corpus.txt", "--out", "norm.txt", "--overwrite"]) == 0
    assert main(["tokenizer", "--out", "tok"]) == 0
    assert main(["tokenizer", "--out", "tok", "--overwrite"]) == 0
    assert "\r" not in capsys.readouterr().err  # stderr is no terminal here: no bar redraws


def test_duplicate_ids_and_tiny_chunks_are_refused_before_the_work(tmp_path, monkeypatch, capsys):
    """Issue 17 item 11: a manifest repeating an utterance id was decoded (only `asr score`
    refused it later); --max-chunk-s 0.05 gave empty output with rc 0."""
    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    line = (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    (tmp_path / "dup.jsonl").write_text(line + line, encoding="utf-8")
    argv = ["decode", "--model", "m", "--manifest", "dup.jsonl", "--out", "h.jsonl"]
    err = _refused(tmp_path, argv, "dup.jsonl", capsys)
    assert "utterance 2 has the id 'a' of utterance 1" in err
    assert main(["transcribe", "a.wav", "--model", "m", "--max-chunk-s", "0.05"]) == 2
    assert "max_chunk_s must be >= 1.0 s" in capsys.readouterr().err


def test_transcribe_replaces_existing_outputs_only_with_overwrite(tmp_path, monkeypatch, capsys):
    """asr transcribe replaced an existing --out file, and any ``<name>.<ext>`` in an --out
    folder, unasked. Each refusal comes before the model loads; --overwrite replaces exactly the
    files the run writes (``one/a.wav`` and ``twin/a.wav``: ``one_a`` and ``twin_a``), nothing
    else there."""
    import asr.api

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    _audio_and_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for folder in ("one", "twin"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.wav").write_bytes((tmp_path / "a.wav").read_bytes())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "twin_a.json").write_text("my notes\n")
    (tmp_path / "out" / "notes.txt").write_text("not ours\n")
    (tmp_path / "hyp.txt").write_text("my only copy\n")
    base = ["transcribe", "one/a.wav", "twin/a.wav", "--model", "m"]
    runs = [  # argv, culprit, the rest of the message
        ([*base, "--format", "json", "--out", "out"], "out/twin_a.json", "(1 of the 2 files"),
        ([*base, "--format", "all", "--out", "out/"], "out/twin_a.json", "(1 of the 10 files"),
        ([*base, "--out", "hyp.txt"], "hyp.txt", "exists; pass --overwrite to replace it"),
    ]
    loader = asr.api.load_model
    monkeypatch.setattr(asr.api, "load_model", never)
    for argv, culprit, detail in runs:
        err = _refused(tmp_path, argv, culprit, capsys)
        assert detail in err and "pass --overwrite" in err, err
    monkeypatch.setattr(asr.api, "load_model", loader)
    assert main([*runs[0][0], "--overwrite"]) == 0
    assert sorted(os.listdir("out")) == ["notes.txt", "one_a.json", "twin_a.json"]
    assert (tmp_path / "out" / "notes.txt").read_text() == "not ours\n"
    first, twin = (
        json.loads(Path("out", f"{name}_a.json").read_text()) for name in ("one", "twin")
    )
    assert twin["audio_filepath"] == "twin/a.wav" and twin["words"] == first["words"]
    assert main([*runs[2][0], "--overwrite"]) == 0
    ids = [line.split()[0] for line in Path("hyp.txt").read_text().splitlines()]
    assert ids == ["one/a", "twin/a"]
    assert main([*base, "--format", "all", "--out", "new/deeper/"]) == 0  # a new folder
    assert len(os.listdir("new/deeper")) == 10
