"""The speech front-end as an ``nn.Module`` built from a frozen :class:`FrontendConfig`.

``Frontend(cfg)(waveforms (batch, samples), lengths (batch,))`` returns log-mel filterbanks or
MFCCs ``(batch, frames, features)`` and the valid frame counts ``(batch,)``. The window, mel
matrix, DCT, lifter and (for ``normalize="global"``) the CMVN statistics are buffers, so they
move with ``.to(device)`` and are saved in the model's state dict.

Pipeline: scale -> dither (training mode only) -> [signal pre-emphasis] -> frames -> [DC removal]
-> [frame pre-emphasis] -> window -> ``|FFT|^p`` -> [denoise] -> mel -> log -> [DCT, lifter,
energy] -> [normalisation] -> [deltas] -> padded frames set to 0.

Short inputs: an utterance that yields no frame (empty, or shorter than one frame with
``snip_edges``) gets 0 frames; its rows are all padding (zeros). A batch in which no utterance
yields a frame returns ``(batch, 0, features)``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from asr import config as config_io
from asr.frontend import functional as F
from asr.frontend.cmvn import load_cmvn_stats
from asr.frontend.denoise import DenoiseConfig, denoise_power
from asr.frontend.errors import FrontendError

# CPU: frames analysed per step (one utterance at a time), so that the work stays in cache.
CHUNK_FRAMES = 512


@dataclass(frozen=True)
class FrontendConfig:
    """Front-end options; the defaults are Kaldi's ``compute-fbank-feats`` with 80 mel bins."""

    sample_rate_hz: int = 16000  # expected input sample rate
    waveform_scale: float = 1.0  # input multiplied by this first (32768: Kaldi's int16 scale)
    dither: float = 0.0  # std of Gaussian noise added to the samples, in training mode only
    frame_length_ms: float = 25.0  # analysis window length
    frame_shift_ms: float = 10.0  # hop between frames
    snip_edges: bool = True  # Kaldi: only frames that fit; false: (L + shift/2) // shift frames
    center: bool = False  # librosa/NeMo centred frames, 1 + L // shift (needs snip_edges false)
    center_end_frame: bool = True  # center: count the frame centred on the last sample; false:
    # L // shift frames, as NeMo's AudioToMelSpectrogramPreprocessor counts them
    pad_mode: F.PadMode = "symmetric"  # padding at utterance edges: zeros, reflect, symmetric
    remove_dc_offset: bool = True  # subtract each frame's mean (Kaldi)
    preemphasis: float = 0.97  # pre-emphasis coefficient (0 turns it off)
    preemphasis_mode: Literal["frame", "signal"] = "frame"  # per frame (Kaldi) or signal (NeMo)
    window: F.WindowKind = "povey"  # hann, hamming, povey, blackman, rectangular
    window_periodic: bool = False  # periodic hann/hamming (librosa) instead of symmetric
    blackman_coeff: float = 0.42  # Kaldi's blackman window coefficient
    n_fft: int | None = None  # FFT size; None: next power of two >= frame length
    spectrum_power: float = 2.0  # 2: power spectrum, 1: magnitude
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)  # off unless method is set
    features: Literal["fbank", "mfcc"] = "fbank"  # log-mel filterbank or MFCC
    num_mel_bins: int = 80  # mel filters
    low_freq_hz: float = 20.0  # lower edge of the first mel filter
    high_freq_hz: float = 0.0  # upper edge of the last filter; <= 0: Nyquist + this (Kaldi)
    mel_scale: F.MelScale = "htk"  # htk (Kaldi) or slaney (librosa, NeMo)
    mel_norm: Literal["none", "slaney"] = "none"  # slaney: unit-area filters (librosa, NeMo)
    mel_triangles: Literal["mel", "hz"] = "mel"  # triangles linear in mel (Kaldi) or Hz
    log: Literal["floor", "guard", "none"] = "floor"  # log(max(x, eps)), log(x + eps) or none
    log_eps: float = F.KALDI_EPSILON  # the floor / guard value of the log
    num_ceps: int = 13  # MFCC: cepstra kept
    cepstral_lifter: float = 22.0  # MFCC: lifter Q (0 turns it off)
    use_energy: bool = False  # MFCC: log energy replaces C0; fbank: prepended as column 0
    raw_energy: bool = True  # energy before pre-emphasis and window (Kaldi) or after
    energy_floor: float = 0.0  # absolute energy floor (0: none)
    normalize: Literal["none", "utterance", "per_feature", "global"] = "none"  # normalisation
    normalize_vars: bool = False  # utterance CMVN: also divide by the std
    normalize_eps: float = 1e-5  # per_feature: added to the std (NeMo)
    normalize_min_std: float = 0.0  # per_feature: the std is raised to at least this (0: none,
    # as NeMo; > 0 keeps a band with no signal near 0 instead of amplifying its rounding noise)
    cmvn_stats: str | None = None  # global: stats file (safetensors or JSON with mean, std)
    deltas: int = 0  # 0: none, 1: deltas, 2: deltas and delta-deltas
    delta_window: int = 2  # half-width of the delta regression window, frames

    def __post_init__(self) -> None:
        if self.sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        if self.frame_length_samples < 2 or self.frame_shift_samples < 1:
            raise ValueError(
                f"frame_length_ms/frame_shift_ms give {self.frame_length_samples}/"
                f"{self.frame_shift_samples} samples; need >= 2 and >= 1"
            )
        if self.n_fft is not None and (self.n_fft < self.frame_length_samples or self.n_fft % 2):
            raise ValueError(f"n_fft must be even and >= the frame length, got {self.n_fft}")
        if self.center and self.snip_edges:
            raise ValueError("center: true needs snip_edges: false")
        if not (self.center or self.center_end_frame):
            raise ValueError("center_end_frame: false needs center: true")
        if self.dither < 0 or self.waveform_scale <= 0:
            raise ValueError("dither must be >= 0 and waveform_scale > 0")
        if not 0.0 <= self.preemphasis <= 1.0:
            raise ValueError(f"preemphasis must be in [0, 1], got {self.preemphasis}")
        if self.spectrum_power <= 0 or (self.log_eps <= 0 and self.log != "none"):
            raise ValueError("spectrum_power and log_eps must be > 0")
        if not 0.0 <= self.normalize_min_std < float("inf"):
            raise ValueError(f"normalize_min_std must be >= 0, got {self.normalize_min_std}")
        if self.num_mel_bins < 1:
            raise ValueError(f"num_mel_bins must be >= 1, got {self.num_mel_bins}")
        if self.features == "mfcc" and not 1 <= self.num_ceps <= self.num_mel_bins:
            raise ValueError(f"need 1 <= num_ceps <= num_mel_bins, got {self.num_ceps}")
        if self.deltas not in (0, 1, 2) or self.delta_window < 1:
            raise ValueError("deltas must be 0, 1 or 2 and delta_window >= 1")
        if self.normalize == "global" and not self.cmvn_stats:
            raise ValueError("normalize: global needs cmvn_stats (a stats file)")
        nyquist = self.sample_rate_hz / 2
        high = self.high_freq_hz if self.high_freq_hz > 0 else nyquist + self.high_freq_hz
        if not 0.0 <= self.low_freq_hz < high <= nyquist:
            raise ValueError(
                f"need 0 <= low_freq_hz < high_freq_hz <= {nyquist}, "
                f"got {self.low_freq_hz} and {self.high_freq_hz}"
            )

    @property
    def frame_length_samples(self) -> int:
        """Window length in samples."""
        return F.samples_from_ms(self.frame_length_ms, self.sample_rate_hz)

    @property
    def frame_shift_samples(self) -> int:
        """Frame shift in samples."""
        return F.samples_from_ms(self.frame_shift_ms, self.sample_rate_hz)

    @property
    def fft_size(self) -> int:
        """FFT size: ``n_fft`` or the next power of two >= the frame length."""
        return self.n_fft or F.next_power_of_two(self.frame_length_samples)

    @property
    def base_features(self) -> int:
        """Features per frame before deltas."""
        if self.features == "mfcc":
            return self.num_ceps
        return self.num_mel_bins + int(self.use_energy)

    @property
    def num_features(self) -> int:
        """Features per frame in the output."""
        return self.base_features * (1 + self.deltas)


