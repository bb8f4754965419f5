"""Reference recognisers next to our model on the same manifests: WER, CER and real-time factor.

Systems (``--systems``, comma-separated; default the three references; what each one is, and
how it is installed: :mod:`bench.recognisers`): ``pocketsphinx``, ``whisper-tiny.en`` and
``whisper-base`` (faster-whisper, ``--beam-size``, ``--compute-type``, ``--cache-dir``).

Every utterance is read by :func:`asr.io.audio.load_audio` (16 kHz mono float32), decoded whole, and
written to a hypothesis JSONL in ``asr decode``'s layout (``audio_filepath``, ``duration``,
``text`` = the reference, ``utt_id``, ``pred_text``) plus ``audio_s``, ``cpu_s`` and ``wall_s``:
that utterance's decoding time (audio reading excluded), so the RTF of any subset can be computed
later. ``asr score`` reads these files. RTF = CPU seconds / audio seconds (``time.process_time``,
the whole process, every thread), with ``--threads`` CPU threads (default 1: CTranslate2's
``cpu_threads`` and ``asr decode --threads``; pocketsphinx is single-threaded). Run it with
``OMP_NUM_THREADS=1`` as well.

Our model: ``--ours NAME=HYP.jsonl`` scores an existing hypothesis file (``asr decode``'s, or an
earlier run's of any system) of the first manifest; ``--ours-decode "NAME=ASR DECODE ARGS"`` runs
``python -m asr decode --manifest M --out ... --threads T --no-progress ARGS`` on every manifest
first (RTF: the child's CPU time, model loading included, over the manifest's audio).

All hypotheses, ours included, are scored by :func:`asr.scoring.wer.score` after
:func:`asr.text.normalize.normalize_text` on both sides (upper case, LibriSpeech conventions,
numbers and abbreviations spelt out): what ``asr score --normalize`` does. ``--subset
NAME=MANIFEST`` also scores the utterances of a smaller manifest (e.g. LibriSpeech dev-clean
inside the real dev set) from the hypotheses of the manifest that contains all of its ids, without
decoding again.

Example (the run in bench/RESULTS.md, "Reference recognisers on the real dev set of egs/real")::

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python -m bench.reference_wer \\
        --manifest real_dev=/work/real/data/real_dev.jsonl \\
        --manifest ljspeech=/work/real/data/ljspeech.jsonl \\
        --subset dev_clean=/work/real/data/dev_clean.jsonl \\
        --subset shared_dev=/work/real/data/ls_samples_dev.jsonl \\
        --out-dir /work/real/refs --reuse

``--reuse`` keeps every complete hypothesis file already in ``--out-dir`` and resumes an
interrupted one from its ``.partial`` file (decodes only what is missing); ``--limit N`` decodes
the first N utterances of each manifest (a smoke test). ``--systems`` runs a subset, so the
systems can be decoded by separate processes and scored together by a last ``--reuse`` run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asr.errors import AsrError
from asr.scoring.transcripts import jsonl_all_have, read_transcripts
from asr.scoring.wer import score
from asr.text.normalize import normalize_text
from bench.recognisers import (
    DEFAULT_CACHE_DIR,
    DEFAULT_SYSTEMS,
    SAMPLE_RATE_HZ,
    SYSTEM_LABELS,
    BenchError,
    Recogniser,
    Settings,
    check_systems,
    decode_ours,
    make_recogniser,
    system_label,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row: a system's totals on one set."""

    system: str  # the system's label
    set_name: str  # the manifest's (or subset's) name
    utterances: int
    ref_words: int
    wer: float  # percent
    cer: float  # percent
    audio_s: float  # audio seconds behind the RTF (0: not known)
    cpu_s: float  # CPU seconds decoding them
    hyp_path: str

    @property
    def rtf(self) -> float | None:
        """CPU seconds per audio second, None when the hypothesis file has no timings."""
        return self.cpu_s / self.audio_s if self.audio_s > 0 else None


# ------------------------------------------------------------------ decoding


def hyp_record(utt: Any, pred_text: str, error: str | None = None) -> dict[str, Any]:
    """The hypothesis JSONL line of one manifest utterance (``asr decode``'s keys)."""
    out = utt.to_dict()
    out.pop("speaker", None)
    out["pred_text"] = pred_text
    if error is not None:
        out["error"] = error
    return out


