"""Saved folders (a model, an LSTM LM, an ONNX export): their file names, their kind, and
how they are written safely.

A folder is written under a temporary name next to its destination (:func:`make_temp_dir`) and
moved into place by :func:`replace_dir`, so a reader sees either the old folder or the complete
new one. What a killed writer leaves (its temporary folder ``.NAME.PID.*.tmp``, the old folder
``.NAME.old-PID`` set aside while replacing) is recovered by the next writer of that folder once
process PID is gone (:func:`recover_folder`). A folder is replaced only when it holds nothing but
the files asr writes (:func:`check_replaceable`), whatever flag is given.

The layouts themselves: :mod:`asr.models.io` (acoustic models), :mod:`asr.lm.io` (LSTM LMs),
:mod:`asr.onnx.export` (ONNX exports).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from asr.errors import AsrError
from asr.io.outputs import OVERWRITE_FLAG, check_writable, same_or_inside

if TYPE_CHECKING:
    import torch

# The tokenizer files (asr.text.tokenizer writes and reads them under these names).
TOKENIZER_FILE = "tokenizer.yaml"
SENTENCEPIECE_FILE = "tokenizer.model"
# Stored weight dtypes of saved folders (the loaders compute in float32).
WEIGHT_DTYPES = ("float32", "float16", "bfloat16")
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
# The config file of an exported LSTM LM folder (asr.lm.io.CONFIG_FILE, which imports this).
LM_CONFIG_FILE = "lm.yaml"
# An ONNX export folder (asr.onnx.export): the graph and the JSON that describes it.
ONNX_FILE = "model.onnx"
ONNX_CONFIG_FILE = "config.json"
# A model folder's recommended decoding (asr.pretrained.bundled_decoding): the beam search config
# and the LSTM LM folder it was tuned with.
DECODE_FILE = "decode.yaml"
LM_DIR = "lm"
# Every name an exported model or LM folder holds: a folder holding anything else (a checkpoint
# folder, a log, a user's file) is not ours to replace, whatever flag is given.
MODEL_DIR_NAMES = frozenset(
    {
        WEIGHTS_FILE,
        CONFIG_FILE,
        LM_CONFIG_FILE,
        TOKENIZER_FILE,
        SENTENCEPIECE_FILE,
        ONNX_FILE,
        ONNX_CONFIG_FILE,
        DECODE_FILE,
    }
)
ACOUSTIC_MODEL = "acoustic model"
LSTM_LM = "LSTM LM"


class ModelFileError(AsrError):
    """An exported model directory is missing, incomplete or inconsistent."""


def write_error(out: str | Path, err: Exception) -> ModelFileError:
    """The one-line error of a model folder that could not be written (a full disk, ...): the
    folder there before, if any, is kept."""
    why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return ModelFileError(f"{out}: cannot write the model folder ({why}); nothing was replaced")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True when it cannot be told)."""
    if os.name != "posix" or pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def recover_folder(dest: Path) -> None:
    """Undo what a killed writer of the model folder ``dest`` left next to it, once its process
    is gone: a folder set aside while replacing (``.NAME.old-PID``) is moved back when ``dest``
    is missing, else removed; temporary folders (``.NAME.PID.*.tmp``) are removed. Only these
    names of ours, holding only model files, are touched; errors leave them where they are."""
    parent = dest.parent
    if not parent.is_dir():
        return
    name = re.escape(dest.name)
    old_re = re.compile(rf"\.{name}\.old-(\d+)")
    tmp_re = re.compile(rf"\.{name}\.(\d+)\.[A-Za-z0-9_]+\.tmp")
    try:
        entries = sorted(parent.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for path in entries:
        old, tmp = old_re.fullmatch(path.name), tmp_re.fullmatch(path.name)
        match = old or tmp
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        if _pid_alive(int(match.group(1))):
            continue
        try:
            if tmp is not None:
                shutil.rmtree(path)
            elif not dest.exists() and not dest.is_symlink():
                check_replaceable(path)
                os.replace(path, dest)
            else:
                check_replaceable(path)
                shutil.rmtree(path)
        except (OSError, ModelFileError):
            continue


def make_temp_dir(dest: Path, shown: str | Path | None = None) -> Path:
    """A new temporary folder next to ``dest`` (``.NAME.PID.*.tmp``), after recovering what a
    killed writer left there (:func:`recover_folder`)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(dest)
        prefix = f".{dest.name}.{os.getpid()}."
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=dest.parent))
    except OSError as err:
        raise write_error(shown or dest, err) from None


def model_dir_kind(path: str | Path) -> str | None:
    """``"acoustic model"``, ``"LSTM LM"``, an ONNX kind or None: what kind of exported folder
    ``path`` is, judged by its files (``model.safetensors`` with ``config.yaml`` or ``lm.yaml``;
    ``model.onnx`` with a ``config.json`` naming its kind)."""
    path = Path(path)
    if (path / ONNX_FILE).is_file() and (path / ONNX_CONFIG_FILE).is_file():
        return _onnx_kind(path / ONNX_CONFIG_FILE)
    if not (path / WEIGHTS_FILE).is_file():
        return None
    if (path / CONFIG_FILE).is_file():
        return ACOUSTIC_MODEL
    if (path / LM_CONFIG_FILE).is_file():
        return LSTM_LM
    return None


def source_kind(src: str | Path) -> str:
    """``"acoustic model"`` or ``"LSTM LM"``: the kind of the exported (safetensors) folder
    ``src`` that a command reads; ModelFileError naming it when it is neither."""
    kind = model_dir_kind(src)
    if kind not in (ACOUSTIC_MODEL, LSTM_LM):
        raise ModelFileError(
            f"{src}: not an exported model or LM folder (no model.safetensors "
            "with config.yaml or lm.yaml)"
        )
    return kind  # type: ignore[return-value]


def _onnx_kind(config: Path) -> str | None:
    """The ``kind`` an ONNX folder's ``config.json`` states, or None when it is not ours."""
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) and data.get("format") == "asr-onnx" else None
    return kind if isinstance(kind, str) else None


