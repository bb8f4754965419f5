"""The experiment folder of a training run: checked before any training, never mixed with
another run's files.

A training run writes these names into its ``exp_dir`` (and nothing else)::

    config.yaml  tokenizer/  log.jsonl  tensorboard/  checkpoints/  curves.png  <export>/

where ``<export>`` is ``model`` (acoustic model) or ``lm`` (LSTM LM). :func:`prepare_experiment`
enforces the output rule on them before the first step:

- a new folder, an empty one, or one holding none of those names: train there;
- ``resume``: continue the run there (its exported folder, if any, must be ours to replace);
- otherwise a folder holding a run is refused (one line: pass ``--resume``, choose another
  ``--exp``, or ``--overwrite``), since a new run would mix its checkpoints with the old ones
  and empty the old log;
- ``overwrite``: start over, removing exactly those names, and only after checking that each
  holds nothing a training run does not write (a user's file anywhere in them is never deleted).

Files of other names in the folder (decoding results, notes) are never touched.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from asr.errors import AsrError
from asr.io.outputs import OVERWRITE_FLAG, OutputError, check_writable, same_or_inside
from asr.text.tokenizer import SENTENCEPIECE_FILE, TOKENIZER_FILE

RUN_FILES = ("config.yaml", "log.jsonl", "curves.png")  # files every run writes
RUN_FOLDERS = ("checkpoints", "tensorboard", "tokenizer")  # folders every run writes
# What checkpoints/ may hold: step folders, their temporary and set-aside forms, the pointer.
_CHECKPOINT_ENTRY = re.compile(
    r"(step-\d+|\.step-\d+\.tmp-\d+|unreadable-step-\d+(\.\d+)?|latest|\.latest\..*\.tmp)"
)


class ExperimentError(AsrError):
    """The experiment folder cannot be used as asked; the message names it and the way out."""


def run_names(export_name: str) -> tuple[str, ...]:
    """Every name a training run that exports to ``exp_dir/export_name`` writes."""
    return (*RUN_FILES, *RUN_FOLDERS, export_name)


def prepare_experiment(
    exp_dir: str | Path,
    export_name: str,
    resume: bool = False,
    overwrite: bool = False,
    remove: bool = True,
) -> None:
    """Check (and with ``overwrite`` clear) ``exp_dir`` before a run; see the module docstring.

    Args:
        exp_dir: the experiment folder (need not exist).
        export_name: the folder inside it the run exports to (``"model"``, ``"lm"``).
        resume: the run continues the one in ``exp_dir`` (``--resume``).
        overwrite: the run starts over, replacing a previous run's files (``--overwrite``).
        remove: actually remove them (False on ranks other than 0: check only).
    Raises:
        ExperimentError / OutputError: one line naming the folder and what to do.
    """
    exp = Path(exp_dir)
    if exp.exists() and not exp.is_dir():
        raise ExperimentError(f"{exp}: exists and is not a folder; choose another --exp")
    check_writable(exp / "checkpoints")  # the folder (or where it will be made) takes files
    if (exp / "checkpoints").is_dir():
        check_writable(exp / "checkpoints" / "step-probe")
    found = [n for n in run_names(export_name) if (exp / n).exists() or (exp / n).is_symlink()]
    if resume:
        if (exp / export_name).is_dir() and any((exp / export_name).iterdir()):
            _check_ours(exp, export_name)  # replaced by the export at the end
        return
    if not found:
        return
    if not overwrite:
        raise ExperimentError(
            f"{exp}: holds a training run ({', '.join(found[:4])}); pass --resume to continue "
            f"it, choose a new --exp, or pass {OVERWRITE_FLAG} to start over (removes those)"
        )
    for name in found:
        _check_ours(exp, name)
    if remove:
        for name in found:
            path = exp / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _check_ours(exp: Path, name: str) -> None:
    """Raise unless ``exp/name`` holds only what a training run writes there."""
    from asr.io.folders import MODEL_DIR_NAMES, ModelFileError, check_replaceable

    path = exp / name
    if path.is_symlink():
        foreign = [f"a link to {path.resolve()}"]
    elif name in RUN_FILES:
        foreign = [] if path.is_file() else ["a folder"]
    elif not path.is_dir():
        foreign = ["a file"]
    elif name == "checkpoints":
        foreign = [p.name for p in path.iterdir() if not _CHECKPOINT_ENTRY.fullmatch(p.name)]
    elif name == "tensorboard":
        foreign = [p.name for p in path.iterdir()
                   if not (p.is_file() and p.name.startswith("events.out.tfevents."))]  # fmt: skip
    elif name == "tokenizer":
        ours = (TOKENIZER_FILE, SENTENCEPIECE_FILE)
        foreign = [p.name for p in path.iterdir() if p.name not in ours or not p.is_file()]
    else:  # the exported model / LM folder
        try:
            if any(path.iterdir()):
                check_replaceable(path)
            foreign = []
        except ModelFileError:
            names = sorted(p.name for p in path.iterdir())
            foreign = [n for n in names if n not in MODEL_DIR_NAMES] or ["no model weights"]
    if foreign:
        raise ExperimentError(
            f"{path}: holds {', '.join(sorted(foreign)[:3])}, which a training run does not "
            "write; refusing to remove it: move it away or choose a new --exp"
        )


def check_exp_not_input(exp: str | Path, inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse an experiment folder that is, contains or lies inside an input of the run.

    Args:
        exp: the ``--exp`` folder (training writes into it).
        inputs: ``(what, path)`` pairs: the tokenizer folder, manifests, text files, init_from;
            a None or missing path is skipped.
    Raises:
        OutputError: one line naming the input and the option.
    """
    exp_path = Path(exp)
    for what, path in inputs:
        if path is None or not Path(path).exists():
            continue
        source = Path(path)
        if same_or_inside(exp_path, source) or same_or_inside(source, exp_path):
            where = "contains"
            if same_or_inside(exp_path, source):
                where = "is" if exp_path.resolve() == source.resolve() else "is inside"
            raise OutputError(
                f"{exp}: --exp {where} the {what} {path}, an input of this run; training "
                "writes into --exp, so choose a separate folder"
            )
