"""Acoustic-model training throughput of the training engine on CPU, in audio-seconds per second:
depthwise convolutions direct vs by FFT (eager) vs torch.compile.

Every measurement is a run of the project's trainer (:class:`asr.train.acoustic.AcousticTrainer`
on :mod:`asr.train.engine`, through bench/engine_run.py): each optimizer step loads the batch,
runs forward (front-end + encoder + CTC head), the CTC loss, backward and the AdamW update, and
the engine's log gives each step's time. The data is one batch that makes every epoch (one
duration bucket, a budget that holds it all): LibriSpeech FLACs from
``../shared/data/librispeech-samples`` of similar length (the sampler's duration buckets do the
same), up to ``--batch-seconds`` padded seconds, with random letters at 15 characters per second
as transcripts (throughput does not depend on them). Without the shared data the batch is eight
noise WAVs of the same budget.

For each model config (``conf/model/small.yaml`` and ``conf/model/quartznet_5x5.yaml`` by
default, 29 symbols), each thread count (``engine.threads``: 1 and all cores) and each mode
(``direct``: every depthwise convolution through torch's ``conv1d``, the anchor; ``eager``: as the
library runs, long depthwise kernels on CPU through ``asr.models.fftconv``; ``compile``:
``engine.compile``, torch.compile with the default inductor backend, by default at 1 thread only:
every compilation takes minutes, so it is measured only when asked for with ``--modes``):
``--warmup`` untimed steps (for compile: the compilation), then ``--steps`` timed steps. A
failure is reported in the table with its first line. Run from the repository root::

    .venv/bin/python -m bench.train --models conf/model/small.yaml --steps 2 --no-write
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.models import fftconv
from asr.models.ctc import load_model_config
from asr.text.tokenizer import CharTokenizer
from asr.train.config import DataConfig, TrainConfig
from bench.engine_run import engine_config, random_letters, run_engine
from bench.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "librispeech-samples"
MODELS = ("conf/model/small.yaml", "conf/model/quartznet_5x5.yaml")
RATE = 16000
CHARS_PER_SECOND = 15.0
MODES = ("direct", "eager", "compile")


def _librispeech(batch_seconds: float, folder: Path) -> list[tuple[str, float]]:
    """(file, seconds) of similar-length LibriSpeech files within the padded budget."""
    from asr.io.audio import audio_info

    files = sorted(folder.rglob("*.flac"))
    if not files:
        return []
    durations = sorted((audio_info(f).duration_s, str(f)) for f in files)
    median = durations[len(durations) // 2][0]
    chosen = [(f, d) for d, f in durations if median <= d][: max(1, int(batch_seconds // median))]
    while len(chosen) > 1 and len(chosen) * chosen[-1][1] > batch_seconds:
        chosen.pop()
    return chosen


def _noise(batch_seconds: float, folder: Path, count: int = 8) -> list[tuple[str, float]]:
    """``count`` noise WAVs from 0.8 to 1 times batch_seconds / count long."""
    from asr.io.audio import save_audio

    rng = np.random.default_rng(0)
    samples = int(batch_seconds / count * RATE)
    out = []
    for i, length in enumerate(np.linspace(0.8 * samples, samples, count).astype(int)):
        path = folder / f"noise{i}.wav"
        save_audio(path, 0.1 * rng.standard_normal(length), RATE)
        out.append((str(path), length / RATE))
    return out


def batch_manifest(batch_seconds: float, folder: Path, samples: Path = SAMPLES) -> tuple[Path, str]:
    """Write ``folder/batch.jsonl``: the utterances of the one batch -> (manifest, description)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = _librispeech(batch_seconds, samples)
    what = f"{len(files)} LibriSpeech utterances"
    if not files:
        files = _noise(batch_seconds, folder)
        what = f"{len(files)} noise utterances"
    rng = random.Random(1)
    utts = [
        Utterance(f, d, random_letters(max(1, int(d * CHARS_PER_SECOND)), rng), utt_id=f"u{i}")
        for i, (f, d) in enumerate(files)
    ]
    write_manifest(folder / "batch.jsonl", utts)
    return folder / "batch.jsonl", what


