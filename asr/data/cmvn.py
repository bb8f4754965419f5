"""Global CMVN statistics of a front-end's features over a manifest (for ``normalize: global``).

The stats files themselves (format, reading, writing) are :mod:`asr.frontend.cmvn`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch import Tensor

from asr.data.manifest import iter_manifest
from asr.frontend import Frontend, FrontendConfig
from asr.frontend.cmvn import StatsAccumulator, save_cmvn_stats
from asr.io.audio import load_audio


def accumulate_cmvn_stats(
    manifest: str | Path,
    cfg: FrontendConfig,
    out_path: str | Path | None = None,
    max_utterances: int | None = None,
) -> tuple[Tensor, Tensor, int]:
    """Global mean and std of ``cfg``'s base features (no normalisation, no deltas).

    Args:
        manifest: JSONL manifest (:func:`asr.data.manifest.iter_manifest`); offsets and
            durations are honoured.
        cfg: front-end options; its ``normalize`` and ``deltas`` are ignored.
        out_path: if given, the stats are also written there (:func:`save_cmvn_stats`).
        max_utterances: use at most this many utterances (None: all).

    Returns:
        ``mean``, ``std`` ``(dim,)`` float64 and the number of frames.
    """
    plain = dataclasses.replace(cfg, normalize="none", cmvn_stats=None, deltas=0)
    frontend = Frontend(plain).eval()
    acc = StatsAccumulator(plain.base_features)
    for i, utt in enumerate(iter_manifest(manifest)):
        if max_utterances is not None and i >= max_utterances:
            break
        duration = utt.duration if utt.offset > 0 and math.isfinite(utt.duration) else None
        samples, _ = load_audio(utt.audio_filepath, plain.sample_rate_hz, utt.offset, duration)
        wave = torch.from_numpy(samples).float()[None, :]
        with torch.inference_mode():
            feats, lengths = frontend(wave, torch.tensor([wave.shape[1]]))
        acc.add(feats[0, : int(lengths[0])])
    mean, std = acc.result()
    if out_path is not None:
        save_cmvn_stats(out_path, mean, std, acc.frames)
    return mean, std, acc.frames
