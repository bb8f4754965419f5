"""Which novels of an ELTeC-style text folder went to which subset of the synthetic corpus.

The LM must not train on the novels read in the corpus's dev and test sets:
:func:`novel_split_files` gives the novel files per subset, from the corpus's
``novel_split.tsv`` (written by :func:`asr.corpora.synth_layout.write_novel_split`) or, without
one, from the corpus builder's own seeded split.
"""

from __future__ import annotations

from pathlib import Path

from asr.corpora.synth import split_novels
from asr.corpora.synth_config import SynthConfig, SynthError
from asr.corpora.synth_text import novel_name
from asr.lm.text_data import open_text


def read_novel_split(path: str | Path) -> dict[str, list[str]]:
    """Novel names per subset from a ``novel_split.tsv`` (columns novel, chapter, subset, ...)."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    with open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if "novel" not in header or "subset" not in header:
            raise SynthError(f"{path}: line 1: expected columns 'novel' and 'subset'")
        col_novel, col_subset = header.index("novel"), header.index("subset")
        for number, line in enumerate(fh, start=2):
            cells = line.rstrip("\n").split("\t")
            if len(cells) <= max(col_novel, col_subset):
                raise SynthError(f"{path}: line {number}: expected {len(header)} columns")
            out.setdefault(cells[col_subset], []).append(cells[col_novel])
    return out


def novel_split_files(
    text_dir: str | Path, split_tsv: str | Path | None = None
) -> dict[str, list[Path]]:
    """Novel files per subset ("train", "dev", "test") of an ELTeC-style folder.

    Uses ``split_tsv`` (the synthetic corpus's ``novel_split.tsv``) when given and present,
    otherwise the synthetic corpus builder's own seeded split (asr.corpora.synth.split_novels with
    its default configuration), so the LM never trains on the dev/test novels either way.
    """
    cfg = SynthConfig(text_dir=str(text_dir))
    paths = sorted(Path(text_dir).glob(cfg.text_glob))
    paths = [p for p in paths if p.is_file() and p.name.endswith((".txt", ".txt.gz"))]
    if not paths:
        raise SynthError(f"{text_dir}: no novels (*.txt, *.txt.gz)")
    if split_tsv is None or not Path(split_tsv).is_file():
        return split_novels(paths, cfg)
    named = read_novel_split(split_tsv)
    held = {n for subset in ("dev", "test") for n in named.get(subset, [])}
    out = {s: [p for p in paths if novel_name(p) in set(named.get(s, []))] for s in ("dev", "test")}
    out["train"] = [p for p in paths if novel_name(p) not in held]
    return out
