"""Import NVIDIA NeMo character CTC checkpoints (QuartzNet, Jasper) into our model directories.

A ``.nemo`` file is a tar archive holding ``model_config.yaml`` (the model's options) and
``model_weights.ckpt`` (a ``torch.save``'d state dict). Supported: ``EncDecCTCModel`` with an
``AudioToMelSpectrogramPreprocessor``, a ``ConvASREncoder`` (QuartzNet/Jasper blocks: separable
or dense convolutions, residual / dense residual / strided residual, dilation, stride,
squeeze-and-excitation with global context) and a ``ConvASRDecoder`` over a character
vocabulary. Anything else (BPE tokenizers, other encoders, block options we do not implement) is
a one-line :class:`NemoImportError` naming the config key.

Safety: the weights file is a pickle. It is read with ``torch.load(..., weights_only=True)``,
which only rebuilds tensors and plain containers and refuses any other object, so a crafted
archive cannot run code. Archive members are read in memory, never extracted to disk, and only
after their declared sizes pass the bounds below (a gzip bomb is refused from its headers).

Mapping: NeMo ``encoder.encoder.N.*`` is our ``encoder.blocks.N.*`` (same sub-module layout),
``decoder.decoder_layers.0.*`` is ``head.conv.*`` with its output rows permuted: NeMo puts the
CTC blank last (index ``len(labels)``), we put it first (index 0), so our row ``i + 1`` is NeMo's
row ``i``. The preprocessor's stored filterbank and window are checked against ours. The config
mapping itself is :mod:`asr.models.nemo_config`.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import re
import tarfile
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch import Tensor

from asr.models.ctc import CTCModel, ModelConfig
from asr.models.nemo_config import (  # noqa: F401 (re-exported)
    NEMO_NORMALIZE_EPS,
    NemoImportError,
    frontend_config,
    map_config,
    nemo_kernel_size,
)
from asr.text.tokenizer import BLANK, CharTokenizer

CONFIG_MEMBER = "model_config.yaml"
WEIGHTS_MEMBER = "model_weights.ckpt"

# Bounds on what an archive may make us hold in memory. Real archives: a config of tens of KB,
# weights up to ~1.3 GB (Jasper 10x5, 333 M parameters), stored plain or gzipped (float weights
# shrink by a few percent at most), and a handful of members.
MAX_CONFIG_BYTES = 4 << 20
MAX_WEIGHTS_BYTES = 4 << 30
MAX_MEMBERS = 1000
# The members read may expand to at most this many times the archive's size on disk, or to
# MIN_EXPANSION_BYTES, whichever is larger (a gzip bomb of zeros expands ~1000 times).
MAX_EXPANSION_RATIO = 20
MIN_EXPANSION_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class NemoModel:
    """What a ``.nemo`` archive holds once mapped: our config, vocabulary and weights."""

    config: ModelConfig  # front-end + encoder options
    labels: tuple[str, ...]  # NeMo's vocabulary in NeMo's order (blank not included)
    state: dict[str, Tensor]  # NeMo's state dict, unchanged


# ----------------------------------------------------------------------------- archive


def read_archive(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read ``model_config.yaml`` and ``model_weights.ckpt`` from a ``.nemo`` tar (any
    compression; member names with or without a ``./`` prefix).

    Returns:
        (config mapping, state dict of tensors).
    Raises:
        NemoImportError: not a tar, a member missing, bad YAML, or a weights file that holds
            anything but tensors (``torch.load(weights_only=True)`` refuses it).
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as tar:
            members = _list_members(path, tar)
            for name in (CONFIG_MEMBER, WEIGHTS_MEMBER):
                if name not in members:
                    raise NemoImportError(f"{path}: no {name} in the archive (is it a .nemo?)")
            _check_sizes(path, members[CONFIG_MEMBER].size, members[WEIGHTS_MEMBER].size)
            blobs = {}
            for name in (CONFIG_MEMBER, WEIGHTS_MEMBER):
                handle = tar.extractfile(members[name])
                assert handle is not None  # regular files always have a handle
                blobs[name] = handle.read()
    except tarfile.ReadError:  # tarfile's message lists every compression it tried
        raise NemoImportError(
            f"{path}: cannot read the .nemo archive: {_not_a_tar(path)}"
        ) from None
    except (OSError, tarfile.TarError) as err:
        problem = (getattr(err, "strerror", None) or str(err)).splitlines()[0]
        raise NemoImportError(f"{path}: cannot read the .nemo archive: {problem}") from None
    try:
        cfg = yaml.safe_load(blobs[CONFIG_MEMBER].decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        problem = str(err).splitlines()[0]
        raise NemoImportError(f"{path}: {CONFIG_MEMBER} is not valid YAML: {problem}") from None
    if not isinstance(cfg, dict):
        raise NemoImportError(f"{path}: {CONFIG_MEMBER} is not a mapping")
    return cfg, _load_weights(path, blobs[WEIGHTS_MEMBER])


def _not_a_tar(path: Path) -> str:
    """What a file that is no (compressed) tar archive is, in a few words."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError as err:
        return str(err.strerror or err)
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return "it is an HTML page (a login or error page saved instead of the model?)"
    if not head:
        return "the file is empty"
    return "not a tar file (possibly compressed), as a .nemo is"


