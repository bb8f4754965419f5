"""Text-to-speech voices as synthetic speakers: system engines (espeak-ng, flite, festival,
mbrola) and neural voices shipped in registry packages (hibari, piper, kokoro:
:mod:`asr.corpora.tts_neural`).

A :class:`Voice` names one engine voice plus a speaking-rate and pitch setting; every distinct
``Voice`` is one "speaker" of a synthetic corpus. :func:`available_voices` lists the base voices
(rate and pitch 1.0) installed on this machine; :func:`jitter` derives rate/pitch variants;
:func:`render` speaks one text into a 16 kHz mono audio file.

The engines run as subprocesses with argument lists (no shell); the text goes through a
temporary file, never the command line, so a text starting with "-" is still text. festival runs
as one long-lived ``festival --pipe`` process per worker (:mod:`asr.corpora.tts_festival`).

Rate and pitch: espeak-ng (and mbrola through it) change both natively (``-s`` words per
minute, ``-p`` pitch 0-99). flite and festival diphone voices stretch durations natively; their
pitch factor is applied by "warping": the engine renders ``pitch`` times slower, and the audio is
then resampled so it plays ``pitch`` times faster, which scales pitch and formants together
(like a different vocal-tract length) and leaves the requested speaking rate. festival's HTS
voices ignore the duration stretch, so their rate follows the warp alone.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.corpora.tts_neural import (
    NEURAL_PACKAGES,
    neural_installed,
    neural_voice_names,
    synthesize_neural,
)
from asr.errors import AsrError
from asr.io.audio import load_audio, resample, save_audio

ENGINES = ("espeak-ng", "flite", "festival", "mbrola", "hibari", "piper", "kokoro")
NEURAL_ENGINES = ("hibari", "piper", "kokoro")
# Engines whose pitch factor is applied by the resampling warp (see the module doc).
WARPED_ENGINES = ("flite", "festival", *NEURAL_ENGINES)

# Debian packages that provide each engine (named in the "not installed" error).
ENGINE_PACKAGES = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "mbrola": "mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 (with espeak-ng)",
    **NEURAL_PACKAGES,
}

ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# espeak-ng voice variants that sound like a plain human reader (no robots, whispers, effects).
ESPEAK_VARIANTS = (
    *(f"m{i}" for i in range(1, 9)),
    *(f"f{i}" for i in range(1, 6)),
    *("klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6"),
    *("adam", "Alex", "Andy", "Annie", "aunty", "benjamin", "boris", "caleb", "david", "ed"),
    *("edward", "grandma", "grandpa", "iven", "john", "linda", "max", "Michael", "Mike"),
    *("norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor", "zac"),
)
FEMALE_ESPEAK_VARIANTS = frozenset(
    {"f1", "f2", "f3", "f4", "f5", "Annie", "aunty", "grandma", "linda", "steph", "Alicia"}
)
# English mbrola databases espeak-ng can drive: espeak voice -> (database, sex).
MBROLA_VOICES = {"mb-us1": ("us1", "F"), "mb-us2": ("us2", "M"), "mb-us3": ("us3", "M")}
MBROLA_VOICES["mb-en1"] = ("en1", "M")
MBROLA_DIRS = ("/usr/share/mbrola", "/usr/local/share/mbrola")

# flite voices: name -> (sex, speaker group); kal and kal16 are the same speaker, and the groups
# are the recorded speakers, shared with festival's voices (kal, slt, awb, rms from CMU).
FLITE_VOICES = {
    "kal": ("M", "kal"),
    "kal16": ("M", "kal"),
    "awb": ("M", "awb"),
    "rms": ("M", "rms"),
    "slt": ("F", "slt"),
}
# festival voices: name -> (sex, speaker group, duration stretch works).
FESTIVAL_VOICES = {
    "voice_kal_diphone": ("M", "kal", True),
    "voice_ked_diphone": ("M", "ked", True),
    "voice_rab_diphone": ("M", "rab", True),
    "voice_don_diphone": ("M", "don", True),
    "voice_cmu_us_slt_arctic_hts": ("F", "slt", False),
    "voice_cmu_us_awb_arctic_hts": ("M", "awb", False),
    "voice_cmu_us_rms_arctic_hts": ("M", "rms", False),
}
FESTIVAL_DIRS = ("/usr/share/festival/voices", "/usr/local/share/festival/voices")

ESPEAK_DEFAULT_WPM = 175
ESPEAK_DEFAULT_PITCH = 50
RENDER_TIMEOUT_S = 120


class TTSError(AsrError):
    """A text-to-speech engine is missing, failed, or produced no audio."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine voice at a speaking rate and pitch.

    Attributes:
        engine: one of ``ENGINES``.
        name: the engine's voice name ("en-gb-x-rp", "slt", "voice_kal_diphone", "mb-us1").
        variant: espeak-ng voice variant ("m3", "f2", "klatt"); "" for none and other engines.
        sex: "M" or "F" (for SPEAKERS.TXT).
        group: speaker identity shared by voices that sound like the same person, across
            engines too (flite's and festival's "slt" are one recorded speaker; espeak-ng's
            variant "m3" in every accent is one): corpus splits keep a group on one side.
        speed: speaking-rate factor (1.0 = the voice's default, 1.2 = 20 % faster).
        pitch: pitch factor (1.0 = the voice's default).
    """

    engine: str
    name: str
    variant: str = ""
    sex: str = "M"
    group: str = ""
    speed: float = 1.0
    pitch: float = 1.0

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not (0.5 <= self.speed <= 2.0 and 0.5 <= self.pitch <= 2.0):
            raise ValueError(f"speed and pitch must be in [0.5, 2], got {self.speed}, {self.pitch}")

    @property
    def base_id(self) -> str:
        """Engine voice without the rate/pitch setting, e.g. ``espeak-ng:en-us+m3``."""
        variant = f"+{self.variant}" if self.variant else ""
        return f"{self.engine}:{self.name}{variant}"

    @property
    def id(self) -> str:
        """Unique readable id, e.g. ``espeak-ng:en-us+m3@s1.10p0.95``."""
        return f"{self.base_id}@s{self.speed:.2f}p{self.pitch:.2f}"

    @property
    def group_id(self) -> str:
        """Speaker-identity key: ``group``, or the base id when it has none."""
        return self.group or self.base_id


def _need(engine: str, program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise TTSError(
            f"text-to-speech engine {engine!r} is not installed ({program} not found on PATH): "
            f"apt-get install {ENGINE_PACKAGES[engine]}"
        )
    return path


def _need_neural(engine: str) -> None:
    if not neural_installed(engine):
        raise TTSError(
            f"text-to-speech engine {engine!r} is not installed: pip install "
            f"{ENGINE_PACKAGES[engine]} (or: pip install asr[tts])"
        )


def engine_installed(engine: str) -> bool:
    """True when ``engine`` can render on this machine."""
    if engine in NEURAL_ENGINES:
        return neural_installed(engine)
    try:
        if engine == "mbrola":
            _need("mbrola", "mbrola")
            _need("espeak-ng", "espeak-ng")
        else:
            _need(engine, engine)
    except TTSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _espeak_variants() -> frozenset[str]:
    out = subprocess.run(
        [_need("espeak-ng", "espeak-ng"), "--voices=variant"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    return frozenset(m.group(1) for m in re.finditer(r"!v/(\S+)", out))


def _espeak_voices() -> list[Voice]:
    known = _espeak_variants()
    voices = []
    for accent in ESPEAK_ACCENTS:
        for variant in ESPEAK_VARIANTS:
            if variant in known:
                sex = "F" if variant in FEMALE_ESPEAK_VARIANTS else "M"
                voices.append(Voice("espeak-ng", accent, variant, sex, f"espeak-ng:{variant}"))
    return voices


def _mbrola_voices() -> list[Voice]:
    voices = []
    for name, (database, sex) in MBROLA_VOICES.items():
        if any((Path(d) / database / database).is_file() for d in MBROLA_DIRS):
            voices.append(Voice("mbrola", name, "", sex, f"mbrola:{database}"))
    return voices


def _flite_voices() -> list[Voice]:
    out = subprocess.run(
        [_need("flite", "flite"), "-lv"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    listed = set(out.split(":", 1)[-1].split())
    return [Voice("flite", n, "", s, g) for n, (s, g) in FLITE_VOICES.items() if n in listed]


def _festival_voices() -> list[Voice]:
    voices = []
    for name, (sex, group, _) in FESTIVAL_VOICES.items():
        folder = name.removeprefix("voice_")
        if any(Path(d, lang, folder).is_dir() for d in FESTIVAL_DIRS for lang in ("english", "us")):
            voices.append(Voice("festival", name, "", sex, group))
    return voices


def _neural_voices(engine: str) -> list[Voice]:
    return [Voice(engine, n, "", sex, f"{engine}:{n}") for n, sex in neural_voice_names(engine)]


def available_voices(engines: tuple[str, ...] | list[str] = ENGINES) -> list[Voice]:
    """English base voices (speed = pitch = 1) of the installed ``engines``, in a fixed order.

    Engines that are not installed contribute nothing; use :func:`check_engines` to require them.
    """
    finders = {
        "espeak-ng": _espeak_voices,
        "flite": _flite_voices,
        "festival": _festival_voices,
        "mbrola": _mbrola_voices,
        "hibari": functools.partial(_neural_voices, "hibari"),
        "piper": functools.partial(_neural_voices, "piper"),
        "kokoro": functools.partial(_neural_voices, "kokoro"),
    }
    voices: list[Voice] = []
    for engine in engines:
        if engine not in finders:
            raise TTSError(
                f"unknown text-to-speech engine {engine!r} (known: {', '.join(ENGINES)})"
            )
        if engine_installed(engine):
            voices.extend(finders[engine]())
    return voices


def check_engines(engines: tuple[str, ...] | list[str]) -> None:
    """Raise :class:`TTSError` naming the Debian package of the first engine not installed."""
    for engine in engines:
        if engine not in ENGINE_PACKAGES:
            raise TTSError(
                f"unknown text-to-speech engine {engine!r} (known: {', '.join(ENGINES)})"
            )
        if engine == "mbrola":
            _need("espeak-ng", "espeak-ng")
            _need("mbrola", "mbrola")
        elif engine in NEURAL_ENGINES:
            _need_neural(engine)
        else:
            _need(engine, engine)


def jitter(voice: Voice, speed: float, pitch: float) -> Voice:
    """``voice`` at another speaking-rate and pitch factor (rounded to 0.01)."""
    return dataclasses.replace(voice, speed=round(speed, 2), pitch=round(pitch, 2))


def _run(cmd: list[str], voice: Voice) -> None:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise TTSError(f"{voice.id}: {cmd[0]} took more than {RENDER_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        raise TTSError(f"{voice.id}: {Path(cmd[0]).name} failed: {reason}")


def _engine_command(voice: Voice, text_file: Path, wav: Path) -> list[str]:
    """The command that renders ``text_file`` to ``wav`` with an espeak-ng/mbrola/flite voice."""
    if voice.engine in ("espeak-ng", "mbrola"):
        if voice.engine == "mbrola":
            _need("mbrola", "mbrola")
        name = f"{voice.name}+{voice.variant}" if voice.variant else voice.name
        wpm = round(ESPEAK_DEFAULT_WPM * voice.speed)
        pitch = int(np.clip(round(ESPEAK_DEFAULT_PITCH * voice.pitch), 0, 99))
        cmd = [_need("espeak-ng", "espeak-ng"), "-v", name, "-s", str(wpm), "-p", str(pitch)]
        return [*cmd, "-w", str(wav), "-f", str(text_file)]
    stretch = voice.pitch / voice.speed  # warped afterwards by ``pitch``: see the module doc
    cmd = [
        _need("flite", "flite"),
        "-voice",
        voice.name,
        "--setf",
        f"duration_stretch={stretch:.4f}",
    ]
    return [*cmd, "-f", str(text_file), "-o", str(wav)]


def _festival(voice: Voice, text: str, wav: Path) -> None:
    from asr.corpora.tts_festival import festival_say

    stretch = voice.pitch / voice.speed  # warped afterwards by ``pitch``: see the module doc
    program = _need("festival", "festival")
    error = festival_say(program, voice.name, text, wav, stretch, RENDER_TIMEOUT_S)
    if error:
        raise TTSError(f"{voice.id}: {error}")


def _system_engine(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="asr-tts-") as tmp:
        text_file, wav = Path(tmp, "text.txt"), Path(tmp, "out.wav")
        if voice.engine == "festival":
            _festival(voice, text.strip(), wav)
        else:
            text_file.write_text(text.strip() + "\n", encoding="utf-8")
            _run(_engine_command(voice, text_file, wav), voice)
        if not wav.is_file() or wav.stat().st_size <= 44:
            raise TTSError(f"{voice.id}: {voice.engine} wrote no audio for {text[:40]!r}")
        return load_audio(wav)


def synthesize(voice: Voice, text: str, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Speak ``text`` with ``voice``: mono float32 samples ``(samples,)`` at ``sample_rate``.

    ``seed`` draws the prosody of neural voices (ignored by the system engines).

    Raises:
        TTSError: engine not installed (naming the Debian package), engine failure, no audio.
    """
    if not text.strip():
        raise TTSError(f"{voice.id}: nothing to say (empty text)")
    if voice.engine in NEURAL_ENGINES:
        _need_neural(voice.engine)
        tempo = voice.speed / voice.pitch  # warped afterwards by ``pitch``: see the module doc
        samples, rate = synthesize_neural(voice.engine, voice.name, text.strip(), tempo, seed)
    else:
        samples, rate = _system_engine(voice, text)
    if voice.engine in WARPED_ENGINES and voice.pitch != 1.0:
        # Resampling to rate / pitch and playing at ``rate`` plays ``pitch`` times faster.
        samples = resample(samples, rate, max(1, round(rate / voice.pitch)))
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    if samples.size == 0 or not np.any(samples):
        raise TTSError(f"{voice.id}: silent output for {text[:40]!r}")
    return samples


def render(voice: Voice, text: str, out_path: str | Path, sample_rate: int = 16000) -> float:
    """Speak ``text`` with ``voice`` into ``out_path`` (WAV or FLAC by suffix, mono, atomic).

    Returns:
        duration of the written audio in seconds.
    """
    samples = synthesize(voice, text, sample_rate)
    save_audio(out_path, samples, sample_rate)
    return samples.size / sample_rate