def decode_manifest(
    recogniser: Recogniser, manifest: str | Path, out: str | Path, resume: bool = False
) -> dict[str, float]:
    """Decode every utterance of ``manifest`` into the hypothesis JSONL ``out``.

    Each line carries the utterance's ``audio_s``, ``cpu_s`` and ``wall_s`` (decoding only).
    Lines go to ``OUT.partial`` as they are decoded, which becomes ``out`` at the end; with
    ``resume`` the utterances already in ``OUT.partial`` (an interrupted run) are kept, not decoded
    again. Returns the totals of this call ``{"audio_s", "cpu_s", "wall_s", "failed"}``; an
    unreadable utterance is written with an empty ``pred_text`` and an ``error`` field.
    """
    from asr.data.manifest import read_manifest
    from asr.io.audio import load_audio

    utts = read_manifest(manifest)
    partial = Path(f"{out}.partial")
    done: dict[str, str] = {}
    if resume and partial.is_file():
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                done[_key(json.loads(line))] = line
            except (ValueError, KeyError):
                break  # a line cut short by the interruption: decode it again
    stats = {"audio_s": 0.0, "cpu_s": 0.0, "wall_s": 0.0, "failed": 0.0}
    with open(partial, "w", encoding="utf-8") as fh:
        for i, utt in enumerate(utts):
            key = utt.utt_id or utt.audio_filepath
            if key in done:
                fh.write(done[key] + "\n")
                continue
            try:
                samples, _ = load_audio(
                    utt.audio_filepath, SAMPLE_RATE_HZ, utt.offset, utt.duration or None
                )
            except AsrError as err:
                print(f"{utt.audio_filepath}: {err}", file=sys.stderr)
                fh.write(json.dumps(hyp_record(utt, "", str(err))) + "\n")
                stats["failed"] += 1
                continue
            cpu0, wall0 = time.process_time(), time.perf_counter()
            text = recogniser(samples)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            audio = len(samples) / SAMPLE_RATE_HZ
            rec = hyp_record(utt, text)
            rec.update(audio_s=round(audio, 4), cpu_s=round(cpu, 4), wall_s=round(wall, 4))
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            stats["audio_s"] += audio
            stats["cpu_s"] += cpu
            stats["wall_s"] += wall
            print(
                f"[{i + 1}/{len(utts)}] {key} RTF {cpu / max(audio, 1e-9):.3f}",
                file=sys.stderr,
            )
    os.replace(partial, out)
    return stats


# ------------------------------------------------------------------ scoring


