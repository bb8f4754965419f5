"""egs/synth/run.sh, all ten stages, with a tiny corpus and tiny models (plumbing, not accuracy).

Four short 'novels' are read by two espeak-ng voices; a two-clip LJSpeech-format folder stands
in for the real-speech set. Stage 9's bundle must then work as a model folder for
``asr transcribe`` with its LM and tuned decode settings. A second run gives rendered clips as
"real" speech (--real-root) and makes two real-split fine-tunes whose average stages 6-9 use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file

import asr
from asr.corpora import tts
from asr.models.io import load_model
from tests.test_average import _hand_mean
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
        "engine": {"epochs": 1, "device": "cpu"},
    }  # fmt: skip
    path = tmp_path / "phase2.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _transcript(flac: Path) -> str:
    """The text of a rendered clip, from its chapter's LibriSpeech ``*.trans.txt``."""
    trans = next(flac.parent.glob("*.trans.txt")).read_text().splitlines()
    return dict(line.split(" ", 1) for line in trans)[flac.stem]


def _ljspeech(folder: Path, data: Path) -> Path:
    """Two dev clips as a LJSpeech folder (22.05 kHz WAVs named by metadata.csv)."""
    (folder / "wavs").mkdir(parents=True)
    lines = []
    for i, flac in enumerate(sorted((data / "LibriSpeech" / "dev").rglob("*.flac"))[:2]):
        samples, rate = sf.read(flac)
        sf.write(folder / "wavs" / f"LJ000-{i:04d}.wav", samples, rate)
        text = _transcript(flac)
        lines.append(f"LJ000-{i:04d}|{text.lower()}|{text.lower()}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def _real_speech(data: Path, folder: Path) -> list[str]:
    """Rendered clips as "real" speech: ``<id>.flac`` files in ``folder`` (the test clips as
    speaker 9001, split train; the dev clips as 9002, split dev), with the transcripts and split
    list; returns the run.sh options that name them."""
    folder.mkdir()
    rows = []
    for speaker, subset in (("9001", "test"), ("9002", "dev")):
        for i, flac in enumerate(sorted((data / "LibriSpeech" / subset).rglob("*.flac"))):
            shutil.copy(flac, folder / f"{speaker}-1-{i:04d}.flac")
            rows.append(f"{speaker}-1-{i:04d}\t{_transcript(flac)}\n")
    transcripts, split = folder.parent / "real.tsv", folder.parent / "real_split.tsv"
    transcripts.write_text("".join(rows))
    split.write_text("speaker\tsubset\n9001\ttrain\n9002\tdev\n")
    return ["--real-root", str(folder), "--real-transcripts", str(transcripts),
            "--real-split", str(split)]  # fmt: skip


def _rendered(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """The tiny corpus rendered by stage 0: (run.sh options, data folder, exp folder)."""
    if not [v for v in tts.available_voices(["espeak-ng"]) if v.base_id in VOICES]:
        pytest.skip("espeak-ng voices en-us+m1/en-gb+f2 are not installed")
    _novels(tmp_path / "novels")
    data, exp = tmp_path / "data", tmp_path / "exp"
    base = [
        *("--data", str(data), "--exp", str(exp), "--config", str(_corpus_config(tmp_path))),
        *("--text-dir", str(tmp_path / "novels"), "--jobs", "1", "--threads", "1"),
    ]  # fmt: skip
    run_recipe([*base, "--stop-stage", "0"], tmp_path / "run0.log", RUN_SH)
    return base, data, exp


def test_synth_recipe_end_to_end(tmp_path: Path) -> None:
    base, data, exp = _rendered(tmp_path)
    conf = _configs(tmp_path)
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


FT_OVERRIDES = (
    "engine.max_steps=2 engine.checkpoint_every_steps=1 optim.warmup_steps=1 data.num_workers=0 "
    "data.num_buckets=1 data.max_batch_seconds=60 engine.device=cpu engine.log_every_steps=1"
)


def test_synth_recipe_real_finetunes_averaged(tmp_path: Path) -> None:
    base, data, exp = _rendered(tmp_path)
    conf = _configs(tmp_path)
    args = [
        *base, *_real_speech(data, tmp_path / "real"), "--real-repeat", "2",
        *("--real-finetunes", "2", "--ft-overrides", FT_OVERRIDES, "--ljspeech", ""),
        *("--am-config", str(conf["am"]), "--lm-config", str(conf["lm"])),
        *("--decode-config", str(conf["decode"]), "--tune-alphas", "0", "--tune-betas", "0"),
    ]  # fmt: skip
    stdout = run_recipe([*args, "--stage", "1"], tmp_path / "run.log", RUN_SH)

    manifests = data / "manifests"
    clips = [json.loads(line)["audio_filepath"] for line in
             (manifests / "real_train.jsonl").read_text().splitlines()]  # fmt: skip
    repeated = (manifests / "real_train_x2.jsonl").read_text().splitlines()
    assert [json.loads(line)["audio_filepath"] for line in repeated] == clips * 2
    assert len(clips) >= 1 and all("/real/9001-" in clip for clip in clips)
    # two fine-tunes of the stage-5 model on the real train split, validated on real dev
    configs = [yaml.safe_load((exp / f"am_ft{i}" / "config.yaml").read_text()) for i in (1, 2)]
    for cfg in configs:
        assert cfg["init_from"] == str(exp / "am" / "model")
        assert cfg["data"]["train_manifest"] == str(manifests / "real_train_x2.jsonl")
        assert cfg["data"]["valid_manifest"] == str(manifests / "real_dev.jsonl")
        assert cfg["data"]["augment"]["noise_manifest"] == str(manifests / "train.jsonl")
        assert cfg["optim"]["lr"] == 1e-4
        assert cfg["engine"]["max_steps"] == 2 and cfg["engine"]["seed"] == 0
    augmented, plain = (cfg["data"]["augment"] for cfg in configs)
    assert len(augmented["speed_factors"]) == 7 and augmented["reverb_prob"] == 0.2
    assert plain["speed_factors"] == [1.0] and plain["reverb_prob"] == plain["noise_prob"] == 0
    assert "real-split fine-tune 2/2" in stdout and "average of 2 fine-tunes" in stdout

    # the average is the float64 mean of the two fine-tunes' models
    tunes = [load_model(exp / f"am_ft{i}" / "model")[0] for i in (1, 2)]
    soup = load_file(str(exp / "am_avg" / "model" / "model.safetensors"))
    expected = _hand_mean(tunes)
    assert soup.keys() == expected.keys()
    assert all(torch.equal(soup[k], v) for k, v in expected.items())
    # stages 6-9 used it: tuned with it, decoded with it, bundled it (float16)
    soup_dir = exp / "am_avg" / "model"
    assert f"- model: {soup_dir}\n" in (exp / "tune" / "tune.md").read_text()
    soup_model = asr.load_model(soup_dir, device="cpu")
    hyp = (exp / "decode" / "greedy" / "real_dev" / "hyp.jsonl").read_text().splitlines()
    for row in map(json.loads, hyp):
        greedy = soup_model.transcribe(row["audio_filepath"], decoder="greedy")
        assert row["pred_text"] == greedy.text
    bundled = load_file(str(exp / "default" / "model.safetensors"))["head.conv.weight"]
    assert torch.equal(bundled, soup["head.conv.weight"].half())
    stage5 = load_file(str(exp / "am" / "model" / "model.safetensors"))["head.conv.weight"]
    assert not torch.equal(bundled, stage5.half())
    assert "| real_dev | beam_lstm |" in (exp / "results.md").read_text()

    # a rerun skips the done work: trainings, the average, tuning and decoding
    soup_time = (exp / "am_avg" / "model" / "model.safetensors").stat().st_mtime_ns
    hyps = sorted((exp / "decode").rglob("hyp.jsonl"))
    hyp_times = [p.stat().st_mtime_ns for p in hyps]
    rerun = run_recipe([*args, "--stage", "5", "--stop-stage", "7"], tmp_path / "rerun.log",
                       RUN_SH)  # fmt: skip
    log = (tmp_path / "rerun.log").read_text()
    assert "skipping the average" in rerun and "average of 2" not in rerun
    for folder in ("am", "am_ft1", "am_ft2"):
        assert f"{exp / folder}/model exists; skipping training" in log
    assert "skipping tuning" in log
    assert (exp / "am_avg" / "model" / "model.safetensors").stat().st_mtime_ns == soup_time
    assert [p.stat().st_mtime_ns for p in hyps] == hyp_times and len(hyps) == 9
