"""The one-call Python API (asr.api): asr.load_model, Model.transcribe, asr.transcribe.

References: the CLI's own JSON for the same file (the API must give the same results), the
file path for arrays (an array read from a file, with its rate, must transcribe exactly like the
file), and the README's Python section, which is run as written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
import asr.api as api
from asr.cli import main
from asr.decode.spec import DecodeSpecError
from asr.inference.transcribe import TranscribeError, Transcript
from asr.inference.writers import transcript_json
from asr.io.audio import load_audio, resample
from asr.pretrained import DEFAULT_MODEL_DIR
from asr.pretrained.registry import RegistryError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "asr" / "pretrained" / "samples"
SYNTH = str(SAMPLES / "synth-test.flac")
LJ = str(SAMPLES / "ljspeech-LJ001-0001.flac")


@pytest.fixture(scope="module")
def model() -> api.Model:
    return asr.load_model("default", device="cpu")


def test_model_object(model: api.Model) -> None:
    assert model.path == DEFAULT_MODEL_DIR and model.sample_rate == 16000
    assert model.tokenizer.vocab_size == model.network.vocab_size
    assert not model.network.training and "16000 Hz" in repr(model)


def test_same_result_as_the_cli_json(model: api.Model, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert (
        main(["transcribe", SYNTH, "--format", "json", "--out", str(out), "--device", "cpu"]) == 0
    )
    result = model.transcribe(SYNTH)
    assert isinstance(result, Transcript) and result.text
    assert transcript_json(result) == json.loads(out.read_text())
    assert all(0 <= w.start < w.end <= result.duration_s for w in result.words)


def test_lists_and_decoding_options_like_the_cli(model: api.Model, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    args = ["transcribe", SYNTH, LJ, "--format", "json", "--out", str(out), "--device", "cpu"]
    assert main([*args, "--decoder", "beam", "--beam-size", "4", "--alpha", "0.3"]) == 0
    results = model.transcribe([SYNTH, Path(LJ)], decoder="beam", beam_size=4, alpha=0.3)
    assert [transcript_json(r) for r in results] == json.loads(out.read_text())
    greedy = model.transcribe(SYNTH, decoder="greedy")
    assert main(["transcribe", SYNTH, "--decoder", "greedy", "--out", str(tmp_path / "g.txt")]) == 0
    assert (tmp_path / "g.txt").read_text() == greedy.text + "\n"


def test_array_is_resampled_like_a_file(model: api.Model, tmp_path: Path) -> None:
    # An 8 kHz recording: as a file it is resampled when read; as an array with its rate, the
    # same must happen (never fed to the 16 kHz model as if it were 16 kHz).
    samples, rate = load_audio(SYNTH)
    low = resample(samples, rate, 8000)
    path = tmp_path / "low.wav"
    sf.write(path, low, 8000, subtype="FLOAT")
    by_file = model.transcribe(str(path), decoder="greedy")
    by_array = model.transcribe(low, sample_rate=8000, decoder="greedy")
    assert by_array.text == by_file.text and by_array.words == by_file.words
    assert by_array.item.path == api.ARRAY_NAME and by_array.duration_s == by_file.duration_s
    tensor = model.transcribe(torch.from_numpy(low), sample_rate=8000, decoder="greedy")
    assert tensor.text == by_file.text
    wrong = model.transcribe(low, sample_rate=16000, decoder="greedy")  # a false rate differs
    assert wrong.text != by_file.text


def test_bad_arrays_and_options_are_one_line_errors(model: api.Model) -> None:
    samples = np.zeros(16000, dtype=np.float32)
    cases = [
        ({}, "needs its sample_rate"),
        ({"sample_rate": True}, "positive integer"),
        ({"sample_rate": 16000, "decoder": "greedy", "lm": "exp/lm"}, "need the beam decoder"),
        ({"sample_rate": 16000, "beam": 4}, r"unknown decoding option 'beam' \(known: decoder"),
        ({"sample_rate": 16000, "on_error": "ignore"}, "on_error"),
    ]
    for kwargs, message in cases:
        with pytest.raises((TranscribeError, DecodeSpecError), match=message) as err:
            model.transcribe(samples, **kwargs)
        assert "\n" not in str(err.value)
    for bad, message in [(np.zeros((2, 100)), "mono"), (np.array([0.0, np.nan]), "NaN")]:
        with pytest.raises(TranscribeError, match=message):
            model.transcribe(bad, sample_rate=16000)
    with pytest.raises(TranscribeError, match="arrays only"):
        model.transcribe(SYNTH, sample_rate=16000)
    with pytest.raises(TranscribeError, match="got int"):
        model.transcribe([SYNTH, 3])


def test_failed_input_raises_or_is_kept(model: api.Model, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.flac")
    with pytest.raises(TranscribeError, match=re.escape(missing)):
        model.transcribe(missing, decoder="greedy")
    kept = model.transcribe([missing, SYNTH], decoder="greedy", on_error="keep")
    assert kept[0].error and not kept[0].text and kept[1].text and kept[1].error is None


def test_transcribe_reuses_loaded_models(monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real = api.load_model_dir
    monkeypatch.setattr(api, "load_model_dir", lambda *a, **k: loads.append(a) or real(*a, **k))
    monkeypatch.setattr(api, "_LOADED", {})
    first = asr.transcribe(SYNTH, decoder="greedy", device="cpu")
    again = asr.transcribe([SYNTH], model=str(DEFAULT_MODEL_DIR), decoder="greedy", device="cpu")
    assert len(loads) == 1 and again[0].text == first.text
    (loaded,) = api._LOADED.values()
    assert len(loaded._decoders) == 1  # the greedy decoder was built once too
    assert asr.transcribe(SYNTH, model=loaded, decoder="greedy").text == first.text


def test_unknown_model_name() -> None:
    with pytest.raises(RegistryError, match="known: default, quartznet15x5"):
        asr.load_model("quartznet")


def test_readme_python_section_runs(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## In Python") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1 and "decoder=" in blocks[0] and "lm=" in blocks[0]
    monkeypatch.chdir(ROOT)
    exec(compile(blocks[0], "README.md (In Python)", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.splitlines()
    assert "True" in lines  # the array and the file gave the same greedy text


def test_a_folder_is_transcribed_like_the_cli(model: api.Model, tmp_path: Path) -> None:
    """Issue 25 item 23: a folder was refused (the CLI takes folders): its audio files, searched
    recursively and sorted, as the CLI's JSON for the same folder."""
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "lj.flac").write_bytes(Path(LJ).read_bytes())
    (tmp_path / "in" / "synth.flac").write_bytes(Path(SYNTH).read_bytes())
    (tmp_path / "in" / "notes.txt").write_text("not audio\n")
    out = tmp_path / "out.json"
    args = ["transcribe", str(tmp_path / "in"), "--format", "json", "--decoder", "greedy"]
    assert main([*args, "--out", str(out), "--device", "cpu"]) == 0
    results = model.transcribe(tmp_path / "in", decoder="greedy")
    assert isinstance(results, list) and [r.text for r in results] != ["", ""]
    assert [transcript_json(r) for r in results] == json.loads(out.read_text())
    assert [r.item.path for r in results] == [
        str(tmp_path / "in" / "sub" / "lj.flac"), str(tmp_path / "in" / "synth.flac")
    ]  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(TranscribeError, match="no audio files in this folder"):
        model.transcribe(str(tmp_path / "empty"))


def test_empty_array_dir_and_on_error_documented(model: api.Model) -> None:
    """Issue 25 item 23: an empty array was called a shape error; ``dir(asr)`` lacked the API;
    ``on_error="keep"`` was undocumented."""
    for empty in (np.zeros(0, dtype=np.float32), torch.zeros(0), np.zeros((0, 2))):
        with pytest.raises(TranscribeError, match=r"^empty audio array") as err:
            model.transcribe(empty, sample_rate=16000)
        assert "mono" not in str(err.value)
    assert {"load_model", "transcribe", "Model", "__version__"} <= set(dir(asr))
    for doc in (asr.transcribe.__doc__, api.Model.transcribe.__doc__):
        assert doc is not None and "on_error" in doc and '"keep"' in doc and "error" in doc