def _lines(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _key(rec: dict[str, Any]) -> str:
    return str(rec.get("utt_id") or rec["audio_filepath"])


def complete(hyp: str | Path, manifest: str | Path) -> bool:
    """Whether ``hyp`` exists and has a hypothesis for every utterance of ``manifest``."""
    if not Path(hyp).is_file():
        return False
    try:
        have = {_key(r) for r in _lines(hyp)}
    except (OSError, ValueError, KeyError):
        return False
    return {_key(r) for r in _lines(manifest)} <= have


def score_set(
    system: str,
    set_name: str,
    ref_manifest: str | Path,
    hyp: str | Path,
    timing: dict[str, float] | None = None,
) -> Row:
    """Score the hypotheses in ``hyp`` of every utterance of ``ref_manifest`` (both sides through
    normalize_text); ``hyp`` may hold more utterances (a subset is scored from its superset).

    The RTF comes from the per-utterance ``audio_s``/``cpu_s`` of the hypothesis lines when
    every scored line has them, else from ``timing`` (a whole-manifest total), else is unknown.
    """
    id_key = "utt_id" if jsonl_all_have(ref_manifest, "utt_id") else "audio_filepath"
    refs = read_transcripts(ref_manifest, "jsonl", text_key="text", id_key=id_key)
    lines = {_key(r): r for r in _lines(hyp)}
    missing = [k for k in refs if k not in lines]
    if missing:
        raise BenchError(f"{hyp}: no hypothesis for utterance {missing[0]!r} of {ref_manifest}")
    chosen = [lines[k] for k in refs]
    report = score(
        {k: normalize_text(v) for k, v in refs.items()},
        {k: normalize_text(lines[k].get("pred_text", "")) for k in refs},
        ref_name=str(ref_manifest),
        hyp_name=str(hyp),
    )
    audio_s = cpu_s = 0.0
    if chosen and all("cpu_s" in r and "audio_s" in r for r in chosen):
        audio_s = sum(float(r["audio_s"]) for r in chosen)
        cpu_s = sum(float(r["cpu_s"]) for r in chosen)
    elif timing is not None and len(chosen) == len(lines):
        audio_s, cpu_s = timing["audio_s"], timing["cpu_s"]
    return Row(
        system,
        set_name,
        report.num_utterances,
        report.words.ref_len,
        100.0 * report.words.rate,
        100.0 * report.chars.rate,
        audio_s,
        cpu_s,
        str(hyp),
    )


def results_table(rows: Sequence[Row]) -> str:
    """Markdown: system, set, utterances, words, WER %, CER %, RTF, audio h, hypothesis file."""
    lines = [
        "| system | set | utts | ref words | WER % | CER % | RTF (CPU, 1 thread) | audio h | "
        "hypotheses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rtf = "-" if r.rtf is None else f"{r.rtf:.3f}"
        hours = "-" if r.audio_s <= 0 else f"{r.audio_s / 3600:.3f}"
        lines.append(
            f"| {r.system} | {r.set_name} | {r.utterances} | {r.ref_words} | {r.wer:.1f} | "
            f"{r.cer:.1f} | {rtf} | {hours} | `{r.hyp_path}` |"
        )
    return "\n".join(lines)


def wer_matrix(rows: Sequence[Row]) -> str:
    """Markdown: one row per system, one ``WER / CER`` column per set (the compact view)."""
    systems = list(dict.fromkeys(r.system for r in rows))
    sets = list(dict.fromkeys(r.set_name for r in rows))
    cell = {(r.system, r.set_name): f"{r.wer:.1f} / {r.cer:.1f}" for r in rows}
    lines = ["| WER / CER % | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for s in systems:
        lines.append(f"| {s} | " + " | ".join(cell.get((s, n), "") for n in sets) + " |")
    return "\n".join(lines)


def parse_named(
    items: Sequence[str], flag: str, default_names: bool = False, empty_ok: bool = False
) -> list[tuple[str, str]]:
    """``["NAME=VALUE", ...]`` -> ``[(NAME, VALUE), ...]``; with ``default_names`` a bare path
    is named by its file stem; with ``empty_ok`` ``NAME=`` (an empty value) is allowed."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep and default_names:
            name, value = Path(item).stem, item
        elif not sep or not name or not (value or empty_ok):
            raise BenchError(f"{flag} {item!r}: expected NAME=VALUE")
        out.append((name, value))
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


# ------------------------------------------------------------------ command line


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--manifest",
        action="append",
        required=True,
        help="[NAME=]MANIFEST.jsonl to decode and score (repeatable)",
    )
    p.add_argument(
        "--subset",
        action="append",
        default=[],
        help="NAME=MANIFEST.jsonl scored from a --manifest holding all its ids",
    )
    p.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEM_LABELS)} (default all)",
    )
    p.add_argument("--out-dir", required=True, help="hypothesis files: OUT/SET.SYSTEM.jsonl")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep complete hypothesis files, resume cut ones",
    )
    p.add_argument("--limit", type=int, default=None, help="decode only the first N utterances")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument(
        "--compute-type",
        default="default",
        help="CTranslate2 compute type for Whisper (default: as stored; int8, ...)",
    )
    p.add_argument("--beam-size", type=int, default=5, help="Whisper beam (default 5)")
    p.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="where Whisper base's model.bin is joined (default ~/.cache/asr/bench)",
    )
    p.add_argument(
        "--ours",
        action="append",
        default=[],
        help="NAME=HYP.jsonl: an existing hypothesis file of the FIRST --manifest",
    )
    p.add_argument(
        "--ours-decode",
        action="append",
        default=[],
        help="'NAME=ASR DECODE ARGS' (may be empty): run asr decode on every --manifest",
    )
    p.add_argument("--notes", default="", help="text put under the table")
    p.add_argument("--results", action="store_true", help="write the tables to bench/RESULTS.md")
    return p.parse_args(argv)


# set name -> (hypothesis file, whole-manifest timing or None)
Files = dict[str, tuple[Path, dict[str, float] | None]]


def _cut_manifests(
    manifests: list[tuple[str, str]], out_dir: Path, limit: int | None
) -> dict[str, str]:
    """What is decoded and scored per set: the manifest, or with ``limit`` its first lines."""
    refs = dict(manifests)
    if limit is not None:
        for set_name, manifest in manifests:
            cut = out_dir / f"{_slug(set_name)}.first{limit}.jsonl"
            cut.write_text("".join(json.dumps(r) + "\n" for r in _lines(manifest)[:limit]))
            refs[set_name] = str(cut)
    return refs


def _decode_system(
    system: str, refs: dict[str, str], out_dir: Path, args: argparse.Namespace
) -> Files:
    """Decode every set with a reference system (loaded only when something is missing)."""
    recogniser = None
    files: Files = {}
    for set_name, manifest in refs.items():
        out = out_dir / f"{_slug(set_name)}.{system}.jsonl"
        if not (args.reuse and args.limit is None and complete(out, manifest)):
            if recogniser is None:
                recogniser = make_recogniser(system, _settings(args))
            stats = decode_manifest(recogniser, manifest, out, resume=args.reuse)
            print(f"{system} on {set_name}: {json.dumps(stats)}", file=sys.stderr)
        files[set_name] = (out, None)
    return files


def _decode_ours(
    name: str, decode_args: str, refs: dict[str, str], out_dir: Path, args: argparse.Namespace
) -> Files:
    """Run asr decode on every set (or reuse a complete output with its timing file)."""
    files: Files = {}
    for set_name, manifest in refs.items():
        out = out_dir / f"{_slug(set_name)}.{_slug(name)}.jsonl"
        timing_file = out.with_suffix(".timing.json")
        reuse = args.reuse and args.limit is None and complete(out, manifest)
        if reuse and timing_file.is_file():
            timing = json.loads(timing_file.read_text())
        else:
            timing = decode_ours(decode_args, manifest, out, args.threads)
            timing_file.write_text(json.dumps(timing) + "\n")
        files[set_name] = (out, timing)
    return files


def _subset_rows(
    label: str,
    files: Files,
    subsets: list[tuple[str, str]],
    manifests: list[tuple[str, str]],
    refs: dict[str, str],
    args: argparse.Namespace,
) -> list[Row]:
    """Score each subset from the hypotheses of the first manifest holding all of its ids."""
    rows = []
    for sub_name, sub_manifest in subsets:
        ids = {_key(r) for r in _lines(sub_manifest)}
        parent = next(
            (n for n, m in manifests if n in files and ids <= {_key(r) for r in _lines(m)}),
            None,
        )
        if parent is None:
            raise BenchError(f"--subset {sub_name}: no --manifest holds all of its ids")
        if args.limit is not None:  # only the subset's utterances that were decoded
            decoded = {_key(r) for r in _lines(refs[parent])}
            kept = [r for r in _lines(sub_manifest) if _key(r) in decoded]
            if not kept:
                continue
            sub_manifest = str(Path(args.out_dir) / f"{_slug(sub_name)}.first{args.limit}.jsonl")
            Path(sub_manifest).write_text("".join(json.dumps(r) + "\n" for r in kept))
        rows.append(score_set(label, sub_name, sub_manifest, files[parent][0]))
    return rows


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(args.threads, args.compute_type, args.beam_size, args.cache_dir)


def run(args: argparse.Namespace) -> list[Row]:
    """Decode what is needed, then score every system on every set -> the table's rows."""
    manifests = parse_named(args.manifest, "--manifest", default_names=True)
    subsets = parse_named(args.subset, "--subset", default_names=True)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    check_systems(systems)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refs = _cut_manifests(manifests, out_dir, args.limit)
    hyps: list[tuple[str, Files]] = [
        (system_label(s, _settings(args)), _decode_system(s, refs, out_dir, args)) for s in systems
    ]
    for name, decode_args in parse_named(args.ours_decode, "--ours-decode", empty_ok=True):
        hyps.append((name, _decode_ours(name, decode_args, refs, out_dir, args)))
    for name, path in parse_named(args.ours, "--ours"):
        hyps.append((name, {manifests[0][0]: (Path(path), None)}))
    rows: list[Row] = []
    for label, files in hyps:
        for set_name, _ in manifests:
            if set_name in files:
                hyp, timing = files[set_name]
                rows.append(score_set(label, set_name, refs[set_name], hyp, timing))
        rows += _subset_rows(label, files, subsets, manifests, refs, args)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    command = "python -m bench.reference_wer " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    try:
        rows = run(args)
    except AsrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from bench.report import machine_line, write_section

    body = "\n\n".join(
        part
        for part in (
            "Both sides through `asr.text.normalize.normalize_text` (as `asr score "
            "--normalize`), scored by "
            "`asr.scoring.wer.score`. RTF = decoding CPU seconds / audio seconds "
            f"({args.threads} thread(s), audio reading excluded for the reference systems).",
            wer_matrix(rows),
            results_table(rows),
            args.notes,
            f"Command: `{command}`",
        )
        if part
    )
    print(f"{machine_line()}\n\n{body}")
    if args.results:
        write_section("reference", "Reference recognisers vs ours (bench/reference_wer.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
