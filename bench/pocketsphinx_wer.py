"""pocketsphinx next to our model on the same utterances: WER and CER with our scorer.

``bench/reference_wer.py`` generalises this script (pocketsphinx, Whisper tiny.en and Whisper
base, several manifests and subsets, per-utterance RTF) and reuses its helpers; this one keeps
writing the ``pocketsphinx`` section of bench/RESULTS.md.

pocketsphinx 5.1.1 (CMU's bundled en-us continuous HMM acoustic model, ``cmudict-en-us.dict`` and
``en-us.lm.bin`` 3-gram, its default search settings) decodes every utterance of a manifest from
audio read by :func:`asr.io.audio.load_audio` (resampled to 16 kHz, mono) and converted to 16-bit
PCM.
Its hypotheses are written as a hypothesis JSONL in the layout ``asr decode`` writes
(``audio_filepath``, ``duration``, ``text`` (the reference), ``utt_id``, ``pred_text``), so
``asr score`` reads it too.

Every system, pocketsphinx and each of our hypothesis files given with ``--ours NAME=HYP.jsonl``,
is scored by :func:`asr.scoring.wer.score` after :func:`asr.text.normalize.normalize_text` on both
sides
(upper case, LibriSpeech conventions): the same normalisation for all. The script prints a
Markdown table (and with ``--results`` writes it into bench/RESULTS.md, section
``pocketsphinx``)::

    .venv/bin/python -m bench.pocketsphinx_wer --manifest /work/real/dev.jsonl \\
        --out exp/ps/dev.jsonl --ours "greedy=exp/decode/greedy.jsonl" --results

pocketsphinx is an optional bench dependency: ``pip install 'asr[bench]'`` (or
``pip install pocketsphinx==5.1.1``). ``--hyp-only``-style reuse: pass ``--reuse`` to score an
existing ``--out`` file without decoding again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AsrError
from asr.io.atomic import atomic_open
from asr.scoring.transcripts import jsonl_all_have, read_transcripts
from asr.scoring.wer import ScoreReport, score
from asr.text.normalize import normalize_text

SAMPLE_RATE_HZ = 16000  # what the bundled en-us acoustic model expects
INSTALL_HINT = "pocketsphinx is not installed: pip install 'asr[bench]' (pocketsphinx==5.1.1)"


class BenchError(AsrError):
    """A missing optional dependency or an unusable hypothesis file."""


@dataclasses.dataclass(frozen=True)
class SystemScore:
    """One row of the table: a system's totals on the manifest."""

    name: str  # what the row is called
    wer: float  # word error rate in percent
    cer: float  # character error rate in percent
    utterances: int  # utterances scored
    ref_words: int  # reference words
    hyp_path: str  # the hypothesis JSONL scored


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1) ``(samples,)`` -> int16 PCM, clipped, rounded to nearest."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def _decoder() -> Any:
    """pocketsphinx's Decoder with its bundled en-us model and default settings."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise BenchError(INSTALL_HINT) from None
    return Decoder(samprate=SAMPLE_RATE_HZ, loglevel="ERROR")


def recognise(decoder: Any, pcm: np.ndarray) -> str:
    """Decode one whole utterance of int16 PCM ``(samples,)`` -> the 1-best word string."""
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def hyp_record(utt: Any, pred_text: str, error: str | None = None) -> dict[str, Any]:
    """The hypothesis JSONL line of one manifest utterance (``asr decode``'s keys)."""
    out = utt.to_dict()
    out.pop("speaker", None)
    out["pred_text"] = pred_text
    if error is not None:
        out["error"] = error
    return out


def decode_manifest(manifest: str | Path, out: str | Path) -> dict[str, float]:
    """Decode every utterance of ``manifest`` with pocketsphinx into the JSONL ``out``.

    Returns ``{"audio_s", "cpu_s", "wall_s", "failed"}``: decoding time excludes audio reading.
    An unreadable utterance is written with an empty ``pred_text`` and an ``error`` field.
    """
    from asr.data.manifest import read_manifest
    from asr.io.audio import load_audio

    decoder = _decoder()
    utts = read_manifest(manifest)
    stats = {"audio_s": 0.0, "cpu_s": 0.0, "wall_s": 0.0, "failed": 0.0}
    with atomic_open(out) as fh:
        for i, utt in enumerate(utts):
            try:
                samples, _ = load_audio(
                    utt.audio_filepath, SAMPLE_RATE_HZ, utt.offset, utt.duration or None
                )
            except AsrError as err:
                print(f"{utt.audio_filepath}: {err}", file=sys.stderr)
                fh.write(json.dumps(hyp_record(utt, "", str(err))) + "\n")
                stats["failed"] += 1
                continue
            pcm = to_int16(samples)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            text = recognise(decoder, pcm)
            stats["cpu_s"] += time.process_time() - cpu0
            stats["wall_s"] += time.perf_counter() - wall0
            stats["audio_s"] += len(pcm) / SAMPLE_RATE_HZ
            fh.write(json.dumps(hyp_record(utt, text), ensure_ascii=False) + "\n")
            print(f"[{i + 1}/{len(utts)}] {utt.utt_id or utt.audio_filepath}", file=sys.stderr)
    return stats


def score_hyps(manifest: str | Path, hyp: str | Path) -> ScoreReport:
    """Score a hypothesis JSONL against a manifest, both sides through normalize_text."""
    both = jsonl_all_have(manifest, "utt_id") and jsonl_all_have(hyp, "utt_id")
    key = "utt_id" if both else "audio_filepath"
    refs = read_transcripts(manifest, "jsonl", text_key="text", id_key=key)
    hyps = read_transcripts(hyp, "jsonl", text_key="pred_text", id_key=key)
    refs = {k: normalize_text(v) for k, v in refs.items()}
    hyps = {k: normalize_text(v) for k, v in hyps.items()}
    return score(refs, hyps, ref_name=str(manifest), hyp_name=str(hyp))


def system_score(name: str, manifest: str | Path, hyp: str | Path) -> SystemScore:
    """One table row: ``name``'s WER/CER (percent) on ``manifest``."""
    report = score_hyps(manifest, hyp)
    return SystemScore(
        name,
        100.0 * report.words.rate,
        100.0 * report.chars.rate,
        report.num_utterances,
        report.words.ref_len,
        str(hyp),
    )


def results_table(rows: Sequence[SystemScore]) -> str:
    """Markdown table: system, WER %, CER %, utterances, reference words, hypothesis file."""
    lines = [
        "| system | WER % | CER % | utterances | ref words | hypotheses |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.wer:.1f} | {r.cer:.1f} | {r.utterances} | {r.ref_words} | "
            f"`{r.hyp_path}` |"
        )
    return "\n".join(lines)


def speed_line(stats: dict[str, float]) -> str:
    """One sentence on pocketsphinx's decoding speed from :func:`decode_manifest`'s stats."""
    rtf = stats["cpu_s"] / max(stats["audio_s"], 1e-9)
    return (
        f"pocketsphinx decoding: {stats['audio_s']:.0f} s of audio in {stats['cpu_s']:.1f} CPU s "
        f"(RTF {rtf:.3f} in CPU time, one thread; {stats['wall_s']:.1f} s wall on a shared "
        f"machine); {int(stats['failed'])} unreadable utterances."
    )


def parse_named(items: Sequence[str]) -> list[tuple[str, str]]:
    """``["NAME=PATH", ...]`` -> ``[(NAME, PATH), ...]``; a missing ``=`` is an error."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise BenchError(f"--ours {item!r}: expected NAME=HYP.jsonl")
        out.append((name, path))
    return out


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="JSONL manifest with reference text")
    p.add_argument("--out", required=True, help="pocketsphinx hypothesis JSONL to write")
    p.add_argument("--reuse", action="store_true", help="score an existing --out, no decoding")
    p.add_argument("--ours", action="append", default=[], help="NAME=HYP.jsonl (repeatable)")
    p.add_argument("--notes", default="", help="text put under the table")
    p.add_argument("--results", action="store_true", help="write the table to bench/RESULTS.md")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    command = "python -m bench.pocketsphinx_wer " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    try:
        speed = ""
        if not args.reuse:
            stats = decode_manifest(args.manifest, args.out)
            speed = speed_line(stats)
        rows = [system_score("pocketsphinx 5.1.1 (en-us, default)", args.manifest, args.out)]
        rows += [system_score(name, args.manifest, hyp) for name, hyp in parse_named(args.ours)]
    except AsrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from bench.report import machine_line, write_section

    body = "\n\n".join(
        part
        for part in (
            f"Manifest `{args.manifest}`; both sides through "
            f"`asr.text.normalize.normalize_text`, scored by "
            "`asr.scoring.wer.score`.",
            results_table(rows),
            speed,
            args.notes,
            f"Command: `{command}`",
        )
        if part
    )
    print(f"{machine_line()}\n\n{body}")
    if args.results:
        write_section("pocketsphinx", "pocketsphinx vs ours (bench/pocketsphinx_wer.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
