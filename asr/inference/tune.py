"""Tune the LM weight ``alpha`` and length bonus ``beta`` on a development set.

The acoustic model runs once: its log-probabilities for every utterance are cached in a
safetensors file (``emissions.safetensors``: all frames concatenated plus offsets; the model,
manifest and references in its metadata), reused when the model and manifest are unchanged.
The search is a full grid, or a coordinate search (alpha with beta fixed, then beta with the best
alpha, repeated) that needs far fewer decodes. Results: ``tune.md`` (WER table), ``tune.json``
and ``decode.yaml`` (the :class:`BeamSearchConfig` with the best weights, for
``asr decode --decode-config``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from asr import config as config_io
from asr.decode.beam import BeamHypothesis
from asr.errors import AsrError
from asr.io.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from asr.decode.beam import BeamSearchConfig
    from asr.models.ctc import CTCModel


class WeightedDecoder(Protocol):
    """A beam decoder whose LM weight and length bonus can be set (``beam`` and ``kenlm``)."""

    cfg: BeamSearchConfig  # its search options

    def decode(self, log_probs: Tensor, lengths: Tensor) -> Sequence[BeamHypothesis]:
        """``(batch, frames, vocab)`` and ``(batch,)`` -> the best hypothesis per row."""

    def with_weights(self, alpha: float, beta: float) -> WeightedDecoder:
        """The decoder with LM weight ``alpha`` and length bonus ``beta``."""


class TuneError(AsrError):
    """Tuning cannot run: bad grids, an unreadable emission cache, nothing to decode."""


@dataclasses.dataclass(frozen=True)
class Emissions:
    """Cached acoustic model outputs of a manifest."""

    log_probs: list[Tensor]  # per utterance (frames, vocab) float32
    texts: list[str]  # reference transcripts
    durations: list[float]  # seconds
    key: str  # model + manifest identity (paths, sizes, modification times)


def _identity(*paths: str | Path) -> str:
    parts = []
    for p in paths:
        p = Path(p)
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        stats = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files if f.is_file()]
        parts.append(f"{p.resolve()}:{stats}")
    return "|".join(parts)


def save_emissions(path: str | Path, em: Emissions) -> None:
    """Write ``em`` as one safetensors file, atomically."""
    lengths = torch.tensor([len(x) for x in em.log_probs], dtype=torch.long)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    meta = {"texts": json.dumps(em.texts), "durations": json.dumps(em.durations), "key": em.key}
    tensors = {"log_probs": torch.cat(em.log_probs).float().contiguous(), "offsets": offsets}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_emissions(path: str | Path) -> Emissions:
    """Read a file written by :func:`save_emissions`."""
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata()
        offsets = tensors["offsets"].tolist()
        lp = tensors["log_probs"]
        rows = [lp[a:b] for a, b in itertools.pairwise(offsets)]
        return Emissions(
            rows, json.loads(meta["texts"]), json.loads(meta["durations"]), meta["key"]
        )
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise TuneError(f"{path}: not a readable emission cache ({err})") from None


def compute_emissions(
    model: CTCModel,
    model_path: str | Path,
    manifest: str | Path,
    cache: str | Path | None = None,
    batch_seconds: float = 300.0,
) -> Emissions:
    """Log-probabilities of every utterance of ``manifest`` (from ``cache`` when up to date).

    Args:
        model: the acoustic model, loaded once by the caller (:func:`asr.api.load_model`).
        model_path: the folder it was loaded from (the cache's identity with the manifest).
        manifest: the development manifest.
        cache: emission cache file (None: no cache).
        batch_seconds: padded audio seconds per batch.
    Returns:
        per utterance its ``(frames, vocab)`` float32 log-probs, in manifest order.
    """
    from asr.data.inputs import manifest_items
    from asr.inference.forward import duration_batches, iter_emissions

    key = _identity(model_path, manifest)
    if cache is not None and Path(cache).is_file():
        em = load_emissions(cache)
        if em.key == key:
            return em
    items = manifest_items(manifest)
    if not items:
        raise TuneError(f"{manifest}: no utterances")
    durations = [item.duration_s or 0.0 for item in items]
    batches = ([(i, items[i]) for i in b] for b in duration_batches(durations, batch_seconds))
    rows: list[Tensor | None] = [None] * len(items)
    for batch in iter_emissions(model, batches):
        for _, error in batch.failures:
            raise TuneError(f"cannot tune on {manifest}: {error}")
        for row, index in enumerate(batch.keys):
            rows[index] = batch.utterance(row).clone()
    em = Emissions(
        [r for r in rows if r is not None],
        [item.text or "" for item in items],
        durations,
        key,
    )
    if cache is not None:
        save_emissions(cache, em)
    return em


def decode_emissions(
    decoder: WeightedDecoder, em: Emissions, batch_size: int = 32
) -> list[BeamHypothesis]:
    """Best hypothesis per utterance, decoding ``batch_size`` padded utterances at a time."""
    order = sorted(range(len(em.log_probs)), key=lambda i: -len(em.log_probs[i]))
    results: dict[int, BeamHypothesis] = {}
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        rows = [em.log_probs[i] for i in idx]
        lengths = torch.tensor([len(r) for r in rows])
        padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        for i, hyp in zip(idx, decoder.decode(padded, lengths)):
            results[i] = hyp
    return [results[i] for i in range(len(em.log_probs))]


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER (fraction) with :func:`asr.scoring.wer.score`, both sides normalised when their
    conventions differ, as ``asr score`` does (:func:`asr.scoring.convention.comparable`)."""
    from asr.scoring.convention import comparable
    from asr.scoring.wer import score

    refs, hyps, _ = comparable(list(refs), list(hyps))
    return score(refs, hyps).wer


def tune_weights(
    decoder: WeightedDecoder,
    em: Emissions,
    alphas: Sequence[float],
    betas: Sequence[float],
    method: Literal["grid", "coordinate"] = "grid",
    rounds: int = 2,
) -> list[dict[str, float]]:
    """WER of (alpha, beta) pairs; rows ``{"alpha", "beta", "wer"}`` in the order tried."""
    if not alphas or not betas:
        raise TuneError("need at least one alpha and one beta")
    tried: dict[tuple[float, float], float] = {}

    def wer(a: float, b: float) -> float:
        if (a, b) not in tried:
            hyps = decode_emissions(decoder.with_weights(a, b), em)
            tried[(a, b)] = word_error_rate(em.texts, [h.text or "" for h in hyps])
        return tried[(a, b)]

    if method == "grid":
        for a in alphas:
            for b in betas:
                wer(a, b)
    elif method == "coordinate":
        best_b = betas[len(betas) // 2]
        best_a = alphas[0]
        for _ in range(rounds):
            best_a = min(alphas, key=lambda a: (wer(a, best_b), a))
            best_b = min(betas, key=lambda b: (wer(best_a, b), b))
    else:
        raise TuneError(f"method must be 'grid' or 'coordinate', got {method!r}")
    return [{"alpha": a, "beta": b, "wer": w} for (a, b), w in tried.items()]


def result_files(out_dir: str | Path) -> list[Path]:
    """What :func:`write_results` writes: ``tune.md``, ``tune.json`` and ``decode.yaml``."""
    return [Path(out_dir) / name for name in ("tune.md", "tune.json", "decode.yaml")]


def write_results(
    out_dir: str | Path, rows: list[dict[str, float]], decoder: WeightedDecoder, info: dict
) -> dict[str, float]:
    """Write :func:`result_files` (the table, every row as JSON, the best beam search config);
    returns the best row."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table_md, rows_json, config_yaml = result_files(out_dir)
    best = min(rows, key=lambda r: (r["wer"], r["alpha"], r["beta"]))
    lines = ["| alpha | beta | WER % |", "|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["alpha"], r["beta"])):
        lines.append(f"| {r['alpha']:g} | {r['beta']:g} | {100 * r['wer']:.2f} |")
    table = "\n".join(lines)
    head = "\n".join(f"- {k}: {v}" for k, v in info.items())
    atomic_write_text(
        table_md,
        f"# Decoder weight tuning\n\n{head}\n\n{table}\n\nBest: alpha={best['alpha']}, "
        f"beta={best['beta']}, WER {100 * best['wer']:.2f} %\n",
    )
    atomic_write_text(rows_json, json.dumps({**info, "results": rows, "best": best}, indent=1))
    cfg = dataclasses.replace(decoder.cfg, alpha=best["alpha"], beta=best["beta"])
    config_io.save(cfg, config_yaml)
    return best


def default_cache(out_dir: str | Path) -> Path:
    """Where the emission cache goes (``$OUT/emissions.safetensors``)."""
    return Path(out_dir) / "emissions.safetensors"


__all__ = [
    "Emissions",
    "TuneError",
    "compute_emissions",
    "decode_emissions",
    "default_cache",
    "load_emissions",
    "result_files",
    "save_emissions",
    "tune_weights",
    "word_error_rate",
    "write_results",
]
