"""``asr train-lm``: train an LSTM language model on streamed text (single process or torchrun)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-lm",
        help="train an LSTM language model on text files",
        description="Train a token-level LSTM LM over the acoustic model's tokenizer on plain or "
        "gzipped text, streamed (never loaded whole). Multi-GPU: torchrun --nproc_per_node=N "
        "-m asr train-lm ... The exported LM goes to EXP/lm (or --export).",
    )
    p.add_argument("--config", required=True, help="LM training YAML (conf/lm/*.yaml)")
    p.add_argument(
        "--tokenizer", required=True, help="tokenizer folder, or 'char' for the default 29 chars"
    )
    p.add_argument("--text", nargs="+", required=True, help="training text files (.txt/.gz)")
    p.add_argument(
        "--valid-text", nargs="*", default=[], help="validation text files (default: a hashed "
        "share of the training sentences, data.valid_per_mille)"
    )  # fmt: skip
    p.add_argument("--exp", required=True, help="experiment folder (checkpoints, logs)")
    p.add_argument("--export", default=None, help="folder for the exported LM (default EXP/lm)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--overwrite", action="store_true", help="start over in an EXP that holds a previous "
        "run (removes its checkpoints/, log.jsonl, tensorboard/, lm/, config.yaml, tokenizer/, "
        "curves.png; nothing else) and replace an LM folder at --export"
    )  # fmt: skip
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=2e-3 "
        "(anywhere on the line, before or after the options)"
    )  # fmt: skip
    p.set_defaults(func=run, overrides_anywhere=True)


def run(args: argparse.Namespace) -> int:
    from asr.train.config import load_lm_train_config
    from asr.train.lm import train_lm

    cfg = load_lm_train_config(args.config, args.overrides)
    train_lm(cfg, args.tokenizer, args.text, args.exp, args.valid_text, args.resume,
             args.export, overwrite=args.overwrite)  # fmt: skip
    return 0
