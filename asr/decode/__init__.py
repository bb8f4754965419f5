"""Decoding CTC outputs: batched greedy decoding (``asr.decode.greedy``); beam search lives
beside it."""

from asr.decode.greedy import GreedyHypothesis, greedy_decode

__all__ = ["GreedyHypothesis", "greedy_decode"]
