"""The speech front-end as export-friendly tensor ops: the same features as
:class:`asr.frontend.Frontend`, with no FFT, no Python loops over utterances and no data-dependent
Python control flow, so that ``torch.onnx.export`` traces it with dynamic batch and time axes.

How each stage is expressed:

- framing: sample indices computed from the lengths; samples outside an utterance come from its
  own edges (``reflect_index``, the same helper :func:`asr.frontend.functional.pad_signal` uses)
  or are zeros, so padding never reaches a valid frame;
- per-frame DC removal, Kaldi pre-emphasis, the window and the real DFT are linear in a frame's
  samples: they are composed (in float64) into one ``(2 * bins, frame_length)`` matrix applied
  as a strided ``conv1d``, the FFT-free path (ONNX ``Conv``) with rfft's output;
- mel filterbank and DCT are matrix products; log, normalisation and deltas reuse
  :mod:`asr.frontend.functional` unchanged (the normalisation and the DCT run in float64).

Not expressible (a one-line :class:`asr.onnx.OnnxError` naming the field): spectral denoising
(``frontend.denoise``); :mod:`asr.onnx.export` then exports the split form (features in).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from asr.frontend import Frontend
from asr.frontend import functional as F
from asr.onnx import OnnxError


def frame_operator(
    window: Tensor, n_fft: int, remove_dc: bool = False, preemph: float = 0.0
) -> Tensor:
    """The linear map from a frame's raw samples to its real DFT, ``(2 * bins, frame_length)``
    float64 with ``bins = n_fft // 2 + 1``: rows ``[:bins]`` give the real parts and
    ``[bins:]`` the imaginary parts of ``rfft(pad(window * P(x - mean(x)), n_fft))``, where
    ``P`` is Kaldi's per-frame pre-emphasis (:func:`asr.frontend.functional.windowed_frames`).

    Args:
        window: ``(frame_length,)`` analysis window.
        n_fft: FFT size (``>= frame_length``; the frame is zero-padded at the end).
        remove_dc: subtract the frame mean first.
        preemph: per-frame pre-emphasis coefficient (0: none).
    """
    length = window.shape[0]
    op = torch.eye(length, dtype=torch.float64)
    if remove_dc:
        op = op - 1.0 / length
    if preemph != 0.0:
        emph = torch.eye(length, dtype=torch.float64)
        emph[0, 0] = 1.0 - preemph
        emph[torch.arange(1, length), torch.arange(length - 1)] = -preemph
        op = emph @ op
    op = window.double()[:, None] * op
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    j = torch.arange(length, dtype=torch.float64)[None, :]
    phase = 2.0 * math.pi * torch.remainder(k * j, n_fft) / n_fft  # exact angles for large k*j
    dft = torch.cat([torch.cos(phase), -torch.sin(phase)])
    return dft @ op


class GraphFrontend(nn.Module):
    """Export-friendly twin of a :class:`asr.frontend.Frontend` (eval mode: no dither).

    Args:
        frontend: the front-end to mirror (held: its mel and DCT matrices, CMVN statistics
            and normalisation are used as they are).
    Raises:
        OnnxError: an option with no export-friendly form (spectral denoising).
    """

    def __init__(self, frontend: Frontend) -> None:
        super().__init__()
        cfg = self.cfg = frontend.cfg
        if cfg.denoise.method != "none":
            raise OnnxError(
                f"frontend.denoise.method={cfg.denoise.method!r} cannot be exported to ONNX "
                "(spectral denoising has no graph form); export a model without it"
            )
        self.frontend = frontend  # mel and DCT matrices, CMVN statistics, normalisation
        self._length, self._shift = cfg.frame_length_samples, cfg.frame_shift_samples
        self._n_fft, self._offset = cfg.fft_size, frontend._offset
        self._bins = self._n_fft // 2 + 1
        frame_preemph = cfg.preemphasis if cfg.preemphasis_mode == "frame" else 0.0
        op = frame_operator(frontend.window, self._n_fft, cfg.remove_dc_offset, frame_preemph)
        self.register_buffer("dft_kernel", op.float()[:, None, :], persistent=False)

    def num_frames(self, lengths: Tensor) -> Tensor:
        """``(batch,)`` frame counts for ``(batch,)`` sample counts (tensor ops only)."""
        cfg = self.cfg
        return F.num_frames(
            lengths, self._length, self._shift, cfg.snip_edges, cfg.center, cfg.center_end_frame
        )

    def _signal(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """Scaled, (signal-)pre-emphasised samples, zero beyond each length: ``(batch, T)``."""
        cfg = self.cfg
        x = waveforms * cfg.waveform_scale if cfg.waveform_scale != 1.0 else waveforms
        if cfg.preemphasis_mode == "signal" and cfg.preemphasis != 0.0:
            x = torch.cat([x[:, :1], x[:, 1:] - cfg.preemphasis * x[:, :-1]], dim=1)
        return x * F.length_mask(lengths, x.shape[1]).to(x.dtype)

    def _padded(self, x: Tensor, lengths: Tensor, frames: Tensor) -> Tensor:
        """``(batch, W)``: frame ``t`` of a row is ``[t * shift, t * shift + length)``; samples
        outside the row come from its own edges (``pad_mode``), as in ``F.pad_signal``.
        ``x`` is zero beyond each length, so zero padding is a constant pad (the strided
        convolution may then yield extra frames, which are cut off)."""
        if self.cfg.pad_mode == "zeros" or (self._offset == 0 and self.cfg.snip_edges):
            # snip_edges: frames never reach past a row's end, nothing to reflect
            return nn.functional.pad(x, (max(self._offset, 0), self._length))[
                :, max(-self._offset, 0) :
            ]
        width = (frames.max().clamp(min=1) - 1) * self._shift + self._length
        pos = torch.arange(width, device=x.device)[None, :] - self._offset
        pos = pos.expand(x.shape[0], -1)
        inside = (pos >= 0) & (pos < lengths[:, None])
        index = torch.where(inside, pos, F.reflect_index(pos, lengths, self.cfg.pad_mode))
        index = torch.minimum(index, torch.full_like(index, x.shape[1] - 1)).clamp(min=0)
        return x.gather(1, index)

    def _log_energy(self, padded: Tensor, squares: Tensor) -> Tensor:
        """``(batch, frames)`` log energies: of the raw (DC-removed) frames, or by Parseval
        from ``squares`` ``(batch, 2 * bins, frames)``, the squared real and imaginary parts
        of the windowed frames' spectrum."""
        cfg = self.cfg
        if cfg.raw_energy:
            ones = padded.new_ones(1, 1, self._length)
            total = nn.functional.conv1d(padded[:, None], ones, stride=self._shift)[:, 0]
            energy = nn.functional.conv1d(padded[:, None].square(), ones, stride=self._shift)
            energy = energy[:, 0]
            if cfg.remove_dc_offset:
                energy = energy - total.square() / self._length
            energy = energy[:, : squares.shape[2]]
        else:  # sum |x|^2 = (|X_0|^2 + 2 |X_1|^2 + ... + |X_{n/2}|^2) / n_fft
            weights = torch.full((self._bins,), 2.0, dtype=squares.dtype, device=squares.device)
            weights[0] = 1.0
            if self._n_fft % 2 == 0:
                weights[-1] = 1.0
            energy = (weights.repeat(2) / self._n_fft) @ squares
        energy = energy.clamp(min=F.KALDI_EPSILON).log()
        if cfg.energy_floor > 0.0:
            energy = energy.clamp(min=math.log(cfg.energy_floor))
        return energy

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waveforms: ``(batch, samples)`` float32, lengths: ``(batch,)`` int64 ->
        features ``(batch, frames, num_features)`` float32 (padded frames 0), frames
        ``(batch,)`` int64; ``frames`` = the longest utterance's frame count."""
        cfg = self.cfg
        frames = self.num_frames(lengths)
        padded = self._padded(self._signal(waveforms, lengths), lengths, frames)
        spec = nn.functional.conv1d(padded[:, None], self.dft_kernel, stride=self._shift)
        squares = spec[:, :, : frames.max()].square()  # (batch, 2 * bins, frames)
        energy = self._log_energy(padded, squares) if cfg.use_energy else None
        mel = self.frontend.mel_matrix.t()  # (mels, bins)
        if cfg.spectrum_power == 2.0:  # re^2 @ mel + im^2 @ mel: no slicing, one product
            feats = torch.cat([mel, mel], dim=1) @ squares
        else:
            power = squares[:, : self._bins] + squares[:, self._bins :]
            feats = mel @ power.pow(cfg.spectrum_power / 2.0)
        feats = feats.transpose(1, 2)  # (batch, frames, mels)
        if cfg.log != "none":
            feats = F.log_compress(feats, cfg.log, cfg.log_eps)
        if cfg.features == "mfcc":
            feats = (feats.double() @ self.frontend.dct_matrix.double()).float()
            if energy is not None:
                feats = torch.cat([energy[:, :, None], feats[:, :, 1:]], dim=-1)
        elif energy is not None:
            feats = torch.cat([energy[:, :, None], feats], dim=-1)
        if cfg.normalize != "none":  # float64: a feature that is constant over an utterance
            # (a mel band below the floor) must normalise to ~0, whatever the runtime's
            # summation order (in float32, mean - x ~ 1e-6 is then divided by std + eps ~ 1e-5)
            feats = self.frontend._normalize(feats.double(), frames).float()
        if cfg.deltas:
            feats = F.add_deltas(feats, frames, cfg.deltas, cfg.delta_window)
        return F.mask_frames(feats, frames), frames
