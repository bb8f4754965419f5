"""A tiny synthetic corpus for trainer tests: each letter is a tone, so a small model learns it.

Letters A, B, C and the space map to 400, 1000, 2200 and 3400 Hz tones of 0.12 s separated by
0.06 s of silence; no letter repeats inside a word. Utterances are random letter strings; files
are 16 kHz WAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.manifest import Utterance, write_manifest

RATE = 16000
TONES_HZ = {"A": 400.0, "B": 1000.0, "C": 2200.0, " ": 3400.0}


def render(text: str, rng: np.random.Generator) -> np.ndarray:
    """Samples of ``text`` (letters A-C and spaces) at 16 kHz with a little noise."""
    parts = [np.zeros(int(0.1 * RATE))]
    for ch in text:
        t = np.arange(int(0.12 * RATE)) / RATE
        parts.append(0.3 * np.sin(2 * np.pi * TONES_HZ[ch] * t) * np.hanning(len(t)))
        parts.append(np.zeros(int(0.06 * RATE)))
    parts.append(np.zeros(int(0.1 * RATE)))
    x = np.concatenate(parts)
    return (x + 0.003 * rng.standard_normal(len(x))).astype(np.float32)


def _word(rng: np.random.Generator) -> str:
    letters = [str(rng.choice(list("ABC")))]
    for _ in range(rng.integers(0, 3)):
        letters.append(str(rng.choice([c for c in "ABC" if c != letters[-1]])))
    return "".join(letters)


def make_corpus(folder: Path, count: int, seed: int = 0, name: str = "train") -> Path:
    """Write ``count`` utterances and their manifest ``folder/<name>.jsonl``; return its path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i in range(count):
        words = [_word(rng) for _ in range(rng.integers(1, 3))]
        text = " ".join(words)
        audio = render(text, rng)
        path = folder / f"{name}-{i:03d}.wav"
        sf.write(path, audio, RATE)
        utts.append(Utterance(str(path), len(audio) / RATE, text, utt_id=f"{name}-{i:03d}"))
    manifest = folder / f"{name}.jsonl"
    write_manifest(manifest, utts)
    return manifest


TINY_MODEL = {
    "frontend": {
        "sample_rate_hz": 16000,
        "waveform_scale": 32768.0,
        "dither": 0.0,
        "features": "fbank",
        "num_mel_bins": 23,
        "normalize": "utterance",
    },
    "encoder": {
        "blocks": [
            {"filters": 32, "repeat": 1, "kernel": 11, "stride": 2},
            {"filters": 32, "repeat": 2, "kernel": 11, "residual": True, "dropout": 0.1},
            {"filters": 48, "repeat": 1, "kernel": 1, "separable": False},
        ]
    },
}


def bundle_with_lm(model_dir: Path, dest: Path) -> Path:
    """A copy of ``model_dir`` with decode.yaml and a random LSTM LM in lm/ (the bundled default
    model's layout); alpha 3 makes the LM change the text, so beam and greedy outputs differ."""
    import shutil

    import torch

    from asr.lm.io import save_lm
    from asr.lm.lstm import LSTMLM, LSTMLMConfig
    from asr.text.tokenizer import CharTokenizer

    shutil.copytree(model_dir, dest)
    torch.manual_seed(3)
    tokenizer = CharTokenizer()
    save_lm(LSTMLM(LSTMLMConfig(16, 16, 1), tokenizer.vocab).eval(), tokenizer, dest / "lm")
    (dest / "decode.yaml").write_text("beam_size: 4\nalpha: 3.0\nbeta: 1.0\n")
    return dest