def _refusal_reason(err: Exception) -> str:
    """The reason in torch's refusal, without its advice to load unsafely (never to be given)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    match = re.search(r"WeightsUnpickler error: (.*?\.)(?:\s|$)", text)
    if match:
        return match.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or "weights_only" in lines[0] or "can still be loaded" in lines[0]:
        return type(err).__name__
    return lines[0]


def _list_members(path: Path, tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular-file members by name (``./`` prefix removed); at most ``MAX_MEMBERS`` headers."""
    members: dict[str, tarfile.TarInfo] = {}
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise NemoImportError(f"{path}: more than {MAX_MEMBERS} members: not a .nemo archive")
        if member.isfile():
            members[member.name.removeprefix("./")] = member
    return members


def _check_sizes(path: Path, config_bytes: int, weights_bytes: int) -> None:
    """Refuse members whose declared sizes exceed the bounds (before reading them)."""
    mb = 1 << 20
    if config_bytes > MAX_CONFIG_BYTES:
        raise NemoImportError(
            f"{path}: {CONFIG_MEMBER} is {config_bytes / mb:.0f} MB, more than the "
            f"{MAX_CONFIG_BYTES / mb:.0f} MB a model config can be"
        )
    if weights_bytes > MAX_WEIGHTS_BYTES:
        raise NemoImportError(
            f"{path}: {WEIGHTS_MEMBER} is {weights_bytes / mb:.0f} MB, more than the "
            f"{MAX_WEIGHTS_BYTES / mb:.0f} MB limit for a QuartzNet/Jasper checkpoint"
        )
    allowed = max(MIN_EXPANSION_BYTES, MAX_EXPANSION_RATIO * path.stat().st_size)
    if config_bytes + weights_bytes > allowed:
        raise NemoImportError(
            f"{path}: its members expand to {(config_bytes + weights_bytes) / mb:.0f} MB from "
            f"{path.stat().st_size / mb:.1f} MB on disk (over {MAX_EXPANSION_RATIO}x): "
            "refusing a compression bomb"
        )


