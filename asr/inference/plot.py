"""Pictures: training curves of a run, and what the model hears and says for one utterance.

``plot_utterance`` draws three rows sharing the time axis: the model's input features (the
front-end's filterbank/MFCC frames, after its normalisation), the CTC posteriors as an image
(one row per symbol that ever gets probability >= ``min_posterior``; the blank on top), and the
recognised tokens written under the frames where they are emitted. The tokens and the title's
text come from the decoder given (``asr plot utterance`` passes the one ``asr transcribe`` would
use: a model folder's decode.yaml and LM, or the options given); the title names it.

matplotlib is in the ``train`` extra (``pip install 'asr[train]'``).

Example::

    plot_curves("exp/run1", "curves.png")
    model = asr.load_model("exp/model")
    plot_utterance(model.network, model.tokenizer, "utt.flac", "utt.png")   # greedy
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from asr.errors import AsrError
from asr.io.atomic import atomic_path

if TYPE_CHECKING:
    from asr.decode.base import Decoder
    from asr.decode.spec import DecodeSpec
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import Tokenizer

# Longest audio drawn by plot_utterance, seconds (a picture of an hour shows nothing).
MAX_UTTERANCE_S = 60.0


class PlotError(AsrError):
    """A picture cannot be drawn: matplotlib missing, no data."""


def pyplot() -> Any:
    """matplotlib.pyplot with the non-interactive Agg backend, or a one-line PlotError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(
            "matplotlib is not installed: pip install 'asr[train]' (or pip install matplotlib)"
        ) from None
    return plt


def plot_curves(exp_dir: str | Path, out: str | Path) -> Path:
    """Training and validation loss and validation WER/CER of a run, as PNG.

    Args:
        exp_dir: run folder holding ``log.jsonl`` (written by ``asr train``).
        out: PNG file to write (atomically).
    """
    from asr.train.logbook import LOG_FILE, plot_training_curves, read_log

    pyplot()
    records = read_log(exp_dir)
    if not records:
        raise PlotError(f"{Path(exp_dir) / LOG_FILE}: no training log (is this an asr train run?)")
    result = plot_training_curves(records, out)
    if result is None:
        raise PlotError(f"{Path(exp_dir) / LOG_FILE}: nothing to plot")
    return result


