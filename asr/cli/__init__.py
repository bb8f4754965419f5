"""The ``asr`` command line: one module per subcommand in this package.

Each module ``asr/cli/<name>.py`` defines ``register(subparsers)``, which adds its sub-parser and
sets ``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
Modules are found by listing this package, so adding a subcommand touches no other file.
Subcommand modules import their heavy dependencies inside ``func`` so ``asr --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from asr import __version__
from asr.errors import AsrError


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="asr",
        description="Conv-CTC speech recognition: features, training, decoding, scoring.",
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def _is_override(arg: str) -> bool:
    """Whether ``arg`` reads as a config override ``KEY=VALUE`` (not an option)."""
    return not arg.startswith("-") and "=" in arg


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asr`` console script; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "overrides_anywhere", False) and all(_is_override(a) for a in extra):
        args.overrides = [*args.overrides, *extra]  # KEY=VALUE split around the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AsrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `asr score ... | head`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 141
