"""How fast the acoustic model leaves the CTC plateau, per weight initialisation and optimiser.

The same model config, utterances, batches and seed for every combination; only the encoder's
``init`` and the optimiser change. Each combination is a run of the project's trainer
(:class:`asr.train.acoustic.AcousticTrainer` on :mod:`asr.train.engine`, through
bench/engine_run.py) for ``--steps`` updates of up to ``--batch-utts`` utterances (the engine's
duration-bucketed sampler, seeded by ``engine.seed``, so every run sees the same batches), with a
linear warm-up over the first 50 updates, a constant learning rate after it and gradient clipping
at 5 (``engine.grad_clip``), no augmentation. The engine logs every update's loss; the table gives
the mean per-token CTC loss (nats) over each window of 50 updates: ~2.85 is the plateau (blanks
plus letter frequencies).

The anchor is NeMo's default initialisation (``xavier_uniform``), which our encoder reproduces.

Run from the repository root (needs a corpus; the synthetic recipe's is used below)::

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.convergence \\
        --model egs/synth/conf/train.yaml --manifest /work/synth10/manifests/train.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr import config as config_io
from asr.data.manifest import read_manifest, write_manifest
from asr.models.ctc import ModelConfig, load_model_config
from asr.text.tokenizer import Tokenizer, load_tokenizer
from asr.train.config import DataConfig, TrainConfig, load_train_config
from asr.train.optim import OptimConfig
from bench.engine_run import engine_config, run_engine
from bench.report import markdown_table, write_section

WARMUP_STEPS = 50
WINDOW_STEPS = 50
GRAD_CLIP = 5.0


def load_model_section(path: Path) -> ModelConfig:
    """A model YAML, or the ``model:`` section of a training YAML."""
    if "model" in config_io.read_yaml(path):
        return load_train_config(path).model
    return load_model_config(path)


def first_utterances(manifest: Path, count: int, out: Path) -> Path:
    """Write the first ``count`` utterances of ``manifest`` to ``out`` (all of them are used)."""
    write_manifest(out, read_manifest(manifest)[:count])
    return out


def train_curve(
    cfg: ModelConfig,
    tokenizer: Tokenizer,
    optim: OptimConfig,
    manifest: Path,
    batch_utts: int,
    steps: int,
    window: int = WINDOW_STEPS,
) -> list[float]:
    """Window-mean losses of ``steps`` engine updates for one model config and optimiser."""
    from asr.train.acoustic import AcousticTrainer

    data = DataConfig(
        str(manifest), max_batch_seconds=1e9, max_batch_size=batch_utts, max_duration_s=1e9
    )
    engine = engine_config(max_steps=steps, epochs=1_000_000, grad_clip=GRAD_CLIP, seed=0)
    train = TrainConfig(model=cfg, data=data, optim=optim, engine=engine)
    losses = run_engine(lambda exp: AcousticTrainer(train, tokenizer, exp)).losses()
    return [float(np.mean(losses[i : i + window])) for i in range(0, len(losses), window)]


def parse_optimizer(spec: str) -> OptimConfig:
    """``adamw:1e-3`` or ``novograd:1e-2`` (NovoGrad with QuartzNet's betas 0.95, 0.5)."""
    name, _, lr = spec.partition(":")
    if name not in ("adamw", "novograd") or not lr:
        raise SystemExit(f"error: --optimizers: expected adamw:LR or novograd:LR, got {spec!r}")
    betas = (0.95, 0.5) if name == "novograd" else (0.9, 0.98)
    return OptimConfig(
        name=name,
        lr=float(lr),
        betas=betas,
        weight_decay=1e-3,
        schedule="constant",
        warmup_steps=WARMUP_STEPS,
    )


def curves(args: argparse.Namespace, tokenizer: Tokenizer, manifest: Path) -> list[list[object]]:
    """One table row per init x optimiser: init, optimiser, window-mean losses."""
    base = load_model_section(args.model)
    rows: list[list[object]] = []
    for init in args.inits.split(","):
        cfg = dataclasses.replace(base, encoder=dataclasses.replace(base.encoder, init=init))
        for spec in args.optimizers.split(","):
            optim = parse_optimizer(spec)
            windows = train_curve(cfg, tokenizer, optim, manifest, args.batch_utts, args.steps)
            rows.append([init, spec, *(f"{w:.2f}" for w in windows)])
            print(rows[-1], flush=True)
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("egs/synth/conf/train.yaml"))
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="default: <manifest folder>/../lang_char"
    )
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-utts", type=int, default=6)
    parser.add_argument("--inits", default="xavier_uniform,kaiming_uniform")
    parser.add_argument("--optimizers", default="adamw:1e-3,novograd:1e-2")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    tokenizer = load_tokenizer(args.tokenizer or args.manifest.parent.parent / "lang_char")
    with tempfile.TemporaryDirectory(prefix="bench-convergence-") as tmp:
        manifest = first_utterances(args.manifest, args.utterances, Path(tmp) / "train.jsonl")
        count = len(read_manifest(manifest))
        rows = curves(args, tokenizer, manifest)
    spans = [
        f"{i + 1}-{min(args.steps, i + WINDOW_STEPS)}" for i in range(0, args.steps, WINDOW_STEPS)
    ]
    header = ["init", "optimiser", *(f"loss {span}" for span in spans)]
    body = (
        f"{args.model}, first {count} utterances of {args.manifest}, batches of "
        f"{args.batch_utts}, {torch.get_num_threads()} thread(s), trained by the engine "
        f"(`asr.train.acoustic`); mean per-token CTC loss (nats) per window of {WINDOW_STEPS} "
        "updates.\n\n" + markdown_table(header, rows)
    )
    print(body)
    if not args.no_write:
        write_section("convergence", "Acoustic model: leaving the CTC plateau", body)


if __name__ == "__main__":
    main()
