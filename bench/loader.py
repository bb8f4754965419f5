"""Training loader throughput vs what the small model consumes, in audio-seconds per second.

Data: the real LibriSpeech FLACs in ``../shared/data/librispeech-samples`` (16 kHz; no
transcripts, so every utterance gets the dummy text "A"), as a manifest built in memory. Noise
for the additive-noise augmentation is babble: 20 of the test-other files.

Loader side, for 0, 1 and 2 DataLoader workers: :func:`asr.data.dataset.make_dataloader` over a
:class:`DynamicBucketSampler` with speed perturbation (0.9/1.0/1.1), babble noise (5-25 dB SNR),
synthetic reverberation (RT60 0.2-0.8 s) on every utterance; in the training process the
Kaldi 80-bin fbank front-end (``conf/frontend/kaldi_fbank80.yaml``, training mode) and
SpecAugment (2 x F=27 frequency masks, 10 adaptive time masks of up to 5 %) run on each batch,
as they do inside the model's forward pass. Reported: audio seconds delivered per wall second
(first batch excluded: worker start-up), and the share of that time spent waiting for the loader.

Model side: the training engine (:class:`asr.train.acoustic.AcousticTrainer` on
:mod:`asr.train.engine`, through bench/engine_run.py) training ``conf/model/small.yaml`` on the same
utterances, budget and augmentation with this loader in its own process (0 workers): per step
loading, augmentation, forward + CTC loss + backward and the AdamW update, as the engine logs it;
audio seconds per second over 3 steps after one warm-up step.

All torch work on one thread (``torch.set_num_threads(1)``), workers one thread each. Run:
``.venv/bin/python -m bench.loader`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from asr.data.augment import AugmentConfig, SpecAugment
from asr.data.dataset import SpeechDataset, make_dataloader
from asr.data.manifest import Utterance, write_manifest
from asr.data.sampler import DynamicBucketSampler
from asr.io.audio import audio_info
from asr.models.ctc import load_model_config
from asr.train.config import DataConfig, TrainConfig
from bench.engine_run import engine_config, run_engine
from bench.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "librispeech-samples"
FBANK = ROOT / "conf" / "frontend" / "kaldi_fbank80.yaml"
SMALL_MODEL = ROOT / "conf" / "model" / "small.yaml"
RATE = 16000


class DummyTokenizer:
    """Every transcript is "A": token 3 of the character vocabulary."""

    def encode(self, text: str) -> list[int]:
        return [3] * len(text)


def build_utterances(root: Path) -> tuple[list[Utterance], list[str]]:
    """All FLACs as utterances with text "A", and 20 test-other files to use as babble noise."""
    files = sorted(root.rglob("*.flac"))
    if not files:
        raise SystemExit(f"no FLAC files under {root}")
    utts = [Utterance(str(f), audio_info(f).duration_s, "A", utt_id=f.stem) for f in files]
    noise = [str(f) for f in files if "test-other" in str(f)][:20]
    return utts, noise


def augment_config(noise_files: list[str]) -> AugmentConfig:
    return AugmentConfig(
        speed_factors=(0.9, 1.0, 1.1),
        noise_prob=1.0,
        noise_files=tuple(noise_files),
        reverb_prob=1.0,
        spec_freq_masks=2,
        spec_freq_mask_width=27,
        spec_time_masks=10,
        spec_time_masks_per_frame=0.05,
        spec_time_mask_ratio=0.05,
    )


def frontend_module() -> torch.nn.Module | None:
    try:
        from asr.frontend import Frontend
    except ImportError:
        return None
    return Frontend.from_yaml(FBANK).train()


def measure_loader(
    utts: list[Utterance], cfg: AugmentConfig, workers: int, batch_s: float, max_audio_s: float
) -> dict[str, float]:
    """Iterate the training loader (+ front-end + SpecAugment) until ``max_audio_s`` of audio."""
    dataset = SpeechDataset(utts, DummyTokenizer(), RATE, augment=cfg, seed=0)
    sampler = DynamicBucketSampler(dataset.durations, batch_s, seed=0)
    loader = make_dataloader(dataset, sampler, num_workers=workers, pin_memory=False)
    frontend = frontend_module()
    spec = SpecAugment.from_config(cfg).train()
    audio = wait = compute = 0.0
    start = None
    tick = time.perf_counter()
    for batch in loader:
        got = time.perf_counter()
        if start is not None:
            wait += got - tick
        if frontend is not None:
            with torch.no_grad():
                feats, frames = frontend(batch.waveforms, batch.lengths)
                spec(feats, frames)
        tick = time.perf_counter()
        if start is None:  # first batch: worker start-up, not counted
            start = tick
            continue
        compute += tick - got
        audio += batch.audio_seconds
        if audio >= max_audio_s:
            break
    wall = time.perf_counter() - start
    return {"audio_s": audio, "wall_s": wall, "wait_s": wait, "compute_s": compute}


def measure_model(
    utts: list[Utterance], cfg: AugmentConfig, batch_s: float, steps: int = 3
) -> dict[str, float]:
    """Audio seconds per second of the training engine on the small model with this loader
    (0 workers, the same augmentation): ``steps`` steps after one warm-up step."""
    from asr.text.tokenizer import CharTokenizer
    from asr.train.acoustic import AcousticTrainer

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        manifest = Path(tmp) / "train.jsonl"
        write_manifest(manifest, utts)
        data = DataConfig(str(manifest), max_batch_seconds=batch_s, max_duration_s=1e9, augment=cfg)
        engine = engine_config(max_steps=steps + 1, epochs=1_000_000, threads=1)
        train = TrainConfig(model=load_model_config(SMALL_MODEL), data=data, engine=engine)
        run = run_engine(lambda exp: AcousticTrainer(train, CharTokenizer(), exp), Path(tmp) / "x")
    timed = run.steps[1:]
    audio, wall = sum(s.work for s in timed), sum(s.seconds for s in timed)
    return {"audio_s": audio, "wall_s": wall, "params": run.params, "steps": len(timed)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLES)
    parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    parser.add_argument("--batch-seconds", type=float, default=120.0, help="padded s per batch")
    parser.add_argument("--max-audio-s", type=float, default=900.0, help="audio per measurement")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    utts, noise = build_utterances(args.data)
    cfg = augment_config(noise)
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        r = measure_loader(utts, cfg, workers, args.batch_seconds, args.max_audio_s)
        rate = r["audio_s"] / r["wall_s"]
        rows.append(
            [workers, round(r["audio_s"], 1), rate, f"{100 * r['wait_s'] / r['wall_s']:.0f} %"]
        )
        print(f"workers={workers}: {rate:.1f} audio-s/s ({r})", flush=True)
    model = measure_model(utts, cfg, args.batch_seconds)
    fe = (
        "Kaldi fbank80 + SpecAugment" if frontend_module() is not None else "no front-end (missing)"
    )
    body = (
        f"Loader: {len(utts)} LibriSpeech FLACs ({sum(u.duration for u in utts) / 3600:.2f} h), "
        f"batches of <= {args.batch_seconds:.0f} padded s, speed 0.9/1.0/1.1 + babble noise "
        f"5-25 dB + synthetic reverb (RT60 0.2-0.8 s) on every utterance, then {fe} in the "
        "training process; first batch (start-up) excluded. One torch thread per process. "
        f"Load average at start {load_start:.1f} on {os.cpu_count()} cores (a shared machine: "
        "with more loaded cores than free ones, extra workers cannot run in parallel).\n\n"
        + markdown_table(
            ["workers", "audio s measured", "audio-s/s delivered", "time waiting on loader"], rows
        )
    )
    m_rate = model["audio_s"] / model["wall_s"]
    body += (
        f"\n\nThe training engine (`asr.train.acoustic`, this loader with 0 workers) trains the "
        f"small model (`conf/model/small.yaml`, {model['params'] / 1e6:.2f} M parameters) at "
        f"{m_rate:.1f} audio-s/s (loading + augmentation + forward + CTC loss + backward + AdamW, "
        f"{model['audio_s']:.0f} s of audio over {model['steps']} steps after one warm-up step)."
    )
    print(f"model: {m_rate:.1f} audio-s/s ({model})")
    print(body)
    if not args.no_write:
        write_section("loader", "Training loader throughput (bench/loader.py)", body)


if __name__ == "__main__":
    main()
