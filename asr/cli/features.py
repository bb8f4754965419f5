"""``asr features``: compute front-end features for audio files, folders or manifests.

Writes one ``<utt_id>.safetensors`` (tensor ``features``, shape ``(frames, features)``) per
utterance, an ``index.jsonl`` and the ``frontend.yaml`` used into ``--out``, a new or empty
folder (``--overwrite``: a features folder written before; nothing else is ever written into).
A failing file is reported and skipped; a summary of failures ends the run, and the exit status
is 1 if any failed.

Example::

    asr features --config conf/frontend/kaldi_fbank80.yaml data/train.jsonl wavs/ --out feats/
"""

from __future__ import annotations

import argparse
import sys

# Failures listed on stderr at the end (all are in failures.txt in the output folder).
MAX_LISTED_FAILURES = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``features`` subcommand."""
    parser = subparsers.add_parser(
        "features",
        help="compute front-end features (safetensors per utterance + index.jsonl)",
        description=__doc__.split("\n\n", 1)[1].split("Example")[0].strip(),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder or JSONL")
    parser.add_argument("--config", required=True, help="front-end YAML (conf/frontend/*.yaml)")
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of a features folder written before (only such a folder)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a front-end config field (repeatable)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: automatic, see asr transcribe)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute and store features; 0 when every utterance succeeded, else 1."""
    import torch

    from asr.data.features import FAILURES_NAME, check_features_out, extract_features
    from asr.frontend import Frontend
    from asr.inference.forward import default_threads
    from asr.io.atomic import atomic_write_text

    torch.set_num_threads(args.threads if args.threads > 0 else default_threads())
    out = check_features_out(args.out, args.overwrite)
    frontend = Frontend.from_yaml(args.config, args.overrides)
    result = extract_features(
        frontend,
        args.inputs,
        out,
        progress=not args.quiet and sys.stderr.isatty(),  # no bar redraws in a log file
        overwrite=args.overwrite,
    )
    print(f"wrote {result.written} feature files and {result.index_path}", file=sys.stderr)
    if not result.failures:
        (out / FAILURES_NAME).unlink(missing_ok=True)  # a previous run's, in our own folder
        return 0
    lines = [
        f.message if f.message.startswith(f.source) else f"{f.source}: {f.message}"
        for f in result.failures
    ]
    listed = MAX_LISTED_FAILURES
    try:
        atomic_write_text(out / FAILURES_NAME, "\n".join(lines) + "\n")
    except OSError as err:  # a full disk: all of them here instead
        print(f"error: {out / FAILURES_NAME}: cannot write it ({err.strerror})", file=sys.stderr)
        listed = len(lines)
    print(f"{len(lines)} input(s) failed:", file=sys.stderr)
    for line in lines[:listed]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > listed:
        more = len(lines) - MAX_LISTED_FAILURES
        print(f"  ... and {more} more (see {out / FAILURES_NAME})", file=sys.stderr)
    return 1
