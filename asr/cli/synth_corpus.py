"""``asr synth-corpus``: render a LibriSpeech-format corpus of novels read by system TTS voices.

Examples::

    asr synth-corpus --config egs/synth/conf/corpus.yaml --out data/synth --jobs 2
    asr synth-corpus --config egs/synth/conf/corpus.yaml --out data/synth --hours-train 2 \\
        --set noise_prob=0.5
    asr synth-corpus --list-voices

Interrupted builds resume: run the same command again.
"""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``asr synth-corpus``."""
    parser = subparsers.add_parser(
        "synth-corpus",
        help="render a LibriSpeech-format corpus with system text-to-speech voices",
        description="Novels read aloud by espeak-ng/flite/festival(/mbrola) voices, written as "
        "LibriSpeech/<subset>/<speaker>/<chapter>/*.flac + trans.txt + SPEAKERS.TXT.",
    )
    parser.add_argument("--config", help="corpus YAML (default: built-in defaults)")
    parser.add_argument("--out", help="output folder (LibriSpeech/ and the split lists go here)")
    for subset in ("train", "dev", "test"):
        parser.add_argument(
            f"--hours-{subset}", type=float, help=f"target hours of {subset} (overrides config)"
        )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel renderers (default: CPUs)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="write novel_split.tsv and voices.tsv only"
    )
    parser.add_argument("--list-voices", action="store_true", help="list installed voices, exit")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from asr.corpora.synth import build_corpus
    from asr.corpora.synth_config import load_config, with_hours
    from asr.corpora.tts import available_voices
    from asr.errors import AsrError

    if args.list_voices:
        for voice in available_voices():
            print(f"{voice.base_id}\t{voice.sex}\t{voice.group_id}")
        return 0
    if not args.out:
        raise AsrError("synth-corpus: --out is required")
    if args.jobs < 1:
        raise AsrError(f"synth-corpus: --jobs must be >= 1, got {args.jobs}")
    cfg = load_config(args.config, args.set)
    cfg = with_hours(
        cfg, hours_train=args.hours_train, hours_dev=args.hours_dev, hours_test=args.hours_test
    )
    summary = build_corpus(cfg, args.out, jobs=args.jobs, render=not args.plan_only)
    if args.plan_only:
        print(f"wrote {args.out}/novel_split.tsv and {args.out}/voices.tsv")
        return 0
    for subset in (cfg.subset_train, cfg.subset_dev, cfg.subset_test):
        entry = summary.get(subset, {"utterances": 0, "hours": 0.0, "speakers": 0})
        print(
            f"{subset}: {entry['utterances']} utterances, {entry['hours']:.2f} h, "
            f"{entry['speakers']} speakers"
        )
    rate = summary["new_s"] / max(summary["wall_s"], 1e-9)
    print(
        f"rendered {summary['new_s'] / 3600:.2f} h in {summary['wall_s']:.0f} s "
        f"({rate:.1f} s of speech per second, {args.jobs} jobs); "
        f"{int(summary['rejected'])} rejected (see {args.out}/rejected.tsv)"
    )
    return 0
