"""``asr download``: fetch corpora with resume, md5 verification and extraction; skip what is done.

Examples::

    asr download librispeech --subsets dev-clean test-clean --dest data/librispeech
    asr download librispeech --subsets train-clean-100 --dest data/ls \
        --mirror https://us.openslr.org/resources/12
    asr download librispeech --subsets dev-clean --lm --dest data/ls --source /mnt/openslr
    asr download yesno --dest data/yesno --source ../shared/data/yesno/waves_yesno.tar.gz
"""

from __future__ import annotations

import argparse

SUBSETS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)


def _add_source_args(parser: argparse.ArgumentParser, default_mirror: str) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--mirror", metavar="URL", help=f"base URL of the files (default {default_mirror})"
    )
    where.add_argument(
        "--source",
        metavar="PATH",
        help="local folder holding the files, or a local tarball, used instead of the network",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``asr download librispeech|yesno``."""
    parser = subparsers.add_parser("download", help="download and extract a corpus")
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)

    ls = corpora.add_parser("librispeech", help="LibriSpeech subsets (openslr 12) and LM files")
    ls.add_argument(
        "--subsets",
        nargs="*",
        default=[],
        choices=SUBSETS,
        metavar="SUBSET",
        help=f"audio subsets: {', '.join(SUBSETS)}",
    )
    ls.add_argument(
        "--lm",
        action="store_true",
        help="also get librispeech-lm-norm.txt.gz and librispeech-vocab.txt "
        "(openslr 11) into DEST/lm",
    )
    ls.add_argument(
        "--lm-mirror", metavar="URL", help="base URL of the LM files (default openslr 11)"
    )
    ls.add_argument(
        "--delete-tarballs", action="store_true", help="delete downloaded tarballs once extracted"
    )
    ls.add_argument(
        "--md5-file",
        metavar="FILE",
        help="md5sum-style file ('<md5>  <name>' lines) overriding the published checksums "
        "of the files it lists (a mirror of repacked files)",
    )
    ls.add_argument("--dest", required=True, help="destination folder")
    _add_source_args(ls, "https://www.openslr.org/resources/12")
    ls.set_defaults(func=_librispeech)

    yn = corpora.add_parser("yesno", help="the Kaldi yesno corpus (openslr 1)")
    yn.add_argument("--dest", required=True, help="destination folder")
    _add_source_args(yn, "https://www.openslr.org/resources/1")
    yn.set_defaults(func=_yesno)


def _librispeech(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from asr.corpora import librispeech
    from asr.io.download import read_md5_file

    if not args.subsets and not args.lm:
        print("error: nothing to download: give --subsets and/or --lm", file=sys.stderr)
        return 2
    progress = not args.no_progress
    md5s = read_md5_file(args.md5_file) if args.md5_file else None
    for subset in args.subsets:
        out = librispeech.download_subset(
            subset,
            args.dest,
            mirror=args.mirror,
            source=args.source,
            progress=progress,
            keep_tarball=not args.delete_tarballs,
            md5_overrides=md5s,
        )
        print(f"{subset}: {out}")
    if args.lm:
        paths = librispeech.download_lm(
            librispeech.LM_RESOURCES,
            Path(args.dest) / "lm",
            mirror=args.lm_mirror,
            source=args.source,
            progress=progress,
            md5_overrides=md5s,
        )
        for path in paths:
            print(f"lm: {path}")
    return 0


def _yesno(args: argparse.Namespace) -> int:
    from asr.corpora.yesno import download_yesno

    out = download_yesno(args.dest, args.mirror, args.source, progress=not args.no_progress)
    print(f"yesno: {out}")
    return 0
