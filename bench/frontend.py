"""Front-end speed: seconds of audio per CPU second, one thread, real LibriSpeech files.

Run from the repository root: ``.venv/bin/python -m bench.frontend [--max-files N] [--repeats R]``.
All audio is loaded first; only feature computation is timed (``time.process_time``, so other
processes on a shared machine do not count). Every method computes 80-dim log-mel features at
16 kHz (25 ms / 10 ms, 512-point FFT) except our MFCC (13 cepstra). Each method runs
``--repeats`` times and the best run is kept. The table goes to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from asr.frontend import Frontend
from asr.io.audio import load_audio
from bench.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "librispeech-samples"
PRESETS = ROOT / "conf" / "frontend"
BATCH_SIZE = 16


def load_corpus(max_files: int | None) -> list[np.ndarray]:
    """Float32 waveforms of the LibriSpeech sample files (sorted paths, first ``max_files``)."""
    paths = sorted(DATA.rglob("*.flac"))[:max_files]
    if not paths:
        raise SystemExit(f"no FLAC files under {DATA}")
    return [load_audio(p)[0] for p in paths]


def padded_batches(waves: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Length-sorted ``(BATCH_SIZE, max_len)`` zero-padded batches and their lengths."""
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    batches = []
    for start in range(0, len(order), BATCH_SIZE):
        chunk = [waves[i] for i in order[start : start + BATCH_SIZE]]
        lengths = torch.tensor([len(w) for w in chunk])
        x = torch.zeros(len(chunk), int(lengths.max()))
        for row, w in enumerate(chunk):
            x[row, : len(w)] = torch.from_numpy(w)
        batches.append((x, lengths))
    return batches


def ours(preset: str, batched: bool = False) -> Callable[[list[np.ndarray]], None]:
    """Our front-end per utterance, or over length-sorted padded batches of BATCH_SIZE (built
    once, outside the timing, as a data loader would)."""
    frontend = Frontend.from_yaml(PRESETS / f"{preset}.yaml").eval()
    cache: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def run(waves: list[np.ndarray]) -> None:
        with torch.inference_mode():
            if not batched:
                for w in waves:
                    x = torch.from_numpy(w)[None]
                    frontend(x, torch.tensor([x.shape[1]]))
                return
            for x, lengths in cache[(id(waves[0]), len(waves))]:
                frontend(x, lengths)

    def prepare(waves: list[np.ndarray]) -> None:
        cache[(id(waves[0]), len(waves))] = padded_batches(waves)

    run.prepare = prepare  # type: ignore[attr-defined]
    return run


def torchaudio_kaldi(waves: list[np.ndarray]) -> None:
    from torchaudio.compliance import kaldi

    for w in waves:
        kaldi.fbank(torch.from_numpy(w)[None] * 32768, num_mel_bins=80, dither=0.0)


def torchaudio_melspec() -> Callable[[list[np.ndarray]], None]:
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(
        16000, n_fft=512, win_length=400, hop_length=160, n_mels=80
    )

    def run(waves: list[np.ndarray]) -> None:
        with torch.inference_mode():
            for w in waves:
                torch.log(mel(torch.from_numpy(w)) + 1e-10)

    return run


def librosa_melspec(waves: list[np.ndarray]) -> None:
    import librosa

    for w in waves:
        s = librosa.feature.melspectrogram(
            y=w, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80
        )
        np.log(np.maximum(s, 1e-10))


def kaldi_native_fbank(waves: list[np.ndarray]) -> None:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    for w in waves:
        fbank = knf.OnlineFbank(opts)
        fbank.accept_waveform(16000, w * 32768)
        fbank.input_finished()
        np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def time_methods(
    runs: dict[str, Callable[[list[np.ndarray]], None]], waves: list[np.ndarray], repeats: int
) -> dict[str, float]:
    """Best CPU seconds per method. Methods take turns within each round, so that a change in
    the load of a shared machine affects all of them alike."""
    for run in runs.values():
        for subset in (waves[:2], waves):
            if hasattr(run, "prepare"):
                run.prepare(subset)
        run(waves[:2])  # warm-up
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.process_time()
            run(waves)
            best[name] = min(best[name], time.process_time() - start)
    return best


