"""Write one benchmark's table into its own section of bench/RESULTS.md.

Each benchmark script owns the section between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``
and rewrites only that, so scripts can be rerun independently. Every section starts with the
machine and date it was measured on.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

import torch

from asr.io.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEvery table is written by the script named in its heading.\n"


def machine_line() -> str:
    """One line describing this machine: CPU model, cores, torch version, date (UTC)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        cpu += f"; GPU {torch.cuda.get_device_name(0)}"
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}; measured {today}."
    )


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """Render a Markdown table; floats are shown with 4 significant digits."""

    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) section ``name`` of RESULTS.md with a title, machine line and body."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n{machine_line()}\n\n{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_text(path, text)
