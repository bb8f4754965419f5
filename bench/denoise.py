"""Denoising, measured: SNR gain and fbank distance of our denoisers and of noisereduce.

Clean speech is the real LJSpeech clips in ``../shared/data/ljspeech-sample`` (resampled to
16 kHz), mixed with white, pink and babble noise (babble = the sum of six other utterances) at
0, 5 and 10 dB SNR with a fixed seed. For every method we report, averaged over the mixtures:

- SNR gain: ``SNR(out) - SNR(noisy)`` with ``SNR(y) = 10 log10(|s|^2 / |s - y|^2)``;
- segmental SNR gain: the same over 32 ms frames (clipped to [-10, 35] dB, frames within 40 dB
  of the loudest clean frame);
- fbank distance: mean absolute difference of 80-bin Kaldi log-mel fbank (dither 0) of the
  output and of the clean speech (for "noisy input" the unprocessed mixture).

Our methods run in the waveform domain through :func:`asr.frontend.denoise.denoise_waveform`
(25 ms Hann / 10 ms STFT, the gain applied to the complex STFT). noisereduce runs with its
defaults (``reduce_noise(y, sr, stationary=True/False)``). Run from the repository root::

    .venv/bin/python -m bench.denoise            # all clips, writes bench/RESULTS.md
    .venv/bin/python -m bench.denoise --clips 4 --no-write
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.errors import AsrError
from asr.frontend.denoise import DenoiseConfig, denoise_waveform

SAMPLE_RATE = 16000
SNRS_DB = (0.0, 5.0, 10.0)
NOISES = ("white", "pink", "babble")
BABBLE_TALKERS = 6
SEG_FRAME = 512  # segmental SNR frame, samples (32 ms)
SEED = 1234
# noisereduce settings closer to our defaults (found on the tuning clips: 10% floor, light mask
# smoothing, 32 ms FFT); its defaults are prop_decrease 1, 500 Hz / 50 ms smoothing, n_fft 1024.
NOISEREDUCE_TUNED = {
    "prop_decrease": 0.9,
    "freq_mask_smooth_hz": 100,
    "time_mask_smooth_ms": 20,
    "n_fft": 512,
}
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ljspeech-sample"
PRESET = ROOT / "conf" / "frontend" / "kaldi_fbank80.yaml"


@dataclass
class Scores:
    """Per-method running sums over mixtures."""

    snr_gain: float = 0.0
    seg_gain: float = 0.0
    fbank_dist: float = 0.0
    seconds: float = 0.0
    count: int = 0


def load_clips(limit: int | None) -> list[np.ndarray]:
    """The LJSpeech clips at 16 kHz, float32, sorted by name (first ``limit``)."""
    paths = sorted((DATA / "wavs").glob("*.wav"))[:limit]
    try:
        from asr.io.audio import load_audio

        return [load_audio(p, sample_rate=SAMPLE_RATE)[0] for p in paths]
    except ImportError:
        import soundfile as sf
        import soxr

        out = []
        for p in paths:
            x, rate = sf.read(p, dtype="float32")
            out.append(soxr.resample(x, rate, SAMPLE_RATE).astype(np.float32))
        return out


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum, ``(n,)``."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


def babble_noise(n: int, others: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Sum of ``BABBLE_TALKERS`` other utterances, each at unit RMS, looped from a random start."""
    out = np.zeros(n)
    for k in rng.choice(len(others), size=min(BABBLE_TALKERS, len(others)), replace=False):
        talker = others[k] / (np.sqrt(np.mean(others[k] ** 2)) + 1e-12)
        start = int(rng.integers(0, talker.shape[0]))
        out += np.resize(np.roll(talker, -start), n)
    return out


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean + g * noise`` with ``g`` chosen so that the SNR is ``snr_db``."""
    gain = np.sqrt(np.sum(clean**2) / (np.sum(noise**2) * 10 ** (snr_db / 10)))
    return (clean + gain * noise).astype(np.float32)


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    """``10 log10(|s|^2 / |s - y|^2)``."""
    err = np.sum((clean.astype(np.float64) - estimate) ** 2)
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / max(err, 1e-20)))


def segmental_snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    """Mean frame SNR over 32 ms frames within 40 dB of the loudest, each clipped to [-10, 35]."""
    n = clean.shape[0] // SEG_FRAME * SEG_FRAME
    s = clean[:n].astype(np.float64).reshape(-1, SEG_FRAME)
    e = s - estimate[:n].astype(np.float64).reshape(-1, SEG_FRAME)
    energy = np.sum(s**2, axis=1)
    active = energy > energy.max() * 1e-4
    frame = 10 * np.log10(energy[active] / np.maximum(np.sum(e[active] ** 2, axis=1), 1e-20))
    return float(np.mean(np.clip(frame, -10.0, 35.0)))


Fbank = Callable[[np.ndarray], torch.Tensor]


def fbank_fns(cfgs: dict[str, DenoiseConfig]) -> tuple[Fbank, dict[str, Fbank], str]:
    """80-bin Kaldi log-mel fbank (no dither) and, per config, the same with denoising inside.

    Uses our ``asr.frontend.Frontend`` (``conf/frontend/kaldi_fbank80.yaml`` in eval mode, so no
    dither) when it is importable, else ``torchaudio.compliance.kaldi.fbank`` with no in-front-end
    variants.
    """
    try:
        from asr.frontend import Frontend, load_config

        base = load_config(PRESET)
    except (ImportError, AsrError):
        from torchaudio.compliance import kaldi

        def ref(x: np.ndarray) -> torch.Tensor:
            wav = torch.from_numpy(x)[None] * 32768.0
            return kaldi.fbank(wav, num_mel_bins=80, dither=0.0, sample_frequency=SAMPLE_RATE)

        return ref, {}, "torchaudio.compliance.kaldi.fbank (80 bins, dither 0)"

    def make(cfg: DenoiseConfig) -> Fbank:
        frontend = Frontend(dataclasses.replace(base, denoise=cfg)).eval()

        def fbank(x: np.ndarray) -> torch.Tensor:
            wav = torch.from_numpy(x)[None]
            with torch.no_grad():
                return frontend(wav, torch.tensor([wav.shape[1]]))[0][0]

        return fbank

    inside = {name: make(cfg) for name, cfg in cfgs.items()}
    return make(DenoiseConfig()), inside, f"our Frontend ({PRESET.name}, no dither)"


def methods(cfgs: dict[str, DenoiseConfig]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> function noisy (samples,) float32 -> denoised (samples,)."""
    import noisereduce

    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {"noisy input": lambda x: x}
    for name, cfg in cfgs.items():
        out[name] = lambda x, cfg=cfg: denoise_waveform(x, SAMPLE_RATE, cfg)
    out["noisereduce stationary"] = lambda x: noisereduce.reduce_noise(
        y=x, sr=SAMPLE_RATE, stationary=True
    ).astype(np.float32)
    out["noisereduce non-stationary"] = lambda x: noisereduce.reduce_noise(
        y=x, sr=SAMPLE_RATE, stationary=False
    ).astype(np.float32)
    for stationary in (True, False):
        kind = "stationary" if stationary else "non-stationary"
        out[f"noisereduce {kind}, tuned*"] = lambda x, st=stationary: noisereduce.reduce_noise(
            y=x, sr=SAMPLE_RATE, stationary=st, **NOISEREDUCE_TUNED
        ).astype(np.float32)
    return out


