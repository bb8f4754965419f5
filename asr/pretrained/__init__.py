"""The models bundled with the package: the default model folder and its recommended decoding.

``asr/pretrained/default`` holds an exported model, and may hold ``decode.yaml`` (beam search
settings) and ``lm/`` (the LSTM LM they were tuned with); ``asr/pretrained/samples`` holds
sample audio. ``asr transcribe`` without decoder options decodes a model folder as it
recommends (:func:`bundled_decoding`).
"""

from __future__ import annotations

from pathlib import Path

from asr.errors import AsrError

# Where the bundled default model lives (shipped with the package when available).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
# In a model folder: the recommended beam search settings and the LSTM LM they were tuned with.
BUNDLED_DECODE_CONFIG = "decode.yaml"
BUNDLED_LM_DIR = "lm"


class PretrainedError(AsrError):
    """No bundled model where one is needed."""


def resolve_model_dir(model: str | Path | None) -> Path:
    """The model folder to use: ``model``, or the bundled default when it is None."""
    if model is not None:
        return Path(model)
    if not (DEFAULT_MODEL_DIR / "config.yaml").is_file():
        raise PretrainedError(
            f"no default model is bundled with this installation ({DEFAULT_MODEL_DIR} is "
            "missing): pass --model DIR, an exported model folder (e.g. egs/synth/exp/model)"
        )
    return DEFAULT_MODEL_DIR


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