def _load_weights(path: Path, blob: bytes) -> dict[str, Tensor]:
    """``torch.load(weights_only=True)`` of the weights; anything but tensors is refused."""
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as err:
        raise NemoImportError(
            f"{path}: {WEIGHTS_MEMBER} refused by the safe loader (weights_only=True; "
            f"nothing is unpickled beyond tensors): {_refusal_reason(err)}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a Lightning checkpoint rather than a bare state dict
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise NemoImportError(f"{path}: {WEIGHTS_MEMBER} is not a state dict of tensors")
    return state


# ----------------------------------------------------------------------------- weights


def _rename(key: str) -> str | None:
    """Our name for a NeMo state-dict key (None: a preprocessor buffer, checked separately)."""
    if key.startswith("preprocessor."):
        return None
    if key.startswith("encoder.encoder."):
        return "encoder.blocks." + key.removeprefix("encoder.encoder.")
    if key.startswith("decoder.decoder_layers.0."):
        return "head.conv." + key.removeprefix("decoder.decoder_layers.0.")
    return key  # anything else is reported as unexpected by map_weights


def blank_first(tensor: Tensor) -> Tensor:
    """Move the last row (NeMo's blank) to the front: rows ``[blank, label_0, label_1, ...]``."""
    return torch.cat([tensor[-1:], tensor[:-1]], dim=0)


def map_weights(state: dict[str, Tensor], model: CTCModel) -> dict[str, Tensor]:
    """NeMo's state dict renamed, head rows permuted and cast to our model's tensors.

    Raises:
        NemoImportError: a missing or unexpected tensor, or a shape that does not match.
    """
    expected = model.state_dict()
    ours = {name: t for name, t in expected.items() if not name.startswith("frontend.")}
    mapped: dict[str, Tensor] = {}
    for key, tensor in state.items():
        name = _rename(key)
        if name is None:
            continue
        if name not in ours:
            raise NemoImportError(f"model_weights.ckpt: unexpected tensor {key}")
        if name.startswith("head.conv."):
            tensor = blank_first(tensor)
        if tuple(tensor.shape) != tuple(ours[name].shape):
            raise NemoImportError(
                f"model_weights.ckpt: {key} has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(ours[name].shape)}"
            )
        mapped[name] = tensor.to(ours[name].dtype)
    missing = sorted(set(ours) - set(mapped))
    if missing:
        raise NemoImportError(f"model_weights.ckpt: missing tensors, e.g. {missing[:3]}")
    return mapped


def check_frontend_buffers(state: dict[str, Tensor], model: CTCModel) -> None:
    """Compare NeMo's stored mel filterbank and window with the ones our front-end builds.

    A mismatch means the preprocessor options were mapped wrongly (or the checkpoint was made
    by a NeMo whose filterbank differs), so features would not match.
    """
    ours = {
        "preprocessor.featurizer.fb": model.frontend.mel_matrix.T,  # (mels, bins)
        "preprocessor.featurizer.window": model.frontend.window,
    }
    for key, mine in ours.items():
        theirs = state.get(key)
        if theirs is None:
            continue
        theirs = theirs.to(mine.dtype)
        if theirs.numel() == mine.numel():
            theirs = theirs.reshape(mine.shape)  # NeMo's fb is (1, mels, bins)
        same = theirs.shape == mine.shape and torch.allclose(theirs, mine, rtol=1e-4, atol=1e-6)
        if not same:
            raise NemoImportError(
                f"model_weights.ckpt: {key} differs from the front-end built from "
                "model_config.yaml preprocessor (unsupported preprocessor behaviour)"
            )


# ----------------------------------------------------------------------------- import


def load_nemo(path: str | Path) -> NemoModel:
    """Read and map a ``.nemo`` archive (see the module docstring)."""
    cfg, state = read_archive(path)
    try:
        config, labels = map_config(cfg)
    except NemoImportError as err:
        raise NemoImportError(f"{path}: {CONFIG_MEMBER}: {err}") from None
    return NemoModel(config=config, labels=labels, state=state)


def build_model(
    nemo: NemoModel, case: Literal["keep", "upper"] = "keep"
) -> tuple[CTCModel, CharTokenizer]:
    """Our eval-mode model and tokenizer holding the NeMo weights.

    Args:
        nemo: from :func:`load_nemo`.
        case: ``"keep"`` NeMo's labels as they are; ``"upper"`` upper-cases them (NeMo's English
            models use a-z, our text normalisation and language models use A-Z).
    """
    labels = [s.upper() for s in nemo.labels] if case == "upper" else list(nemo.labels)
    if len(set(labels)) != len(labels):
        raise NemoImportError("decoder.vocabulary: upper-casing makes two labels equal")
    if BLANK in labels:
        raise NemoImportError(f"decoder.vocabulary: contains our blank symbol {BLANK!r}")
    tokenizer = CharTokenizer([BLANK, *labels])
    model = CTCModel(nemo.config, tokenizer.vocab_size, load_stats=False)
    check_frontend_buffers(nemo.state, model)
    mapped = map_weights(nemo.state, model)
    model.load_state_dict({**model.state_dict(), **mapped}, strict=True)
    return model.eval(), tokenizer


def import_nemo(
    path: str | Path,
    out_dir: str | Path,
    case: Literal["keep", "upper"] = "keep",
    dtype: Literal["float32", "float16", "bfloat16"] = "float32",
    overwrite: bool = False,
) -> tuple[CTCModel, CharTokenizer]:
    """Convert a ``.nemo`` file into one of our model directories (``asr import-nemo``).

    Args:
        path: the ``.nemo`` archive.
        out_dir: the model directory to write: new or empty, checked before the archive is
            read (:func:`asr.io.folders.check_model_out`).
        case: label case (see :func:`build_model`).
        dtype: parameter storage dtype of the exported weights.
        overwrite: replace an exported acoustic model folder at ``out_dir`` (nothing else).
    Returns:
        (model, tokenizer) as exported.
    """
    from asr.io.folders import ACOUSTIC_MODEL, check_model_out
    from asr.models.io import export_model

    check_model_out(out_dir, ACOUSTIC_MODEL, overwrite=overwrite, sources=(path,))
    model, tokenizer = build_model(load_nemo(path), case)
    export_model(model, tokenizer, out_dir, dtype=dtype)
    return model, tokenizer