@torch.inference_mode()
def utterance_outputs(
    model: CTCModel, samples: np.ndarray, decoder: Decoder | None = None
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Features, posteriors and recognised tokens of one utterance.

    Args:
        samples: (samples,) float32 audio at the model's rate.
        decoder: what turns the posteriors into tokens (default None: the greedy path).
    Returns:
        features (frames, features), posteriors (out_frames, vocab) and the emitted
        ``(frame, token_id)`` pairs of the decoder's best hypothesis.
    """
    from asr.decode.greedy import greedy_decode

    model.eval()
    wave = torch.from_numpy(samples)[None].to(model.device)
    lengths = torch.tensor([wave.shape[1]], device=model.device)
    features, feature_lengths = model.frontend(wave, lengths)
    log_probs, out_lengths = model.forward_features(features, feature_lengths)
    if decoder is None:
        hyp = greedy_decode(log_probs, out_lengths)[0]
    else:
        hyp = decoder.decode(log_probs.float(), out_lengths)[0]
    if hyp.frames is None:
        raise PlotError("the decoder gives no token frames to draw: use --decoder greedy or beam")
    feats = features[0, : int(feature_lengths[0])].float().cpu().numpy()
    posteriors = log_probs[0, : int(out_lengths[0])].exp().float().cpu().numpy()
    return feats, posteriors, list(zip(hyp.frames, hyp.token_ids))


def decoding_label(spec: DecodeSpec) -> str:
    """A few words naming a decoding: ``"greedy"``, ``"beam 16 + LM"``, ``"kenlm beam 32"``."""
    if spec.decoder == "greedy":
        return "greedy"
    name = "beam" if spec.decoder == "beam" else f"{spec.decoder} beam"
    return f"{name} {spec.search.beam_size}{' + LM' if spec.lm else ''}"


def _label(piece: str) -> str:
    if piece == "<blank>":
        return "<b>"
    return "␣" if piece == " " else piece


def draw_utterance(
    features: np.ndarray,
    posteriors: np.ndarray,
    tokens: list[tuple[int, int]],
    tokenizer: Tokenizer,
    feature_shift_s: float,
    frame_shift_s: float,
    out: str | Path,
    title: str = "",
    min_posterior: float = 0.05,
) -> Path:
    """Draw features, posteriors and tokens (see the module docstring) into a PNG."""
    plt = pyplot()
    rows = [0] + [int(i) for i in np.flatnonzero(posteriors.max(axis=0) >= min_posterior) if i != 0]
    duration = len(posteriors) * frame_shift_s
    fig, (ax_f, ax_p, ax_t) = plt.subplots(
        3, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 3, 0.6]}
    )
    ax_f.imshow(
        features.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, len(features) * feature_shift_s, 0, features.shape[1]),
        interpolation="nearest",
    )
    ax_f.set(ylabel="feature", title=title)
    ax_p.imshow(
        posteriors[:, rows].T,
        origin="upper",
        aspect="auto",
        cmap="Greys",
        vmin=0.0,
        vmax=1.0,
        extent=(0, duration, len(rows), 0),
        interpolation="nearest",
    )
    ax_p.set_yticks(np.arange(len(rows)) + 0.5)
    ax_p.set_yticklabels([_label(tokenizer.vocab[i]) for i in rows], fontsize=7)
    ax_p.set_ylabel("CTC posterior")
    for k, (frame, token) in enumerate(tokens):
        x = (frame + 0.5) * frame_shift_s
        ax_p.axvline(x, color="tab:red", alpha=0.25, linewidth=0.8)
        ax_t.text(
            x,
            0.7 if k % 2 == 0 else 0.25,
            _label(tokenizer.vocab[token]),
            ha="center",
            va="center",
            fontsize=8,
            color="tab:red",
        )
    ax_t.set(yticks=[], xlabel="time (s)", xlim=(0, duration), ylim=(0, 1))
    ax_t.set_ylabel("tokens", rotation=0, ha="right", va="center")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(out)


def plot_utterance(
    model: CTCModel,
    tokenizer: Tokenizer,
    audio: str | Path,
    out: str | Path,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    decoder: Decoder | None = None,
    label: str = "greedy",
) -> Path:
    """Spectrogram-like features, CTC posteriors and recognised tokens of one utterance.

    Args:
        model: the acoustic model (torch: its front-end is drawn); tokenizer: its tokenizer.
        audio: audio file (any format, rate and channel count).
        out: PNG to write.
        offset_s, duration_s: draw only this segment (at most ``MAX_UTTERANCE_S`` seconds).
        decoder: how to decode (default None: greedy); label: its name in the title
            (:func:`decoding_label`).
    """
    from asr.io.audio import audio_info, load_audio

    pyplot()
    length = duration_s if duration_s is not None else audio_info(audio).duration_s - offset_s
    if length > MAX_UTTERANCE_S:
        raise PlotError(
            f"{audio}: {length:.1f} s is too long to draw (at most {MAX_UTTERANCE_S:.0f} s): "
            "pick a segment with --offset/--duration"
        )
    rate = model.cfg.frontend.sample_rate_hz
    samples, _ = load_audio(audio, rate, offset_s, duration_s)
    features, posteriors, tokens = utterance_outputs(model, samples, decoder)
    text = tokenizer.decode([t for _, t in tokens]) or "(nothing recognised)"
    title = textwrap.fill(f"{Path(audio).name}, {label}: {text}", 120)
    return draw_utterance(
        features,
        posteriors,
        tokens,
        tokenizer,
        model.cfg.frontend.frame_shift_ms / 1000.0,
        model.frame_shift_s,
        out,
        title=title,
    )