class Frontend(nn.Module):
    """Waveforms ``(batch, samples)`` + lengths -> features ``(batch, frames, features)`` + lengths.

    Args:
        cfg: the options.
        load_stats: for ``normalize="global"``, read ``cfg.cmvn_stats`` now; pass False when the
            statistics will come from ``load_state_dict`` (they are buffers).
    """

    def __init__(self, cfg: FrontendConfig | None = None, load_stats: bool = True) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FrontendConfig()
        self.num_features = cfg.num_features
        # Framing in samples, fixed by the config.
        self._length, self._shift, self._n_fft = (
            cfg.frame_length_samples,
            cfg.frame_shift_samples,
            cfg.fft_size,
        )
        self._offset = F.frame_offset(
            self._length, self._shift, cfg.snip_edges, cfg.center, self._n_fft
        )
        self.register_buffer("window", self._window(cfg), persistent=False)
        mel = F.mel_filterbank(
            cfg.num_mel_bins,
            cfg.fft_size,
            cfg.sample_rate_hz,
            cfg.low_freq_hz,
            cfg.high_freq_hz,
            scale=cfg.mel_scale,
            slaney_norm=cfg.mel_norm == "slaney",
            triangles_in_mel=cfg.mel_triangles == "mel",
        )
        self.register_buffer("mel_matrix", mel, persistent=False)
        self._sparse_cache: dict[str, Tensor] = {}  # CPU copies of the mel matrix as CSR
        if cfg.features == "mfcc":
            dct = F.dct_matrix(cfg.num_mel_bins, cfg.num_ceps)
            dct = dct * F.lifter_coefficients(cfg.num_ceps, cfg.cepstral_lifter)[None, :]
            self.register_buffer("dct_matrix", dct, persistent=False)
        if cfg.normalize == "global":
            mean = torch.zeros(cfg.base_features)
            std = torch.ones(cfg.base_features)
            if load_stats:
                mean, std = load_cmvn_stats(str(cfg.cmvn_stats), cfg.base_features)
            self.register_buffer("cmvn_mean", mean)
            self.register_buffer("cmvn_std", std)

    @staticmethod
    def _window(cfg: FrontendConfig) -> Tensor:
        return F.feature_window(
            cfg.window, cfg.frame_length_samples, cfg.window_periodic, cfg.blackman_coeff
        )

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Frontend:
        """Build from a YAML preset (``conf/frontend/*.yaml``) and ``key=value`` overrides."""
        return cls(load_config(path, overrides))

    def num_frames(self, lengths: Tensor) -> Tensor:
        """Frames produced for ``lengths`` samples, ``(batch,)`` long."""
        cfg = self.cfg
        args = (self._length, self._shift, cfg.snip_edges, cfg.center, cfg.center_end_frame)
        if lengths.device.type == "cpu":  # cheaper in Python for a handful of numbers
            counts = [F.frame_count(n, *args) for n in lengths.tolist()]
            return torch.tensor(counts, dtype=torch.long)
        return F.num_frames(lengths, *args)

    def extra_repr(self) -> str:
        cfg = self.cfg
        return (
            f"{cfg.features}, {self.num_features} features, {cfg.sample_rate_hz} Hz, "
            f"{cfg.frame_length_ms}/{cfg.frame_shift_ms} ms, n_fft={cfg.fft_size}"
        )

    def _check(self, waveforms: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if waveforms.dim() != 2:
            raise FrontendError(
                f"waveforms must be (batch, samples), got shape {tuple(waveforms.shape)}"
            )
        batch, total = waveforms.shape
        if lengths is None:
            lengths = torch.full((batch,), total, dtype=torch.long)
        lengths = lengths.to(waveforms.device).long()
        if lengths.shape != (batch,):
            raise FrontendError(f"lengths must be ({batch},), got shape {tuple(lengths.shape)}")
        counts = lengths.tolist()
        if counts and (min(counts) < 0 or max(counts) > total):
            raise FrontendError(f"lengths must lie in [0, {total}], got {counts}")
        if waveforms.dtype not in (torch.float32, torch.float64):
            waveforms = waveforms.float()  # int16, float16, bfloat16
        return waveforms, lengths

    def _signal(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Scaled, dithered, (signal-)pre-emphasised and edge-padded signal ``(batch, W)`` in
        which frame ``t`` starts at sample ``t * shift``, and the frame counts ``(batch,)``."""
        cfg = self.cfg
        x = waveforms * cfg.waveform_scale if cfg.waveform_scale != 1.0 else waveforms
        if self.training and cfg.dither > 0:
            x = F.dither(x, lengths, cfg.dither)
        if cfg.preemphasis_mode == "signal":
            x = F.preemphasis(x, lengths, cfg.preemphasis)
        frames = self.num_frames(lengths)
        padded = F.pad_signal(
            x, lengths, self._length, self._shift, self._offset, frames, cfg.pad_mode
        )
        return padded, frames

    def _chunks(self, frames: Tensor, device: torch.device) -> list[tuple[int, int, int, int]]:
        """``(b0, b1, t0, t1)`` blocks to analyse: on CPU one utterance and at most
        CHUNK_FRAMES valid frames at a time (the work stays in cache; padded frames are
        skipped), elsewhere the whole batch at once."""
        counts = frames.tolist()
        if device.type != "cpu":
            return [(0, len(counts), 0, max(counts, default=0))]
        return [
            (b, b + 1, t0, min(n, t0 + CHUNK_FRAMES))
            for b, n in enumerate(counts)
            for t0 in range(0, n, CHUNK_FRAMES)
        ]

    def spectrogram(
        self, waveforms: Tensor, lengths: Tensor, apply_mel: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Spectra of the valid frames (padded frames are 0).

        Args:
            waveforms: ``(batch, samples)`` float.
            lengths: ``(batch,)`` valid samples.
            apply_mel: return mel energies ``(batch, frames, num_mel_bins)`` instead of
                ``|FFT|^spectrum_power`` ``(batch, frames, n_fft // 2 + 1)`` (faster: the
                filterbank is applied chunk by chunk while the spectrum is in cache).

        Returns:
            spectra, frame counts ``(batch,)`` and log energies ``(batch, frames)`` (zeros
            unless ``use_energy``).
        """
        cfg = self.cfg
        signal, frames = self._signal(waveforms, lengths)
        length, shift = self._length, self._shift
        batch, total = waveforms.shape[0], max(frames.tolist(), default=0)
        width = cfg.num_mel_bins if apply_mel else self._n_fft // 2 + 1
        out = signal.new_zeros(batch, total, width)
        energy = signal.new_zeros(batch, total)
        window = self.window.to(signal.dtype)
        mel = self.mel_matrix.to(signal.dtype)
        frame_preemph = cfg.preemphasis if cfg.preemphasis_mode == "frame" else 0.0
        sparse = self._sparse_mel(signal) if apply_mel and cfg.spectrum_power == 2.0 else None
        for b0, b1, t0, t1 in self._chunks(frames, signal.device):
            seg = signal[b0:b1, t0 * shift : (t1 - 1) * shift + length]
            buf, raw = F.windowed_frames(
                seg, length, shift, window, self._n_fft, cfg.remove_dc_offset, frame_preemph
            )
            if cfg.use_energy:
                energy[b0:b1, t0:t1] = self._log_energy(buf, raw)
            spec = torch.fft.rfft(buf)
            if sparse is not None:  # CPU chunks hold one utterance
                out[b0, t0:t1] = sparse_mel_energies(spec[0], sparse)
                continue
            power = F.fft_power(spec, cfg.spectrum_power)
            out[b0:b1, t0:t1] = power @ mel if apply_mel else power
        return out, frames, energy

    def _sparse_mel(self, signal: Tensor) -> Tensor | None:
        """The mel matrix as sparse CSR ``(num_mel_bins, bins)`` for the CPU fast path (each
        FFT bin feeds at most two filters), or None (GPU, or gradients needed)."""
        if signal.device.type != "cpu" or (torch.is_grad_enabled() and signal.requires_grad):
            return None
        key = str(signal.dtype)
        if key not in self._sparse_cache:
            dense = self.mel_matrix.to(signal.dtype).t().contiguous()
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                self._sparse_cache[key] = dense.to_sparse_csr()
        return self._sparse_cache[key]

    def _log_energy(self, windowed: Tensor, raw: Tensor) -> Tensor:
        cfg = self.cfg
        if not cfg.raw_energy:
            return F.log_energy(windowed, cfg.energy_floor)
        frames = F.remove_dc_offset(raw) if cfg.remove_dc_offset else raw
        return F.log_energy(frames, cfg.energy_floor)

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Compute features.

        Args:
            waveforms: ``(batch, samples)`` float (int16 is converted to float first).
            lengths: ``(batch,)`` valid samples per row; None means all ``samples``.

        Returns:
            features ``(batch, frames, num_features)`` in float64 for float64 input, else float32
            (autocast is turned off inside: spectra need the range), frames beyond a row's count
            set to 0, and frame counts ``(batch,)`` long.
        """
        waveforms, lengths = self._check(waveforms, lengths)
        with torch.autocast(waveforms.device.type, enabled=False):
            return self._features(waveforms, lengths)

    def _features(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.cfg
        denoise = cfg.denoise.method != "none"
        feats, out_lengths, energy = self.spectrogram(waveforms, lengths, apply_mel=not denoise)
        if denoise:  # denoising works on the power spectrum whatever spectrum_power is
            p = cfg.spectrum_power
            power = feats if p == 2.0 else feats.pow(2.0 / p)
            power = denoise_power(power, out_lengths, cfg.denoise)
            feats = power if p == 2.0 else power.pow(p / 2.0)
            feats = feats @ self.mel_matrix.to(feats.dtype)
        if cfg.log != "none":
            feats = F.log_compress(feats, cfg.log, cfg.log_eps)
        if cfg.features == "mfcc":
            # float64 here: the DCT with lifter sums large terms of opposite signs.
            feats = (feats.double() @ self.dct_matrix.double()).to(feats.dtype)
            if cfg.use_energy:
                feats[:, :, 0] = energy
        elif cfg.use_energy:
            feats = torch.cat([energy[:, :, None], feats], dim=-1)
        feats = self._normalize(feats, out_lengths)
        if cfg.deltas:
            feats = F.add_deltas(feats, out_lengths, cfg.deltas, cfg.delta_window)
        if all(n == feats.shape[1] for n in out_lengths.tolist()):
            return feats, out_lengths  # no padded frames to clear
        return F.mask_frames(feats, out_lengths), out_lengths

    def _normalize(self, feats: Tensor, lengths: Tensor) -> Tensor:
        """Normalisation per ``cfg.normalize``; per-utterance statistics in float64: a band
        that is constant over an utterance must give 0, but a float32 mean of 1000 equal
        values -16.6 is off by ~2e-6, which ``/ (std + 1e-5)`` turns into 0.28."""
        cfg = self.cfg
        if cfg.normalize == "utterance":
            out = F.utterance_cmvn(feats.double(), lengths, cfg.normalize_vars)
            return out.to(feats.dtype)
        if cfg.normalize == "per_feature":
            out = F.per_feature_normalize(
                feats.double(), lengths, cfg.normalize_eps, cfg.normalize_min_std
            )
            return out.to(feats.dtype)
        if cfg.normalize == "global":
            mean, std = self.cmvn_mean.to(feats.dtype), self.cmvn_std.to(feats.dtype)
            return F.global_cmvn(feats, lengths, mean, std)
        return feats


def sparse_mel_energies(spec: Tensor, sparse_mel: Tensor) -> Tensor:
    """Mel energies ``(frames, num_mel_bins)`` from a complex spectrum ``(frames, bins)`` that
    may be overwritten, with the filterbank as CSR ``(num_mel_bins, bins)``: the power is
    written bins-major so that the sparse product runs over contiguous rows."""
    squares = torch.view_as_real(spec)
    squares.square_()
    power_t = squares.new_empty(spec.shape[1], spec.shape[0])
    torch.add(squares[..., 0], squares[..., 1], out=power_t.t())
    return (sparse_mel @ power_t).t()


def load_config(path: str | Path, overrides: list[str] | None = None) -> FrontendConfig:
    """Read a :class:`FrontendConfig` from YAML (strict keys and types) with ``k=v`` overrides."""
    return config_io.load(FrontendConfig, path, overrides)


def compute_features(
    path: str | Path,
    cfg_or_yaml: FrontendConfig | str | Path,
    overrides: list[str] | None = None,
) -> Tensor:
    """Features of one audio file, ``(frames, num_features)`` float32 (inference mode).

    Args:
        path: audio file (any format :func:`asr.io.audio.load_audio` reads), resampled to the
            config's ``sample_rate_hz``.
        cfg_or_yaml: a :class:`FrontendConfig` or the path of a YAML preset.
        overrides: ``key=value`` overrides when ``cfg_or_yaml`` is a YAML path.
    """
    from asr.io.audio import load_audio

    if isinstance(cfg_or_yaml, FrontendConfig):
        cfg = cfg_or_yaml
    else:
        cfg = load_config(cfg_or_yaml, overrides)
    samples, _ = load_audio(path, sample_rate=cfg.sample_rate_hz)
    frontend = Frontend(cfg).eval()
    wave = torch.from_numpy(samples).float()[None, :]
    with torch.inference_mode():
        feats, _ = frontend(wave, torch.tensor([wave.shape[1]]))
    return feats[0]


def replace(cfg: FrontendConfig, **changes: object) -> FrontendConfig:
    """A copy of ``cfg`` with fields changed (validated again)."""
    return dataclasses.replace(cfg, **changes)


__all__ = [
    "Frontend",
    "FrontendConfig",
    "compute_features",
    "load_config",
]
