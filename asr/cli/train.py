"""``asr train``: train a CTC acoustic model (single process or under torchrun)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CTC acoustic model",
        description="Train a CTC acoustic model. Multi-GPU: torchrun --nproc_per_node=N "
        "-m asr train ... (every rank reads the same config; only rank 0 writes).",
    )
    p.add_argument("--config", required=True, help="training YAML (see asr/train/config.py)")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (asr tokenizer ...)")
    p.add_argument("--exp", required=True, help="experiment folder (checkpoints, logs, model/)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--overwrite", action="store_true", help="start over in an EXP that holds a previous "
        "run: removes its checkpoints/, log.jsonl, tensorboard/, model/, config.yaml, tokenizer/ "
        "and curves.png (nothing else; refused if they hold other files)"
    )  # fmt: skip
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=3e-3 "
        "(anywhere on the line, before or after the options)"
    )  # fmt: skip
    p.set_defaults(func=run, overrides_anywhere=True)


def run(args: argparse.Namespace) -> int:
    from asr.train.acoustic import train
    from asr.train.config import load_train_config

    cfg = load_train_config(args.config, args.overrides)
    train(cfg, args.tokenizer, args.exp, resume=args.resume, overwrite=args.overwrite)
    return 0
