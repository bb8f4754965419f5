"""Batched greedy (best-path) CTC decoding; it lives in :mod:`asr.models.ctc` (training uses it)."""

from asr.models.ctc import GreedyHypothesis, greedy_decode  # noqa: F401
