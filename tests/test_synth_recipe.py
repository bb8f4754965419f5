"""egs/synth/run.sh, all ten stages, with a tiny corpus and tiny models (plumbing, not accuracy).

Four short 'novels' are read by two espeak-ng voices; a two-clip LJSpeech-format folder stands
in for the real-speech set. Stage 9's bundle must then work as a model folder for
``asr transcribe`` with its LM and tuned decode settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from asr.corpora import tts
from tests.test_librispeech_recipe import VOICES, _configs, _novels
from tests.test_librispeech_recipe import _run as run_recipe

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "egs" / "synth" / "run.sh"
SETS = ("dev", "test", "ljspeech")


def _corpus_config(tmp_path: Path) -> Path:
    cfg = {
        "text_dir": str(tmp_path / "novels"), "text_glob": "*.txt", "hours_train": 0.006,
        "hours_dev": 0.0012, "hours_test": 0.0012, "novels_dev": 1, "novels_test": 1,
        "engines": ["espeak-ng"], "optional_engines": [], "voices": list(VOICES),
        "heldout_groups": [], "settings_per_voice": 1, "utts_per_block": 2,
        "utts_per_block_eval": 2, "min_duration_s": 1.0,
    }  # fmt: skip
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _phase2_config(tmp_path: Path) -> Path:
    """A fine-tuning phase: no model section (init_from supplies it), no SpecAugment."""
    cfg = {
        "data": {"train_manifest": "x", "max_batch_seconds": 60.0, "num_workers": 0},
        "optim": {"name": "adamw", "lr": 1e-3, "schedule": "constant"},
        "epochs": 1, "device": "cpu",
    }  # fmt: skip
    path = tmp_path / "phase2.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _ljspeech(folder: Path, data: Path) -> Path:
    """Two dev clips as a LJSpeech folder (22.05 kHz WAVs named by metadata.csv)."""
    (folder / "wavs").mkdir(parents=True)
    lines = []
    for i, flac in enumerate(sorted((data / "LibriSpeech" / "dev").rglob("*.flac"))[:2]):
        samples, rate = sf.read(flac)
        sf.write(folder / "wavs" / f"LJ000-{i:04d}.wav", samples, rate)
        trans = next(flac.parent.glob("*.trans.txt")).read_text().splitlines()
        text = dict(line.split(" ", 1) for line in trans)[flac.stem]
        lines.append(f"LJ000-{i:04d}|{text.lower()}|{text.lower()}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_synth_recipe_end_to_end(tmp_path: Path) -> None:
    if not [v for v in tts.available_voices(["espeak-ng"]) if v.base_id in VOICES]:
        pytest.skip("espeak-ng voices en-us+m1/en-gb+f2 are not installed")
    _novels(tmp_path / "novels")
    conf = _configs(tmp_path)
    data, exp = tmp_path / "data", tmp_path / "exp"
    base = [
        *("--data", str(data), "--exp", str(exp), "--config", str(_corpus_config(tmp_path))),
        *("--text-dir", str(tmp_path / "novels"), "--jobs", "1", "--threads", "1"),
    ]  # fmt: skip
    run_recipe([*base, "--stop-stage", "0"], tmp_path / "run0.log", RUN_SH)
    args = [
        *base, "--ljspeech", str(_ljspeech(tmp_path / "LJ", data)),
        *("--am-config", str(conf["am"]), "--lm-config", str(conf["lm"])),
        *("--am-config2", str(_phase2_config(tmp_path)), "--am2-overrides", "optim.lr=4e-3"),
        *("--decode-config", str(conf["decode"]), "--tune-alphas", "0,0.5", "--tune-betas", "0"),
    ]  # fmt: skip
    stdout = run_recipe([*args, "--stage", "1"], tmp_path / "run.log", RUN_SH)

    # stage 5: phase 2 (--am-config2, with its own overrides) continues phase 1's model
    phase2 = yaml.safe_load((exp / "am" / "config.yaml").read_text())
    assert phase2["init_from"] == str(exp / "am_phase1" / "model")
    assert phase2["optim"]["lr"] == 4e-3 and phase2["data"]["augment"]["spec_freq_masks"] == 0
    phase1 = yaml.safe_load((exp / "am_phase1" / "model" / "config.yaml").read_text())
    final = yaml.safe_load((exp / "am" / "model" / "config.yaml").read_text())
    assert final["model"] == phase1["model"]

    manifests = data / "manifests"
    assert len((manifests / "ljspeech.jsonl").read_text().splitlines()) == 2
    # LM text: train novels only (the dev and test novels are held out)
    split = (data / "novel_split.tsv").read_text().splitlines()[1:]
    held_out = {row.split("\t")[0] for row in split if row.split("\t")[2] != "train"}
    assert len(held_out) == 2
    for decoder in ("greedy", "beam", "beam_lstm"):
        for subset in SETS:
            folder = exp / "decode" / decoder / subset
            assert json.loads((folder / "wer.json").read_text())["words"]["ref_len"] > 0
    assert len(re.findall(r"^%WER \d+\.\d+ \[.*$", stdout, flags=re.M)) == 9
    assert "| ljspeech | beam_lstm |" in (exp / "results.md").read_text()

    # stage 9: a float16 bundle that asr transcribe decodes with its LM and decode.yaml
    bundle = exp / "default"
    assert yaml.safe_load((bundle / "config.yaml").read_text())["dtype"] == "float16"
    assert yaml.safe_load((bundle / "lm" / "lm.yaml").read_text())["dtype"] == "float16"
    tuned = yaml.safe_load((exp / "tune" / "decode.yaml").read_text())
    assert yaml.safe_load((bundle / "decode.yaml").read_text()) == tuned
    wav = next((tmp_path / "LJ" / "wavs").glob("*.wav"))
    result = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(wav), "--model", str(bundle)],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
