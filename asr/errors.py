"""The base error type: anything the user can fix (bad file, bad config, bad input).

The CLI prints an :class:`AsrError` as one line, ``error: <message>``, and exits with status 2;
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class AsrError(Exception):
    """A user-facing error whose message names the file, line or field at fault."""
