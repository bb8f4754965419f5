"""``asr prepare``: write JSONL manifests for a corpus; existing manifests are kept.

Examples::

    asr prepare librispeech --root data/ls --subsets dev-clean test-clean --out data/manifests
    asr prepare librispeech --root data/synth --subsets train dev --out data/synth --skip-missing
    asr prepare yesno --tarball ../shared/data/yesno/waves_yesno.tar.gz --out data/yesno
    asr prepare ljspeech --root ../shared/data/ljspeech-sample --out data/ljspeech.jsonl
    asr prepare transcribed --root DIR --transcripts ids.tsv \\
        --split egs/synth/local/real_split.tsv \\
        --subset dev --out data/real_dev.jsonl
    asr prepare mix data/synth/train.jsonl data/real_train.jsonl:6 --out data/train_mix.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``asr prepare librispeech|yesno|ljspeech|transcribed|mix``."""
    parser = subparsers.add_parser("prepare", help="write JSONL manifests for a corpus")
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)

    ls = corpora.add_parser("librispeech", help="LibriSpeech-format folders -> <subset>.jsonl")
    ls.add_argument(
        "--root", required=True, help="folder holding LibriSpeech/<subset>/ (or <subset>/)"
    )
    ls.add_argument(
        "--subsets",
        nargs="+",
        required=True,
        metavar="SUBSET",
        help="subset folder names, e.g. dev-clean train-clean-100",
    )
    ls.add_argument("--out", required=True, help="manifest folder")
    ls.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out (and list) utterances whose audio file is missing",
    )
    ls.add_argument("--overwrite", action="store_true", help="rewrite existing manifests")
    ls.add_argument("--no-progress", action="store_true", help="no progress bars")
    ls.set_defaults(func=_librispeech)

    yn = corpora.add_parser("yesno", help="the yesno corpus -> train.jsonl, test.jsonl")
    where = yn.add_mutually_exclusive_group(required=True)
    where.add_argument("--tarball", help="waves_yesno.tar.gz (extracted into OUT)")
    where.add_argument("--root", help="the extracted waves_yesno folder or its parent")
    yn.add_argument("--out", required=True, help="manifest folder")
    yn.add_argument(
        "--split",
        choices=("kaldi", "icefall"),
        default="kaldi",
        help="kaldi: first 30 sorted files train, last 30 test; "
        "icefall: alternate files (default kaldi)",
    )
    yn.add_argument("--overwrite", action="store_true", help="rewrite existing manifests")
    yn.set_defaults(func=_yesno)

    lj = corpora.add_parser("ljspeech", help="a LJSpeech folder (metadata.csv, wavs/) -> JSONL")
    lj.add_argument("--root", required=True, help="folder holding metadata.csv and wavs/")
    lj.add_argument("--out", required=True, help="manifest file to write")
    lj.add_argument("--overwrite", action="store_true", help="rewrite an existing manifest")
    lj.set_defaults(func=_ljspeech)

    tr = corpora.add_parser(
        "transcribed", help="audio files <id>.<ext> + an 'id<TAB>text[<TAB>speaker]' file -> JSONL"
    )
    tr.add_argument(
        "--root", required=True, help="folder holding <id>.flac/.wav/.mp3/.ogg/.opus (any rate)"
    )
    tr.add_argument(
        "--transcripts",
        required=True,
        help="file of 'id<TAB>text[<TAB>speaker[<TAB>...]]' lines (speaker default: the id's "
        "first '-' field)",
    )
    tr.add_argument("--split", help="speaker split list ('speaker<TAB>subset', with a header)")
    tr.add_argument("--subset", help="the subset of --split to keep")
    tr.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="FILE",
        help="leave out these utterance ids (a JSONL manifest's ids, or one id per line)",
    )
    tr.add_argument(
        "--audio-out",
        help="convert files that are not mono FLAC/WAV at --sample-rate into DIR/<id>.flac once "
        "(the manifest names them)",
    )
    tr.add_argument(
        "--sample-rate", type=int, default=16000, help="rate of --audio-out files (def. 16000)"
    )
    tr.add_argument("--out", required=True, help="manifest file to write")
    tr.add_argument("--overwrite", action="store_true", help="rewrite an existing manifest")
    tr.set_defaults(func=_transcribed)

    mix = corpora.add_parser(
        "mix", help="concatenate manifests, oversampling some: IN[:TIMES][@PREFIX]"
    )
    mix.add_argument(
        "inputs",
        nargs="+",
        metavar="IN[:TIMES][@PREFIX]",
        help="manifest, times (def. 1), and a prefix for its utterance and speaker ids (def. none)",
    )
    mix.add_argument("--out", required=True, help="manifest file to write")
    mix.add_argument("--overwrite", action="store_true", help="rewrite an existing manifest")
    mix.set_defaults(func=_mix)


def _librispeech(args: argparse.Namespace) -> int:
    from asr.corpora.librispeech import prepare_subset

    for subset in args.subsets:
        result = prepare_subset(
            args.root,
            subset,
            args.out,
            skip_missing=args.skip_missing,
            overwrite=args.overwrite,
            progress=not args.no_progress and sys.stderr.isatty(),  # no redraws in logs
        )
        state = "exists" if result.was_done else "wrote"
        skipped = f", skipped {len(result.skipped)} missing" if result.skipped else ""
        print(
            f"{subset}: {state} {result.manifest} ({result.num_utterances} utterances, "
            f"{result.hours:.2f} h{skipped})"
        )
    return 0


def _yesno(args: argparse.Namespace) -> int:
    from asr.corpora.yesno import download_yesno, prepare_yesno

    root = args.root or download_yesno(args.out, source=args.tarball, progress=False)
    paths = prepare_yesno(root, args.out, split=args.split, overwrite=args.overwrite)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _transcribed(args: argparse.Namespace) -> int:
    from asr.corpora.transcribed import prepare_transcribed
    from asr.data.manifest import total_duration

    utts = prepare_transcribed(
        args.root,
        args.transcripts,
        args.out,
        args.split,
        args.subset,
        args.overwrite,
        exclude=args.exclude,
        audio_out=args.audio_out,
        sample_rate=args.sample_rate,
    )
    if not utts:
        print(f"{args.out}: exists (kept; --overwrite rewrites it)")
        return 0
    speakers = len({utt.speaker for utt in utts})
    hours = total_duration(utts) / 3600
    print(f"{args.out}: {len(utts)} utterances, {speakers} speakers, {hours:.2f} h")
    return 0


def _mix(args: argparse.Namespace) -> int:
    from asr.data.manifest import mix_manifests, parse_mix_input, total_duration
    from asr.io.outputs import check_output_file

    if Path(args.out).exists() and not args.overwrite:
        print(f"{args.out}: exists (kept; --overwrite rewrites it)")
        return 0
    mix = [parse_mix_input(spec) for spec in args.inputs]
    inputs, prefixes = [(m.path, m.times) for m in mix], [m.prefix for m in mix]
    check_output_file(args.out, overwrite=True, inputs=[path for path, _ in inputs])
    utts = mix_manifests(inputs, args.out, prefixes)
    print(f"{args.out}: {len(utts)} utterances, {total_duration(utts) / 3600:.2f} h")
    return 0


def _ljspeech(args: argparse.Namespace) -> int:
    from asr.corpora.ljspeech import prepare_ljspeech
    from asr.data.manifest import read_manifest, total_duration

    path = prepare_ljspeech(args.root, args.out, overwrite=args.overwrite)
    utts = read_manifest(path)
    print(f"ljspeech: {path} ({len(utts)} utterances, {total_duration(utts) / 3600:.2f} h)")
    return 0