def train_config(
    model_yaml: Path, manifest: Path, threads: int, mode: str, epochs: int
) -> TrainConfig:
    """A TrainConfig whose every epoch is the manifest's one batch, ``epochs`` of them."""
    utts = read_manifest(manifest)
    budget = len(utts) * max(u.duration for u in utts) + 1.0  # all of them in one batch
    data = DataConfig(str(manifest), max_batch_seconds=budget, num_buckets=1, max_duration_s=budget)
    engine = engine_config(epochs=epochs, threads=threads, compile=mode == "compile")
    return TrainConfig(model=load_model_config(model_yaml), data=data, engine=engine)


def measure(
    model_yaml: Path, manifest: Path, threads: int, mode: str, warmup: int, steps: int
) -> tuple[float, float, int]:
    """(warm-up seconds, audio seconds per second, parameters) of ``steps`` engine steps after
    ``warmup`` ones, in ``mode``."""
    from asr.train.acoustic import AcousticTrainer

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    cfg = train_config(model_yaml, manifest, threads, mode, warmup + steps)
    if mode == "compile":
        torch._dynamo.reset()
    min_span = fftconv.FFT_MIN_SPAN
    if mode == "direct":
        fftconv.FFT_MIN_SPAN = 1 << 30  # no kernel is this long: torch's conv1d throughout
    try:
        run = run_engine(lambda exp: AcousticTrainer(cfg, CharTokenizer(), exp))
    finally:
        fftconv.FFT_MIN_SPAN = min_span
    return run.seconds(warmup), run.rate(skip=warmup), run.params


def run_one(
    config: str, threads: int, mode: str, manifest: Path, args: argparse.Namespace
) -> list[object]:
    """One table row: config, parameters, threads, mode, warm-up s, audio-s/s (or the error)."""
    name = Path(config).stem
    try:
        warm, rate, params = measure(
            ROOT / config, manifest, threads, mode, args.warmup, args.steps
        )
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        print(f"{name} {threads} thread(s) {mode}: FAILED {type(err).__name__}: {first}")
        return [name, "-", threads, mode, "-", f"failed: {type(err).__name__}: {first}"]
    print(f"{name} {threads} thread(s) {mode}: {rate:.2f} audio-s/s (warm-up {warm:.1f} s)")
    return [name, f"{params / 1e6:.2f} M", threads, mode, round(warm, 1), rate]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), help="model YAMLs (repo-relative)")
    p.add_argument("--batch-seconds", type=float, default=60.0, help="padded seconds per batch")
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps (compile happens here)")
    p.add_argument("--modes", nargs="+", default=["direct", "eager"], choices=MODES)
    p.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    p.add_argument(
        "--compile-threads",
        nargs="+",
        type=int,
        default=[1],
        help="thread counts measured with torch.compile (each compiles anew: slow)",
    )
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        manifest, what = batch_manifest(args.batch_seconds, Path(tmp))
        durations = [u.duration for u in read_manifest(manifest)]
        rows = [
            run_one(config, threads, mode, manifest, args)
            for config in args.models
            for threads in args.threads
            for mode in args.modes
            if mode != "compile" or threads in args.compile_threads
        ]
    load_after = os.getloadavg()[0]
    header = ["model", "params", "threads", "mode", "warm-up s", "audio-s/s (engine step)"]
    body = (
        f"`python -m bench.train --batch-seconds {args.batch_seconds:g} --steps {args.steps}"
        f" --warmup {args.warmup} --threads {' '.join(map(str, args.threads))}"
        f" --modes {' '.join(args.modes)}`: the training engine "
        f"(`asr.train.acoustic`) on one batch of {what} ({sum(durations):.1f} s of audio, "
        f"{len(durations) * max(durations):.1f} s padded) that makes every epoch; a step = "
        "loading the batch, forward + CTC loss + backward, AdamW update, as the engine times it "
        f"(its log.jsonl); {args.steps} timed steps after {args.warmup} warm-up step(s) (for "
        "torch.compile the warm-up includes compilation). Mode `direct` runs every depthwise "
        "convolution through torch's conv1d; `eager` and `compile` run the library as shipped "
        "(long depthwise kernels on CPU by FFT, `asr.models.fftconv`). "
        f"Load average (1 min) {load_before:.1f} before, {load_after:.1f} after, "
        f"on {os.cpu_count()} cores shared with other jobs: absolute rates are lower bounds, "
        "ratios within a row pair are the meaningful part.\n\n" + markdown_table(header, rows)
    )
    print(body)
    if not args.no_write:
        write_section("train", "Acoustic-model training throughput on CPU (bench/train.py)", body)


if __name__ == "__main__":
    main()
