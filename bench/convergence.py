"""How fast the acoustic model leaves the CTC plateau, per weight initialisation and optimiser.

The same model config, utterances, batches and seed for every combination; only the encoder's
``init`` and the optimiser change. Features are computed once (the model's front-end, eval mode);
each combination then trains ``--steps`` updates of ``--batch-utts`` utterances (shortest-first
buckets, shuffled with a fixed seed), with a linear warm-up over the first 50 updates, a constant
learning rate after it and gradient clipping at 5. The table gives the mean per-token CTC loss
(nats) over each window of 50 updates: ~2.85 is the plateau (blanks plus letter frequencies).

The anchor is NeMo's default initialisation (``xavier_uniform``), which our encoder reproduces.

Run from the repository root (needs a corpus; the synthetic recipe's is used below)::

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.convergence \\
        --model egs/synth/conf/train.yaml --manifest /work/synth10/manifests/train.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from asr import config as config_io
from asr.data.manifest import read_manifest
from asr.models.ctc import CTCModel, ModelConfig, ctc_loss, load_model_config
from asr.text.tokenizer import load_tokenizer
from asr.train.config import load_train_config
from asr.train.optim import OptimConfig, build_optimizer, lr_at, set_lr
from bench.report import markdown_table, write_section

WARMUP_STEPS = 50
WINDOW_STEPS = 50


def load_model_section(path: Path) -> ModelConfig:
    """A model YAML, or the ``model:`` section of a training YAML."""
    if "model" in config_io.read_yaml(path):
        return load_train_config(path).model
    return load_model_config(path)


def load_features(
    cfg: ModelConfig, manifest: Path, tokenizer_dir: Path, count: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(features (frames, feats), token ids) for the first ``count`` utterances."""
    from asr.io.audio import load_audio

    tokenizer = load_tokenizer(tokenizer_dir)
    frontend = CTCModel(cfg, tokenizer.vocab_size).frontend.eval()
    data = []
    for utt in read_manifest(manifest)[:count]:
        wave = torch.from_numpy(load_audio(utt.audio_filepath, cfg.frontend.sample_rate_hz)[0])
        with torch.no_grad():
            feats, _ = frontend(wave[None], torch.tensor([len(wave)]))
        data.append((feats[0], torch.tensor(tokenizer.encode(utt.text), dtype=torch.long)))
    return data


def make_batches(
    data: list[tuple[torch.Tensor, torch.Tensor]], batch_utts: int, steps: int
) -> list[list[int]]:
    """``steps`` batches of similar-length utterances, shuffled by a fixed seed."""
    order = sorted(range(len(data)), key=lambda i: data[i][0].shape[0])
    buckets = [order[i : i + batch_utts] for i in range(0, len(order), batch_utts)]
    rng = np.random.default_rng(0)
    batches: list[list[int]] = []
    while len(batches) < steps:
        batches += [buckets[i] for i in rng.permutation(len(buckets))]
    return batches[:steps]


def train_curve(
    cfg: ModelConfig,
    vocab_size: int,
    optim: OptimConfig,
    data: list[tuple[torch.Tensor, torch.Tensor]],
    batches: list[list[int]],
) -> list[float]:
    """Window-mean losses for one model config and optimiser."""
    torch.manual_seed(0)
    model = CTCModel(cfg, vocab_size).train()
    optimizer = build_optimizer(model.parameters(), optim)
    losses: list[float] = []
    for step, batch in enumerate(batches):
        set_lr(optimizer, lr_at(step, len(batches), optim))
        feats = torch.nn.utils.rnn.pad_sequence([data[i][0] for i in batch], batch_first=True)
        lengths = torch.tensor([data[i][0].shape[0] for i in batch])
        targets = torch.nn.utils.rnn.pad_sequence([data[i][1] for i in batch], batch_first=True)
        target_lengths = torch.tensor([len(data[i][1]) for i in batch])
        log_probs, out_lengths = model.forward_features(feats, lengths)
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
    return [
        float(np.mean(losses[i : i + WINDOW_STEPS])) for i in range(0, len(losses), WINDOW_STEPS)
    ]


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


def main() -> None:
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
    args = parser.parse_args()
    tokenizer_dir = args.tokenizer or args.manifest.parent.parent / "lang_char"
    base = load_model_section(args.model)
    data = load_features(base, args.manifest, tokenizer_dir, args.utterances)
    vocab_size = load_tokenizer(tokenizer_dir).vocab_size
    batches = make_batches(data, args.batch_utts, args.steps)
    rows = []
    for init in args.inits.split(","):
        cfg = dataclasses.replace(base, encoder=dataclasses.replace(base.encoder, init=init))
        for spec in args.optimizers.split(","):
            windows = train_curve(cfg, vocab_size, parse_optimizer(spec), data, batches)
            rows.append([init, spec, *(f"{w:.2f}" for w in windows)])
            print(rows[-1], flush=True)
    spans = [
        f"{i + 1}-{min(args.steps, i + WINDOW_STEPS)}" for i in range(0, args.steps, WINDOW_STEPS)
    ]
    header = ["init", "optimiser", *(f"loss {span}" for span in spans)]
    body = (
        f"{args.model}, first {len(data)} utterances of {args.manifest}, batches of "
        f"{args.batch_utts}, {torch.get_num_threads()} thread(s); mean per-token CTC loss (nats) "
        f"per window of {WINDOW_STEPS} updates.\n\n" + markdown_table(header, rows)
    )
    print(body)
    if not args.no_write:
        write_section("convergence", "Acoustic model: leaving the CTC plateau", body)


if __name__ == "__main__":
    main()
