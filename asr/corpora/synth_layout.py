"""Files of a synthetic corpus besides the audio: trans.txt, SPEAKERS.TXT, novel and voice lists.

See :mod:`asr.corpora.synth` for the layout.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from asr.corpora.synth_config import SUBSETS, Job, Plan, SynthConfig
from asr.corpora.synth_text import novel_name
from asr.io.atomic import atomic_open, atomic_write_text

if TYPE_CHECKING:
    from asr.corpora.tts import Voice


def write_novel_split(plan: Plan, cfg: SynthConfig, path: Path) -> None:
    """TSV: novel, chapter id, subset, author, title (authors/titles from metadata.tsv)."""
    meta: dict[str, tuple[str, str]] = {}
    meta_file = Path(cfg.text_dir) / "metadata.tsv"
    if meta_file.is_file():
        with meta_file.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                key = row.get("filename", "")
                meta[key] = (row.get("author-name", "").strip(), row.get("title", "").strip())
    lines = ["novel\tchapter\tsubset\tauthor\ttitle"]
    for subset in SUBSETS:
        for path_ in plan.novels[subset]:
            name = novel_name(path_)
            author, title = meta.get(name, ("", ""))
            lines.append(f"{name}\t{plan.chapters[name]}\t{subset}\t{author}\t{title}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_voices(plan: Plan, path: Path) -> None:
    """TSV: speaker id, voice id, engine, speaker group, held out of train (yes/no)."""
    heldout = {v.base_id for v in plan.voice_split["heldout"]}
    lines = ["speaker\tvoice\tengine\tgroup\theldout"]
    for base_id, speakers in sorted(plan.speakers.items()):
        for spk in speakers:
            held = "yes" if base_id in heldout else "no"
            lines.append(
                f"{spk.id}\t{spk.voice.id}\t{spk.voice.engine}\t{spk.voice.group_id}\t{held}"
            )
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_layout(jobs: list[Job], durations: dict[str, float], root: Path) -> dict[str, dict]:
    """Write every ``<speaker>-<chapter>.trans.txt`` and ``SPEAKERS.TXT`` for the kept
    utterances; returns per subset {"utterances", "hours", "speakers"}."""
    chapters: dict[tuple[str, int, int], list[Job]] = defaultdict(list)
    for job in jobs:
        if job.utt_id in durations:
            chapters[job.subset, job.speaker, job.chapter].append(job)
    for (subset, speaker, chapter), kept in sorted(chapters.items()):
        lines = [f"{j.utt_id} {j.transcript}" for j in sorted(kept, key=lambda j: j.utt)]
        folder = root / subset / str(speaker) / str(chapter)
        atomic_write_text(folder / f"{speaker}-{chapter}.trans.txt", "\n".join(lines) + "\n")
    minutes: dict[tuple[int, str], float] = defaultdict(float)
    voice_of: dict[int, Voice] = {}
    summary: dict[str, dict] = {}
    for job in jobs:
        if job.utt_id in durations:
            minutes[job.speaker, job.subset] += durations[job.utt_id] / 60.0
            voice_of[job.speaker] = job.voice
            entry = summary.setdefault(
                job.subset, {"utterances": 0, "hours": 0.0, "speakers": set()}
            )
            entry["utterances"] += 1
            entry["hours"] += durations[job.utt_id] / 3600.0
            entry["speakers"].add(job.speaker)
    with atomic_open(root / "SPEAKERS.TXT") as fh:
        fh.write("; Synthetic speakers: text-to-speech voices at a speaking-rate/pitch setting\n")
        fh.write(";ID  |SEX| SUBSET           |MINUTES| NAME\n")
        for (speaker, subset), mins in sorted(minutes.items()):
            voice = voice_of[speaker]
            fh.write(f"{speaker:<5}| {voice.sex} | {subset:<17}| {mins:5.2f} | {voice.id}\n")
    for entry in summary.values():
        entry["speakers"] = len(entry["speakers"])
    return summary