def our_configs() -> dict[str, DenoiseConfig]:
    """Our methods with their defaults, for both noise estimates."""
    return {
        f"ours {method.replace('_', ' ')} ({est})": DenoiseConfig(method=method, noise_estimate=est)
        for method in ("spectral_subtraction", "spectral_gating")
        for est in ("min_stats", "leading")
    }


def make_noise(kind: str, n: int, others: list[np.ndarray], rng: np.random.Generator):
    """White, pink or babble noise, ``(n,)``."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return pink_noise(n, rng)
    return babble_noise(n, others, rng)


def score(scores: dict, key: tuple, clean, out, base: tuple[float, float], dist, elapsed) -> None:
    """Add one output's SNR gains (skipped when ``out`` is None), fbank distance and time."""
    s = scores.setdefault(key, Scores())
    if out is not None:
        s.snr_gain += snr_db(clean, out) - base[0]
        s.seg_gain += segmental_snr_db(clean, out) - base[1]
    s.fbank_dist += dist
    s.seconds += elapsed
    s.count += 1


def run(clips: list[np.ndarray], funcs: dict, fbank: Fbank, inside: dict[str, Fbank]) -> dict:
    """Score every method on every (clip, noise, SNR) mixture; keys (method, noise, snr_db).

    ``funcs`` map noisy waveforms to denoised ones; ``inside`` map noisy waveforms to fbank
    computed with denoising inside the front-end (scored on fbank distance only).
    """
    rng = np.random.default_rng(SEED)
    scores: dict[tuple[str, str, float], Scores] = {}
    for i, clean in enumerate(clips):
        others = [c for j, c in enumerate(clips) if j != i]
        ref = fbank(clean)
        for kind in NOISES:
            noise = make_noise(kind, clean.shape[0], others, rng)
            for snr in SNRS_DB:
                noisy = mix(clean, noise, snr)
                base = (snr_db(clean, noisy), segmental_snr_db(clean, noisy))
                for name, fn in funcs.items():
                    start = time.process_time()
                    out = fn(noisy)
                    elapsed = time.process_time() - start
                    dist = float((fbank(out) - ref).abs().mean())
                    score(scores, (name, kind, snr), clean, out, base, dist, elapsed)
                for name, fn in inside.items():
                    start = time.process_time()
                    feats = fn(noisy)
                    elapsed = time.process_time() - start
                    dist = float((feats - ref).abs().mean())
                    score(scores, (name, kind, snr), clean, None, base, dist, elapsed)
    return scores


