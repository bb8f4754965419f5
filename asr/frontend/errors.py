"""The front-end's error type (below both the module and the CMVN stats files, which raise it)."""

from __future__ import annotations

from asr.errors import AsrError


class FrontendError(AsrError):
    """Bad input to the front-end (wrong shapes, lengths out of range, missing CMVN stats)."""