def check_replaceable(path: Path, shown: Path | None = None) -> None:
    """Raise unless ``path`` is an exported model/LM folder holding only the files we write
    (``shown``: the name to give in the message, default ``path``)."""
    foreign = sorted(p.name for p in path.iterdir() if not _ours(p))
    if foreign or model_dir_kind(path) is None:
        holds = f"it holds {', '.join(foreign[:3])}" if foreign else "no model files"
        raise ModelFileError(
            f"{shown or path}: not a model folder written by asr ({holds}); refusing to "
            "replace it, whatever the flags: choose another output folder"
        )


def _ours(path: Path) -> bool:
    """A file we write in a model folder, or its ``lm/`` folder holding only LM files."""
    if path.name == LM_DIR and path.is_dir() and not path.is_symlink():
        names_ok = all(p.name in MODEL_DIR_NAMES and p.is_file() for p in path.iterdir())
        return names_ok and model_dir_kind(path) is not None
    return path.name in MODEL_DIR_NAMES and path.is_file()


def check_model_out(
    out: str | Path, kind: str, overwrite: bool = False, sources: tuple[str | Path, ...] = ()
) -> Path:
    """Check, before any work, that a model folder of ``kind`` may be written at ``out``.

    Allowed: a new folder, an empty folder, or (with ``overwrite``) an exported folder of the
    same kind holding nothing but the files we write. Never replaced, whatever the flag: a
    folder holding anything else (an experiment with checkpoints, a user's files), a model of
    another kind, a source of the command, or the current working folder.

    Args:
        out: the output folder.
        kind: ``"acoustic model"`` or ``"LSTM LM"`` (what will be written).
        overwrite: the user passed ``--overwrite``.
        sources: folders/files the command reads; ``out`` may not be or hold one of them.
    Returns:
        ``out`` as an absolute, resolved path (so ``.`` has a name).
    Raises:
        ModelFileError / OutputError: one line naming ``out`` and the reason.
    """
    given = Path(out)  # named in messages as the user wrote it
    out = given.resolve()
    recover_folder(out)
    for source in sources:
        if same_or_inside(Path(source), out):
            raise ModelFileError(f"{given}: the output folder is or holds the source {source}")
    if out.exists() and not out.is_dir():
        raise ModelFileError(f"{given}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ModelFileError(
                f"{given}: exists and is not empty; pass {OVERWRITE_FLAG} to replace the "
                f"{kind} folder there"
            )
        check_replaceable(out, given)
        existing = model_dir_kind(out)
        if existing != kind:
            raise ModelFileError(
                f"{given}: holds an {existing}, not an {kind}; refusing to replace it "
                "(remove it yourself if that is what you want)"
            )
        if same_or_inside(Path.cwd(), out):
            raise ModelFileError(f"{given}: is the current folder; refusing to replace it")
    check_writable(given)
    return out


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder ``src`` onto ``dst``, keeping the old ``dst`` until it is done.

    ``src`` (from ``mkdtemp``, mode 0700) and its files get the usual umask permissions first.
    An empty ``dst`` (possibly the current folder) receives the files, config last; a non-empty
    one must be an exported folder holding only our files (:func:`check_replaceable`): nothing
    else is ever deleted.
    """
    from asr.io.atomic import current_umask

    mask = current_umask()
    for path in src.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(path, 0o666 & ~mask)
    os.chmod(src, 0o777 & ~mask)
    if not dst.exists():
        os.replace(src, dst)
        return
    if dst.is_dir() and not any(dst.iterdir()):
        configs = (CONFIG_FILE, LM_CONFIG_FILE, ONNX_CONFIG_FILE)
        for path in sorted(src.iterdir(), key=lambda p: p.name in configs):
            os.replace(path, dst / path.name)
        src.rmdir()
        return
    check_replaceable(dst)
    old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        os.replace(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_dtype(dtype: str, error: type[AsrError] = ModelFileError) -> torch.dtype:
    """The torch dtype of a stored-weight dtype name (:data:`WEIGHT_DTYPES`); ``error`` (default
    ModelFileError) naming the choices otherwise."""
    import torch

    if dtype not in WEIGHT_DTYPES:
        raise error(f"export dtype must be one of {list(WEIGHT_DTYPES)}, got {dtype!r}")
    return getattr(torch, dtype)


def check_format(fmt: str, version: int, expected: str, supported: int) -> None:
    """ValueError unless a saved folder's config states format ``expected`` at layout version
    ``supported`` (the ``format``/``version`` fields every config of a saved folder has)."""
    if fmt != expected:
        raise ValueError(f"format must be {expected!r}, got {fmt!r}")
    if version != supported:
        raise ValueError(f"unsupported version {version} (this asr reads {supported})")
