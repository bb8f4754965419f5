"""Subtitles from timed words: cues of readable size, written as SRT or WebVTT.

Cues follow common broadcast guidelines: at most ``max_lines`` lines of ``max_line_chars``
characters, at most ``max_cue_s`` seconds on screen, a new cue after a pause of ``max_gap_s``,
each shown at least ``min_cue_s`` (without running into the next cue).

Example::

    cues = make_cues(words)               # words: anything with text, start, end (seconds)
    Path("talk.srt").write_text(format_srt(cues))
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable, Sequence
from typing import Protocol


class TimedText(Protocol):
    """A word (or a longer piece of text) with its time span in seconds."""

    text: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class SubtitleStyle:
    """How words are grouped into cues."""

    max_line_chars: int = 42  # characters per line
    max_lines: int = 2  # lines per cue
    max_cue_s: float = 6.0  # longest time a cue is shown, seconds
    max_gap_s: float = 1.0  # a pause this long between words starts a new cue
    min_cue_s: float = 0.7  # shortest time a cue is shown (unless the next cue starts sooner)


@dataclasses.dataclass(frozen=True)
class Cue:
    """One subtitle."""

    start: float  # seconds
    end: float  # seconds, > start
    lines: tuple[str, ...]  # the text, wrapped


def wrap_lines(text: str, width: int, max_lines: int) -> list[str]:
    """Wrap ``text`` into lines of at most ``width`` characters (a longer word stays whole);
    two lines are balanced (split at the space that makes the longer line shortest)."""
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    if len(lines) != 2 or max_lines < 2:
        return lines
    words = text.split()
    best = min(
        range(1, len(words)),
        key=lambda i: max(len(" ".join(words[:i])), len(" ".join(words[i:]))),
    )
    return [" ".join(words[:best]), " ".join(words[best:])]


def _fits(words: Sequence[TimedText], style: SubtitleStyle) -> bool:
    text = " ".join(w.text for w in words)
    lines = wrap_lines(text, style.max_line_chars, style.max_lines)
    return len(lines) <= style.max_lines and words[-1].end - words[0].start <= style.max_cue_s


def make_cues(words: Iterable[TimedText], style: SubtitleStyle | None = None) -> list[Cue]:
    """Group timed words into cues (see :class:`SubtitleStyle`); cues never overlap."""
    style = style or SubtitleStyle()
    groups: list[list[TimedText]] = []
    for word in words:
        if not word.text.strip():
            continue
        current = groups[-1] if groups else None
        if (
            current is not None
            and word.start - current[-1].end < style.max_gap_s
            and _fits([*current, word], style)
        ):
            current.append(word)
        else:
            groups.append([word])
    cues = []
    for i, group in enumerate(groups):
        start = group[0].start
        end = max(group[-1].end, start + style.min_cue_s, start + 0.001)
        if i + 1 < len(groups):
            end = max(min(end, groups[i + 1][0].start), start + 0.001)
        text = " ".join(w.text for w in group)
        lines = wrap_lines(text, style.max_line_chars, style.max_lines)
        cues.append(Cue(round(start, 3), round(end, 3), tuple(lines)))
    return cues


def format_timestamp(seconds: float, decimal: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``decimal="."``, ``HH:MM:SS.mmm`` (WebVTT)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def format_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered cues separated by blank lines."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        times = f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}"
        blocks.append(f"{number}\n{times}\n" + "\n".join(cue.lines) + "\n")
    return "\n".join(blocks)


def format_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text: the ``WEBVTT`` header, then cues separated by blank lines."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        times = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        # "-->" may not appear in cue text; words never hold it, but be safe.
        lines = [line.replace("-->", "->") for line in cue.lines]
        blocks.append(f"{times}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)