def summarise(scores: dict, name: str, noises=NOISES, snrs=SNRS_DB) -> Scores:
    """Mean scores of method ``name`` over the given noises and SNRs (seconds: the total)."""
    total = Scores()
    for (key, noise, snr), s in scores.items():
        if key == name and noise in noises and snr in snrs:
            total.snr_gain += s.snr_gain
            total.seg_gain += s.seg_gain
            total.fbank_dist += s.fbank_dist
            total.seconds += s.seconds
            total.count += s.count
    n = max(total.count, 1)
    return Scores(total.snr_gain / n, total.seg_gain / n, total.fbank_dist / n, total.seconds, n)


def tables(scores: dict, names: list[str], inside: list[str], audio_s: float) -> str:
    """Markdown: overall table, SNR gain by noise and input SNR, fbank distance in the front-end."""
    from bench.report import markdown_table

    rows = []
    for name in names:
        s = summarise(scores, name)
        speed = "-" if name == "noisy input" else audio_s / max(s.seconds, 1e-9)
        rows.append([name, s.snr_gain, s.seg_gain, s.fbank_dist, speed])
    head = ["method (waveform in, waveform out)", "SNR gain dB", "segSNR gain dB"]
    text = markdown_table([*head, "fbank dist", "x real time"], rows)
    rows = []
    for name in names:
        row: list[object] = [name]
        row += [summarise(scores, name, noises=(n,)).snr_gain for n in NOISES]
        row += [summarise(scores, name, snrs=(v,)).snr_gain for v in SNRS_DB]
        row += [summarise(scores, name, noises=(n,)).fbank_dist for n in NOISES]
        rows.append(row)
    head = ["method", *(f"SNR gain {n}" for n in NOISES)]
    head += [f"SNR gain @{v:g} dB" for v in SNRS_DB]
    text += "\n\n" + markdown_table([*head, *(f"fbank dist {n}" for n in NOISES)], rows)
    if inside:
        rows = []
        for name in ["noisy input", *inside]:
            row = [name, summarise(scores, name).fbank_dist]
            row += [summarise(scores, name, noises=(n,)).fbank_dist for n in NOISES]
            row += [summarise(scores, name, snrs=(v,)).fbank_dist for v in SNRS_DB]
            rows.append(row)
        head = ["denoising inside the front-end", "fbank dist"]
        head += [f"{n}" for n in NOISES] + [f"@{v:g} dB" for v in SNRS_DB]
        text += "\n\nfbank distance to clean with `FrontendConfig.denoise` set (no STFT round "
        text += "trip):\n\n" + markdown_table(head, rows)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write its section of bench/RESULTS.md unless --no-write."""
    parser = argparse.ArgumentParser(description="Denoising benchmark (bench/RESULTS.md)")
    parser.add_argument("--clips", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--no-write", action="store_true", help="print, don't write RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return 0
    clips = load_clips(args.clips)
    if len(clips) < 2:
        parser.error("need at least 2 clips (babble is made of the other clips)")
    cfgs = our_configs()
    fbank, inside, fbank_name = fbank_fns(cfgs)
    inside = {f"{name} [front-end]": fn for name, fn in inside.items()}
    funcs = methods(cfgs)
    start = time.time()
    scores = run(clips, funcs, fbank, inside)
    seconds = sum(c.shape[0] for c in clips) / SAMPLE_RATE
    body = (
        f"{len(clips)} LJSpeech clips ({seconds:.0f} s) at 16 kHz x {{white, pink, babble}} "
        f"noise x {{0, 5, 10}} dB SNR, seed {SEED}; means over the {len(clips) * 9} mixtures. "
        "SNR gain = SNR(output) - SNR(noisy); segSNR over 32 ms frames; fbank dist = mean "
        f"|log-mel(output) - log-mel(clean)| with {fbank_name}. Our methods use their "
        "`DenoiseConfig` defaults in the waveform domain (`denoise_waveform`, 25/10 ms STFT); "
        "noisereduce uses `reduce_noise` defaults; *tuned: "
        "`prop_decrease=0.9, freq_mask_smooth_hz=100, time_mask_smooth_ms=20, n_fft=512`. "
        "Our defaults and the tuned noisereduce settings were chosen on clips LJ001-0001, -0006 "
        "and -0012. x real time = audio seconds per CPU second, one thread.\n\n"
        "Command: `.venv/bin/python -m bench.denoise`\n\n"
        + tables(scores, list(funcs), list(inside), seconds * 9)
    )
    print(body)
    print(f"wall time {time.time() - start:.0f} s")
    if not args.no_write:
        from bench.report import write_section

        write_section("denoise", "Denoising (bench/denoise.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
