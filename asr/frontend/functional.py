"""Pure front-end functions: framing, windows, spectra, mel filterbanks, MFCC, deltas, CMVN.

Framing, windows and spectra live here; filterbanks and the DCT in :mod:`asr.frontend.filterbank`,
deltas and normalisation in :mod:`asr.frontend.postprocess`; all are re-exported here.

Every function works on batches: waveforms are ``(batch, samples)`` with a ``lengths`` tensor
``(batch,)`` of valid samples, features are ``(batch, frames, features)`` with ``(batch,)`` valid
frame counts. They run on CPU or CUDA, in float32 or float64 (the dtype of the input), and are
padding-invariant: samples or frames beyond an utterance's length never change its valid output.

Conventions follow the references they are tested against: Kaldi (``torchaudio.compliance.kaldi``)
for snip-edges framing, per-frame DC removal and pre-emphasis, the povey window, HTK mel scale with
triangles in the mel domain, ``log(max(x, eps))`` and the MFCC lifter; librosa / NeMo for centred
frames, the Slaney mel scale and area normalisation, ``log(x + guard)`` and per-feature
normalisation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from asr.frontend.filterbank import (
    MelScale,
    dct_matrix,
    hz_to_mel,
    lifter_coefficients,
    mel_filterbank,
    mel_to_hz,
)
from asr.frontend.postprocess import (
    add_deltas,
    compute_deltas,
    global_cmvn,
    length_mask,
    mask_frames,
    per_feature_normalize,
    utterance_cmvn,
)

WindowKind = Literal["hann", "hamming", "povey", "blackman", "rectangular"]
PadMode = Literal["zeros", "reflect", "symmetric"]

# Kaldi's floor for log energies and log filterbanks: numeric_limits<float>::epsilon().
KALDI_EPSILON = 1.1920928955078125e-07

__all__ = [
    "KALDI_EPSILON",
    "MelScale",
    "PadMode",
    "WindowKind",
    "add_deltas",
    "compute_deltas",
    "dct_matrix",
    "dither",
    "feature_window",
    "fft_power",
    "frame_count",
    "frame_offset",
    "frame_signal",
    "global_cmvn",
    "hz_to_mel",
    "length_mask",
    "lifter_coefficients",
    "log_compress",
    "log_energy",
    "mask_frames",
    "mel_filterbank",
    "mel_to_hz",
    "next_power_of_two",
    "num_frames",
    "pad_signal",
    "per_feature_normalize",
    "preemphasis",
    "preemphasis_frames",
    "reflect_index",
    "remove_dc_offset",
    "samples_from_ms",
    "spectrum",
    "utterance_cmvn",
    "windowed_frames",
    "zero_beyond",
]


def samples_from_ms(duration_ms: float, sample_rate_hz: int) -> int:
    """Samples in ``duration_ms`` at ``sample_rate_hz``, truncated as Kaldi does (25 ms -> 400)."""
    return int(sample_rate_hz * duration_ms / 1000.0 + 1e-6)


def next_power_of_two(n: int) -> int:
    """Smallest power of two ``>= n`` (``n >= 1``)."""
    return 1 << max(0, (n - 1).bit_length())


def dither(
    waveforms: Tensor, lengths: Tensor, amount: float, generator: torch.Generator | None = None
) -> Tensor:
    """Add Gaussian noise of standard deviation ``amount`` to the valid samples.

    Args:
        waveforms: ``(batch, samples)``.
        lengths: ``(batch,)`` valid samples per row.
        amount: noise standard deviation (0 returns the input unchanged).
        generator: optional ``torch.Generator`` on the waveforms' device for reproducible noise.

    Returns:
        ``(batch, samples)``; samples beyond each length are left as they were.
    """
    if amount == 0.0:
        return waveforms
    noise = torch.randn(
        waveforms.shape, generator=generator, device=waveforms.device, dtype=waveforms.dtype
    )
    noise.mul_(amount)
    return waveforms + zero_beyond(noise, lengths)


def preemphasis(waveforms: Tensor, lengths: Tensor, coeff: float) -> Tensor:
    """Signal-level pre-emphasis as NeMo does: ``y[0] = x[0]``, ``y[n] = x[n] - coeff * x[n-1]``.

    Args:
        waveforms: ``(batch, samples)``.
        lengths: ``(batch,)`` valid samples; the output is zero beyond them.
        coeff: pre-emphasis coefficient (0 disables the filter, but still zeroes padding).

    Returns:
        ``(batch, samples)``.
    """
    out = torch.empty_like(waveforms)
    if waveforms.shape[1]:
        out[:, 0] = waveforms[:, 0]
    torch.sub(waveforms[:, 1:], waveforms[:, :-1], alpha=coeff, out=out[:, 1:])
    return zero_beyond(out, lengths)


def zero_beyond(x: Tensor, lengths: Tensor, start: int = 0) -> Tensor:
    """Zero ``x[b, start + lengths[b]:]`` in place for every row and return ``x``.

    On CPU a slice per short row (no mask tensor: large temporaries cost page faults), on
    other devices one masked fill.
    """
    total = x.shape[1] - start
    if x.device.type == "cpu":
        for row, n in enumerate(lengths.tolist()):
            if n < total:
                x[row, start + n :] = 0.0
        return x
    mask = length_mask(lengths.to(x.device), total)
    x[:, start:].masked_fill_(~mask, 0.0)
    return x


def num_frames(
    lengths: Tensor,
    frame_length: int,
    frame_shift: int,
    snip_edges: bool = True,
    center: bool = False,
    center_end_frame: bool = True,
) -> Tensor:
    """Frames per utterance for ``lengths`` samples (0 for an empty utterance).

    - ``center``: librosa centred frames, ``1 + L // shift``; with ``center_end_frame=False``
      the frame centred on sample ``L`` is not counted, ``L // shift`` (NeMo's ``get_seq_len``,
      ``(L + 2 * (n_fft // 2) - n_fft) // shift``, checked against nemo_toolkit 3.0).
    - ``snip_edges`` (Kaldi default): only frames that fit, ``1 + (L - frame_length) // shift``, and
      0 frames when ``L < frame_length``.
    - otherwise Kaldi's ``snip_edges=false``: ``(L + shift // 2) // shift``.
    """
    lengths = lengths.long()
    if center:
        frames = torch.div(lengths, frame_shift, rounding_mode="floor") + int(center_end_frame)
    elif snip_edges:
        frames = 1 + torch.div(lengths - frame_length, frame_shift, rounding_mode="floor")
    else:
        frames = torch.div(lengths + frame_shift // 2, frame_shift, rounding_mode="floor")
    return torch.where(lengths > 0, frames.clamp(min=0), torch.zeros_like(frames))


def frame_count(
    length: int,
    frame_length: int,
    frame_shift: int,
    snip_edges: bool,
    center: bool,
    center_end_frame: bool = True,
) -> int:
    """:func:`num_frames` for one length given as a Python int."""
    if length <= 0:
        return 0
    if center:
        return length // frame_shift + int(center_end_frame)
    if snip_edges:
        return 0 if length < frame_length else 1 + (length - frame_length) // frame_shift
    return (length + frame_shift // 2) // frame_shift


def frame_offset(
    frame_length: int, frame_shift: int, snip_edges: bool, center: bool, n_fft: int
) -> int:
    """Samples of padding before the first frame: frame ``t`` starts at ``t * shift - offset``."""
    if center:  # torch.stft / librosa centre an n_fft frame, the window centred inside it
        return n_fft // 2 - (n_fft - frame_length) // 2
    if snip_edges:
        return 0
    return frame_length // 2 - frame_shift // 2


def reflect_index(index: Tensor, lengths: Tensor, mode: PadMode) -> Tensor:
    """Map sample indices outside ``[0, L)`` back inside by reflection about each row's edges.

    ``symmetric`` repeats the edge sample (Kaldi: ``x[-1] = x[0]``), ``reflect`` does not
    (numpy / torch: ``x[-1] = x[1]``); reflection is periodic, so any index maps inside.

    Args:
        index: ``(batch, n)`` integer indices (may be negative or ``>= L``).
        lengths: ``(batch,)`` row lengths (values < 1 are treated as 1).
        mode: ``"symmetric"`` or ``"reflect"``.
    """
    length = lengths.clamp(min=1)[:, None]
    if mode == "symmetric":
        period = 2 * length
        m = torch.remainder(index, period)
        return torch.where(m >= length, period - 1 - m, m)
    period = (2 * length - 2).clamp(min=1)
    m = torch.remainder(index, period)
    return torch.where(m >= length, period - m, m).clamp(max=length - 1)


def pad_signal(
    waveforms: Tensor,
    lengths: Tensor,
    frame_length: int,
    frame_shift: int,
    offset: int,
    frames: Tensor,
    pad_mode: PadMode = "zeros",
) -> Tensor:
    """Pad each row at its own edges so that frame ``t`` is ``[t * shift, t * shift + length)``.

    Frame ``t`` of a row holds samples ``t * frame_shift - offset + [0, frame_length)`` of the
    input; samples before 0 or at/after the row's length come from ``pad_mode``: ``zeros``,
    ``reflect`` or ``symmetric`` (see :func:`reflect_index`). Without padding (Kaldi
    ``snip_edges``) the input itself is returned.

    Args:
        waveforms: ``(batch, samples)``.
        lengths: ``(batch,)`` valid samples.
        frame_length: samples per frame.
        frame_shift: samples between frame starts.
        offset: samples of padding before the first frame (:func:`frame_offset`).
        frames: ``(batch,)`` frames per row (:func:`num_frames`); later frames are garbage.
        pad_mode: how samples outside a row are filled.

    Returns:
        ``(batch, W)`` with ``W >= (max(frames) - 1) * frame_shift + frame_length``.
    """
    batch, total = waveforms.shape
    lengths = lengths.to(waveforms.device).long()
    counts, lens = frames.tolist(), lengths.tolist()
    max_frames = max(counts, default=0)
    # Samples needed past each row's end by its last valid frame.
    need = [(f - 1) * frame_shift - offset + frame_length - n for f, n in zip(counts, lens)]
    right = max(max(need), 0) if max_frames else 0
    if offset == 0 and right == 0:
        padded = waveforms
    elif pad_mode == "zeros":
        padded = waveforms.new_empty(batch, max(offset, 0) + total + right)
        padded[:, : max(offset, 0)] = 0.0
        padded[:, max(offset, 0) : max(offset, 0) + total] = waveforms
        padded[:, max(offset, 0) + total :] = 0.0
        zero_beyond(padded, lengths, start=max(offset, 0))
    else:
        padded = waveforms.new_zeros(batch, max(offset, 0) + total + right)
        padded[:, max(offset, 0) : max(offset, 0) + total] = waveforms
        if offset > 0:
            left = torch.arange(-offset, 0, device=waveforms.device).expand(batch, offset)
            padded[:, :offset] = waveforms.gather(1, reflect_index(left, lengths, pad_mode))
        if right > 0:
            pos = lengths[:, None] + torch.arange(right, device=waveforms.device)[None, :]
            src = reflect_index(pos, lengths, pad_mode).clamp(max=total - 1)
            padded.scatter_(1, pos + max(offset, 0), waveforms.gather(1, src))
    if offset < 0:  # the first frame starts after sample 0
        padded = padded[:, -offset:]
    needed = max(max_frames - 1, 0) * frame_shift + frame_length
    if padded.shape[1] < needed:
        padded = torch.nn.functional.pad(padded, (0, needed - padded.shape[1]))
    return padded


def frame_signal(
    waveforms: Tensor,
    lengths: Tensor,
    frame_length: int,
    frame_shift: int,
    offset: int,
    frames: Tensor,
    pad_mode: PadMode = "zeros",
) -> Tensor:
    """Cut ``(batch, samples)`` into frames ``(batch, max(frames), frame_length)``.

    A strided view of :func:`pad_signal`'s output (same arguments); frames beyond a row's
    count hold garbage.
    """
    max_frames = int(frames.max()) if frames.numel() else 0
    padded = pad_signal(waveforms, lengths, frame_length, frame_shift, offset, frames, pad_mode)
    return padded.unfold(1, frame_length, frame_shift)[:, :max_frames]


def windowed_frames(
    signal: Tensor,
    frame_length: int,
    frame_shift: int,
    window: Tensor,
    n_fft: int,
    remove_dc: bool = False,
    preemph: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Frames of ``signal`` with DC removal, per-frame pre-emphasis and window, zero-padded.

    Equal to ``remove_dc_offset`` -> ``preemphasis_frames`` -> ``* window`` -> pad to ``n_fft``
    on :func:`frame_signal`'s frames, but fused into about two passes over the frames: the
    pre-emphasis runs on the signal once (frame column 0 is then corrected), and the mean is
    removed after it: ``P(x - m) = P x - (1 - preemph) m``.

    Args:
        signal: ``(batch, W)``, frame ``t`` at ``[t * frame_shift, t * frame_shift + length)``
            (see :func:`pad_signal`); every ``frame_length``-long step is a frame.
        frame_length: samples per frame.
        frame_shift: samples between frame starts.
        window: ``(frame_length,)``.
        n_fft: padded frame size (``>= frame_length``).
        remove_dc: subtract each frame's mean first (Kaldi).
        preemph: Kaldi per-frame pre-emphasis coefficient (0: none).

    Returns:
        ``(batch, frames, n_fft)`` windowed frames, and the raw frames ``(batch, frames,
        frame_length)`` (a strided view of ``signal``).
    """
    raw = signal.unfold(1, frame_length, frame_shift)
    out = signal.new_empty(*raw.shape[:2], n_fft)
    out[..., frame_length:] = 0.0
    body = out[..., :frame_length]
    source = raw
    if preemph != 0.0:
        emph = torch.empty_like(signal)
        emph[:, 0] = signal[:, 0]
        torch.sub(signal[:, 1:], signal[:, :-1], alpha=preemph, out=emph[:, 1:])
        source = emph.unfold(1, frame_length, frame_shift)
    torch.mul(source, window, out=body)
    mean = raw.mean(dim=-1, keepdim=True) if remove_dc else None
    if mean is not None:
        body.addcmul_(mean, window, value=-(1.0 - preemph))
    if preemph != 0.0 and float(window[0]) != 0.0:  # column 0: x[0] - preemph * x[0]
        first = raw[..., 0] - mean[..., 0] if mean is not None else raw[..., 0]
        body[..., 0] = (1.0 - preemph) * window[0] * first
    return out, raw


def fft_power(spec: Tensor, power: float = 2.0) -> Tensor:
    """``|X|^power`` of a complex spectrum (``re^2 + im^2`` for power 2)."""
    squares = torch.view_as_real(spec).square()
    out = torch.add(squares[..., 0], squares[..., 1])
    return out if power == 2.0 else out.pow_(power / 2.0)


def remove_dc_offset(frames: Tensor) -> Tensor:
    """Subtract each frame's mean, ``(..., frame_length)`` -> same shape (Kaldi)."""
    return frames - frames.mean(dim=-1, keepdim=True)


def preemphasis_frames(frames: Tensor, coeff: float) -> Tensor:
    """Kaldi's per-frame pre-emphasis: ``y[j] = x[j] - coeff * x[max(j - 1, 0)]``."""
    if coeff == 0.0:
        return frames
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    return frames - coeff * previous


def log_energy(frames: Tensor, energy_floor: float = 0.0) -> Tensor:
    """Kaldi's frame log energy ``log(max(sum x^2, eps))``, floored at ``log(energy_floor)``.

    Args:
        frames: ``(..., frame_length)``.
        energy_floor: absolute energy floor (0 disables it).

    Returns:
        ``(...)``.
    """
    energy = frames.pow(2).sum(dim=-1).clamp(min=KALDI_EPSILON).log()
    if energy_floor > 0.0:
        energy = energy.clamp(min=math.log(energy_floor))
    return energy


def feature_window(
    kind: WindowKind,
    length: int,
    periodic: bool = False,
    blackman_coeff: float = 0.42,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Window of ``length`` samples, ``(length,)``.

    ``hann``/``hamming`` are symmetric (Kaldi, NeMo) unless ``periodic`` (librosa); ``povey`` is
    Kaldi's ``hann ** 0.85``; ``blackman`` uses Kaldi's ``blackman_coeff``.
    """
    n = torch.arange(length, dtype=torch.float64)
    denom = length if periodic else max(length - 1, 1)
    phase = 2.0 * math.pi * n / denom
    if kind in ("hann", "povey"):
        window = 0.5 - 0.5 * torch.cos(phase)
        if kind == "povey":
            window = window.pow(0.85)
    elif kind == "hamming":
        window = 0.54 - 0.46 * torch.cos(phase)
    elif kind == "blackman":
        a = blackman_coeff
        window = a - 0.5 * torch.cos(phase) + (0.5 - a) * torch.cos(2.0 * phase)
    elif kind == "rectangular":
        window = torch.ones(length, dtype=torch.float64)
    else:
        raise ValueError(f"unknown window {kind!r}")
    return window.to(dtype=dtype, device=device)


def spectrum(frames: Tensor, window: Tensor, n_fft: int, power: float = 2.0) -> Tensor:
    """Windowed, zero-padded real FFT of each frame: ``|X|^power``.

    Args:
        frames: ``(..., frame_length)``.
        window: ``(frame_length,)``.
        n_fft: FFT size (``>= frame_length``); frames are zero-padded at the end.
        power: 2 for the power spectrum, 1 for the magnitude.

    Returns:
        ``(..., n_fft // 2 + 1)``.
    """
    if frames.numel() == 0:  # MKL refuses empty transforms
        return frames.new_zeros(*frames.shape[:-1], n_fft // 2 + 1)
    return fft_power(torch.fft.rfft(frames * window, n=n_fft), power)


def log_compress(x: Tensor, mode: Literal["floor", "guard"], eps: float) -> Tensor:
    """``log(max(x, eps))`` (``floor``, Kaldi) or ``log(x + eps)`` (``guard``, NeMo)."""
    if mode == "floor":
        return x.clamp(min=eps).log()
    return (x + eps).log()