def methods() -> list[tuple[str, Callable[[], Callable[[list[np.ndarray]], None]]]]:
    """(name, factory) pairs; factories import their package, so a missing one is skipped."""
    return [
        (
            "ours: Kaldi-compatible fbank (kaldi_fbank80), per utterance",
            lambda: ours("kaldi_fbank80"),
        ),
        ("ours: MFCC (kaldi_mfcc13), per utterance", lambda: ours("kaldi_mfcc13")),
        ("ours: NeMo-style mel (nemo_mel64), per utterance", lambda: ours("nemo_mel64")),
        (
            f"ours: Kaldi fbank, batched ({BATCH_SIZE} per call)",
            lambda: ours("kaldi_fbank80", True),
        ),
        (
            f"ours: NeMo-style mel, batched ({BATCH_SIZE} per call)",
            lambda: ours("nemo_mel64", True),
        ),
        ("anchor: torchaudio.compliance.kaldi.fbank", lambda: torchaudio_kaldi),
        ("anchor: torchaudio.transforms.MelSpectrogram + log", torchaudio_melspec),
        ("anchor: librosa.feature.melspectrogram + log", lambda: librosa_melspec),
        ("anchor: kaldi-native-fbank (C++)", lambda: kaldi_native_fbank),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=None, help="use the first N files")
    parser.add_argument("--repeats", type=int, default=5, help="runs per method (best kept)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    waves = load_corpus(args.max_files)
    audio_s = sum(len(w) for w in waves) / 16000
    runs = {}
    for name, factory in methods():
        try:
            runs[name] = factory()
        except ImportError as err:
            print(f"skip {name}: {err}")
    cpu = time_methods(runs, waves, args.repeats)
    speeds = {name: audio_s / cpu_s for name, cpu_s in cpu.items()}
    rows: list[list[object]] = [
        [name, round(cpu[name], 3), round(speeds[name], 1)] for name in runs
    ]
    body = summary(rows, speeds, len(waves), audio_s, args.repeats)
    print(body)
    if not args.no_write:
        write_section("frontend", "Front-end speed (bench/frontend.py)", body)
    return 0


def summary(
    rows: list[list[object]], speeds: dict[str, float], files: int, audio_s: float, repeats: int
) -> str:
    """Markdown: what was measured, the table and the two goals."""
    table = markdown_table(["method", "CPU seconds", "audio s per CPU s"], rows)
    ours_kaldi = speeds.get(methods()[0][0])
    ta = speeds.get("anchor: torchaudio.compliance.kaldi.fbank")
    ours_best = max((v for k, v in speeds.items() if k.startswith("ours")), default=None)
    anchor_best = max((v for k, v in speeds.items() if k.startswith("anchor")), default=None)
    lines = [
        f"{files} LibriSpeech FLAC files ({audio_s / 60:.1f} min of 16 kHz audio) from "
        "../shared/data/librispeech-samples, loaded before timing; one thread "
        f"(torch.set_num_threads(1)); CPU time (time.process_time), best of {repeats} rounds "
        "in which the methods take turns. "
        "80 log-mel bins, 25 ms / 10 ms frames, 512-point FFT everywhere "
        "(MFCC: 23 bins, 13 cepstra; NeMo: 64 bins, 20 ms frames). Per utterance: one call "
        "per file; batched: length-sorted zero-padded batches of 16 built before timing, one "
        "call per batch. kaldi-native-fbank's time includes reading its frames through its "
        "Python API (`get_frame`).",
        "",
        table,
        "",
    ]
    if ours_kaldi and ta:
        lines.append(
            f"Goal 1 (our Kaldi fbank >= 1.5x torchaudio.compliance.kaldi.fbank): "
            f"{ours_kaldi / ta:.2f}x, {'met' if ours_kaldi >= 1.5 * ta else 'NOT met'}."
        )
    if ours_best and anchor_best:
        lines.append(
            f"Goal 2 (our fastest path >= the fastest anchor): {ours_best:.0f} vs "
            f"{anchor_best:.0f} s/s, {'met' if ours_best >= anchor_best else 'NOT met'}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
