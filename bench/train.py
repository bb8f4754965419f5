"""Acoustic-model training throughput on CPU, in audio-seconds per second, eager vs torch.compile.

One training step = forward (front-end + encoder + CTC head) + CTC loss + backward, on a real
batch: LibriSpeech FLACs from ``../shared/data/librispeech-samples`` of similar length (the
sampler's duration buckets do the same), padded to the longest, up to ``--batch-seconds`` padded
seconds; random targets at 15 characters per second (throughput does not depend on their
values). Without the shared data, the batch is random noise of the same shape.

For each model config (``conf/model/small.yaml`` and ``conf/model/quartznet_5x5.yaml`` by
default, 29 symbols), each thread count (1 and all cores) and each mode (``direct``: eager with
every depthwise convolution through torch's ``conv1d``, the anchor; ``eager``: as the library runs,
long depthwise kernels on CPU through ``asr.models.fftconv``; and
``torch.compile(model)`` with the default inductor backend, by default at 1 thread only: every
compilation takes minutes): ``--warmup`` untimed steps (for
compile: the compilation), then ``--steps`` timed steps. A compile failure is reported in the
table with its first line. Run: ``.venv/bin/python -m bench.train`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from asr.models import fftconv
from asr.models.ctc import CTCModel, ctc_loss, load_model_config
from bench.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "librispeech-samples"
MODELS = ("conf/model/small.yaml", "conf/model/quartznet_5x5.yaml")
RATE = 16000
VOCAB = 29
CHARS_PER_SECOND = 15.0


def real_batch(batch_seconds: float) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Padded (batch, samples) waveforms + lengths of similar-length LibriSpeech files."""
    from asr.io.audio import audio_info, load_audio

    files = sorted(SAMPLES.rglob("*.flac"))
    if not files:
        return synthetic_batch(batch_seconds)
    durations = sorted((audio_info(f).duration_s, str(f)) for f in files)
    median = durations[len(durations) // 2][0]
    chosen = [f for d, f in durations if median <= d][: max(1, int(batch_seconds // median))]
    while len(chosen) > 1 and len(chosen) * audio_info(chosen[-1]).duration_s > batch_seconds:
        chosen.pop()
    waves = [torch.from_numpy(load_audio(f, RATE)[0]) for f in chosen]
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    return padded, lengths, f"{len(waves)} LibriSpeech utterances"


def synthetic_batch(batch_seconds: float) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Eight utterances of noise (no shared data): about batch_seconds padded seconds."""
    count = 8
    samples = int(batch_seconds / count * RATE)
    gen = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(count, samples, generator=gen)
    lengths = torch.linspace(0.8 * samples, samples, count).long()
    return waves, lengths, f"{count} noise utterances"


def targets_for(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random non-blank targets at CHARS_PER_SECOND: (batch, max_tokens), (batch,)."""
    gen = torch.Generator().manual_seed(1)
    target_lengths = (lengths.float() / RATE * CHARS_PER_SECOND).long().clamp(min=1)
    targets = torch.randint(1, VOCAB, (len(lengths), int(target_lengths.max())), generator=gen)
    return targets, target_lengths


def measure(
    model: torch.nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    warmup: int,
    steps: int,
) -> tuple[float, float]:
    """(warm-up seconds, audio seconds per second) of forward + CTC loss + backward."""
    waves, lengths = batch
    targets, target_lengths = targets_for(lengths)
    audio_s = float(lengths.sum()) / RATE

    def step() -> None:
        log_probs, out_lengths = model(waves, lengths)
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
        loss.backward()
        for p in model.parameters():
            p.grad = None

    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return warm, audio_s * steps / (time.perf_counter() - start)


def run_one(
    config: str, threads: int, mode: str, batch: tuple[torch.Tensor, torch.Tensor], args
) -> list[object]:
    """One table row: config, parameters, threads, mode, warm-up s, audio-s/s (or the error)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CTCModel(load_model_config(ROOT / config), VOCAB).train()
    params = f"{model.num_parameters() / 1e6:.2f} M"
    name = Path(config).stem
    runner: torch.nn.Module = model
    if mode == "compile":
        torch._dynamo.reset()
        runner = torch.compile(model)  # type: ignore[assignment]
    min_span = fftconv.FFT_MIN_SPAN
    if mode == "direct":
        fftconv.FFT_MIN_SPAN = 1 << 30  # no kernel is this long: torch's conv1d throughout
    try:
        warm, rate = measure(runner, batch, args.warmup, args.steps)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        print(f"{name} {threads} thread(s) {mode}: FAILED {type(err).__name__}: {first}")
        return [name, params, threads, mode, "-", f"failed: {type(err).__name__}: {first}"]
    finally:
        fftconv.FFT_MIN_SPAN = min_span
    print(f"{name} {threads} thread(s) {mode}: {rate:.2f} audio-s/s (warm-up {warm:.1f} s)")
    return [name, params, threads, mode, round(warm, 1), rate]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), help="model YAMLs (repo-relative)")
    p.add_argument("--batch-seconds", type=float, default=60.0, help="padded seconds per batch")
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps (compile happens here)")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["direct", "eager", "compile"],
        choices=["direct", "eager", "compile"],
    )
    p.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    p.add_argument(
        "--compile-threads",
        nargs="+",
        type=int,
        default=[1],
        help="thread counts measured with torch.compile (each compiles anew: slow)",
    )
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    waves, lengths, what = real_batch(args.batch_seconds)
    padded_s = waves.shape[0] * waves.shape[1] / RATE
    load_before = os.getloadavg()[0]
    rows = [
        run_one(config, threads, mode, (waves, lengths), args)
        for config in args.models
        for threads in args.threads
        for mode in args.modes
        if mode != "compile" or threads in args.compile_threads
    ]
    load_after = os.getloadavg()[0]
    header = ["model", "params", "threads", "mode", "warm-up s", "audio-s/s (fwd+CTC+bwd)"]
    body = (
        f"`python -m bench.train --batch-seconds {args.batch_seconds:g} --steps {args.steps}"
        f" --warmup {args.warmup}`: "
        f"one batch of {what} ({float(lengths.sum()) / RATE:.1f} s of audio, {padded_s:.1f} s "
        f"padded), forward + CTC loss + backward in training mode, {args.steps} timed steps "
        f"after {args.warmup} warm-up step(s) (for torch.compile the warm-up includes "
        f"compilation). Mode `direct` runs every depthwise convolution through torch's conv1d; "
        "`eager` and `compile` run the library as shipped (long depthwise kernels on CPU by FFT, "
        "`asr.models.fftconv`). "
        f"Load average (1 min) {load_before:.1f} before, {load_after:.1f} after, "
        f"on {os.cpu_count()} cores shared with other jobs: absolute rates are lower bounds, "
        "ratios within a row pair are the meaningful part.\n\n" + markdown_table(header, rows)
    )
    print(body)
    if not args.no_write:
        write_section("train", "Acoustic-model training throughput on CPU (bench/train.py)", body)


if __name__ == "__main__":
    main()
