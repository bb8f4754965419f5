"""Models by name or path: the bundled default, the registry's downloads, recommended decoding.

``--model`` / ``asr.load_model`` take a model folder or a name from ``registry.yaml``
(:mod:`asr.pretrained.registry`; ``asr models`` lists them): ``default`` is the bundled model,
other names are downloaded and converted once into the cache (:mod:`asr.pretrained.cache`).
``asr/pretrained/default`` holds an exported model, and may hold ``decode.yaml`` (beam search
settings) and ``lm/`` (the LSTM LM they were tuned with); ``asr/pretrained/samples`` holds
sample audio. ``asr transcribe`` without decoder options decodes a model folder as it
recommends (:func:`bundled_decoding`).
"""

from __future__ import annotations

import os
from pathlib import Path

from asr.errors import AsrError

# Where the bundled default model lives (shipped with the package when available).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
# In a model folder: the recommended beam search settings and the LSTM LM they were tuned with.
BUNDLED_DECODE_CONFIG = "decode.yaml"
BUNDLED_LM_DIR = "lm"


class PretrainedError(AsrError):
    """No bundled model where one is needed."""


def _bundled_dir() -> Path:
    if not (DEFAULT_MODEL_DIR / "config.yaml").is_file():
        raise PretrainedError(
            f"no default model is bundled with this installation ({DEFAULT_MODEL_DIR} is "
            "missing): pass --model DIR, an exported model folder (e.g. egs/synth/exp/model)"
        )
    return DEFAULT_MODEL_DIR


def _is_name(text: str) -> bool:
    """True when ``text`` can only be a registry name (no folder of that name exists)."""
    return not Path(text).exists() and "/" not in text and os.sep not in text


def resolve_model_dir(
    model: str | Path | None, base_url: str | None = None, progress: bool = True
) -> Path:
    """The model folder to use for ``model``.

    Args:
        model: None or ``"default"`` (the bundled model, unless a folder ``default`` exists),
            an existing path, or a registry name (downloaded and imported into the cache once).
        base_url: base URL replacing the publishers' (default ``$ASR_BASE_URL``).
        progress: show a progress bar when downloading.
    Raises:
        RegistryError: a name that is neither a folder nor in the registry (lists the known).
    """
    if model is None:
        return _bundled_dir()
    text = str(model)
    if not _is_name(text):
        return Path(model)
    from asr.pretrained.cache import fetch_entry
    from asr.pretrained.registry import BUNDLED, NEMO, RegistryError, read_registry

    registry = read_registry()
    try:
        entry = registry.get(text)
    except RegistryError:
        known = ", ".join(registry.names(BUNDLED) + registry.names(NEMO))
        raise RegistryError(
            f"{text}: no such model folder, nor a known model name (known: {known}; see asr models)"
        ) from None
    if entry.kind == BUNDLED:
        return _bundled_dir()
    if entry.kind != NEMO:
        raise RegistryError(f"{text}: is a {entry.kind} language model, not an acoustic model")
    return fetch_entry(entry, base=base_url, progress=progress)


def resolve_lm(lm: str | None, base_url: str | None = None, progress: bool = True) -> str | None:
    """``lm`` itself (None, ``"none"``, a path), or the cached file of a registry KenLM name."""
    if lm is None or lm == "none" or not _is_name(lm):
        return lm
    from asr.pretrained.cache import fetch_entry
    from asr.pretrained.registry import KENLM, RegistryError, read_registry

    registry = read_registry()
    entry = registry.entries.get(lm)
    if entry is None or entry.kind != KENLM:
        known = ", ".join(registry.names(KENLM))
        raise RegistryError(
            f"{lm}: no such language model file or folder, nor a known language model name "
            f"(known: {known}; see asr models)"
        )
    return str(fetch_entry(entry, base=base_url, progress=progress))


def bundled_decoding(model_dir: str | Path) -> tuple[Path | None, Path | None]:
    """A model folder's recommended decoding: (its ``decode.yaml`` or None, its ``lm/`` LSTM LM
    folder or None). The LM is only used with the decode config that was tuned for it."""
    model_dir = Path(model_dir)
    config = model_dir / BUNDLED_DECODE_CONFIG
    if not config.is_file():
        return None, None
    from asr.lm.io import is_lstm_lm_dir

    lm = model_dir / BUNDLED_LM_DIR
    return config, (lm if is_lstm_lm_dir(lm) else None)
