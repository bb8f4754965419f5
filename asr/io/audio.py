"""Audio I/O: read any libsndfile format as mono float32, resample with soxr, write WAV/FLAC.

Reading goes through ``soundfile`` (libsndfile >= 1.1: WAV PCM 16/24/32 and float, FLAC, OGG
Vorbis/Opus, MP3 and the other libsndfile containers). Multi-channel audio is mixed to mono by
averaging the channels, unless the channels cancel out (phase-inverted, the mix's RMS below
``CANCELLED_MIX_RATIO`` of the channels' mean RMS): then the loudest channel is used, with a
one-line warning naming the file. A segment (``offset_s``, ``duration_s``) is read by seeking,
so only that part of the file is decoded (MP3 and OGG excepted: libsndfile's seek is inexact
there, so the head is decoded and dropped).

Everything that can go wrong with a file raises :class:`AudioError`, one line naming the path and
the reason: missing file, unreadable/corrupt/truncated file, unsupported format, zero-length
audio, a sample rate below ``MIN_SAMPLE_RATE_HZ``, NaN or Inf samples, a segment beyond the end
of the file.

Example::

    samples, rate = load_audio("utt.flac", sample_rate=16000)   # (samples,) float32, 16000
    info = audio_info("utt.flac")                               # rate, length, channels, format
    save_audio("out.wav", samples, rate)                        # 16-bit PCM, atomic
    part, _ = load_audio(Waveform(samples, rate), rate, 1.0, 2.0)   # audio already in memory
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.errors import AsrError
from asr.io.atomic import atomic_path

# Tolerance for a segment that ends just past the end of the file (manifest durations are
# rounded, e.g. to 10 ms): up to this much overshoot is clamped instead of being an error.
SEGMENT_END_TOLERANCE_S = 0.02

# MP3 lengths come from the Xing/LAME header or an estimate; a shortfall this small when
# decoding is not truncation (two MPEG-1 layer III frames of samples plus 1% of the length).
_MP3_SHORTFALL_SAMPLES = 2 * 1152
_MP3_SHORTFALL_FRACTION = 0.01
# Formats whose libsndfile seek is inexact: segments are reached by decoding and dropping the
# head, in blocks of _SKIP_BLOCK samples.
_INEXACT_SEEK_FORMATS = frozenset({"MP3", "OGG"})
_SKIP_BLOCK = 1 << 16

# Formats and default subtypes that save_audio writes, by file suffix.
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}

# File suffixes libsndfile can read: a file with one of these that libsndfile does not recognise
# is corrupt; any other suffix is an unsupported format.
_KNOWN_SUFFIXES = frozenset(
    {f".{name.lower()}" for name in sf.available_formats()}
    | {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".sph", ".caf"}
)

# Lowest sample rate accepted from a file header. Speech is recorded at 8 kHz or more (telephone
# band); below this a header is corrupt or hostile, and resampling it would multiply the samples
# without bound (an 8 KB file claiming 1 Hz became 64 M samples at 16 kHz).
MIN_SAMPLE_RATE_HZ = 4000

# A channel mix whose RMS is below this fraction of the channels' mean RMS has cancelled out
# (phase-inverted channels average to silence): the loudest channel is used instead.
CANCELLED_MIX_RATIO = 0.1

# soxr quality used by resample(): "HQ" (20-bit, the soxr default); "VHQ" for 28-bit.
RESAMPLE_QUALITY = "HQ"


class AudioError(AsrError):
    """An audio file that cannot be used; the message names the path and the reason."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    sample_rate: int  # samples per second per channel
    num_samples: int  # samples per channel (frames)
    channels: int  # number of channels before mixing to mono
    duration_s: float  # num_samples / sample_rate, seconds
    format: str  # libsndfile container name: "WAV", "FLAC", "OGG", "MP3", ...
    subtype: str = ""  # libsndfile encoding: "PCM_16", "PCM_24", "FLOAT", "VORBIS", ...


@dataclass(frozen=True, eq=False)
class Waveform:
    """Audio already in memory, read like a file by :func:`audio_info` and :func:`load_audio`
    (segments, resampling, the same checks); ``name`` stands for the path in messages."""

    samples: np.ndarray  # (samples,) mono float32
    sample_rate: int  # Hz
    name: str = "<array>"

    def __post_init__(self) -> None:
        if np.ndim(self.samples) != 1:
            raise AudioError(
                f"{self.name}: expected mono (samples,) audio, got {np.shape(self.samples)}"
            )

    def __str__(self) -> str:
        return self.name


# What audio_info / load_audio read: a file, or a Waveform.
AudioSource = str | Path | Waveform


def _open(path: Path) -> sf.SoundFile:
    """Open ``path`` for reading, turning every failure into an :class:`AudioError`."""
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        handle = sf.SoundFile(str(path))
    except sf.LibsndfileError as err:
        reason = err.error_string.strip().rstrip(".")
        if "not recognised" in reason.lower():
            suffix = path.suffix.lower()
            if suffix not in _KNOWN_SUFFIXES:
                raise AudioError(
                    f"{path}: unsupported audio format {suffix or '(no suffix)'!r} "
                    f"(libsndfile: {reason})"
                ) from None
            raise AudioError(
                f"{path}: corrupt or not a {suffix[1:].upper()} file (libsndfile: {reason})"
            ) from None
        msg = f"{path}: unreadable or corrupt audio file (libsndfile: {reason})"
        raise AudioError(msg) from None
    except (OSError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: cannot open audio file ({err})") from None
    return handle


def _riff_data_shortfall(path: Path) -> tuple[int, int] | None:
    """For a RIFF/WAVE file, (declared, present) byte sizes of a truncated ``data`` chunk.

    libsndfile silently shortens a WAV whose data chunk is cut off; this reads the chunk
    headers to tell. Returns None when the file is complete or is not plain RIFF/WAVE.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                present = size - (pos + 8)
                if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                    return None
                return chunk_size, present
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def audio_info(path: AudioSource) -> AudioInfo:
    """Read the header of an audio file.

    Args:
        path: audio file in any format libsndfile reads, or a :class:`Waveform`.

    Returns:
        :class:`AudioInfo`. Raises :class:`AudioError` for a missing, unreadable or
        unsupported file, one that holds no samples, or one whose sample rate is below
        ``MIN_SAMPLE_RATE_HZ``.
    """
    if isinstance(path, Waveform):
        return _checked_info(path.name, len(path.samples), path.sample_rate, 1, "array", "FLOAT")
    path = Path(path)
    with _open(path) as fh:
        return _info(path, fh)


def _info(path: Path, fh: sf.SoundFile) -> AudioInfo:
    """AudioInfo of an open file; zero-length audio and absurd sample rates are errors."""
    return _checked_info(path, fh.frames, fh.samplerate, fh.channels, fh.format, fh.subtype)


def _checked_info(
    path: str | Path, frames: int, rate: int, channels: int, fmt: str, subtype: str
) -> AudioInfo:
    """AudioInfo of audio with these properties; zero-length audio and absurd sample rates are
    errors."""
    if frames <= 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    if rate < MIN_SAMPLE_RATE_HZ:
        raise AudioError(
            f"{path}: sample rate {rate} Hz is below {MIN_SAMPLE_RATE_HZ} Hz, too low "
            "for speech (corrupt header?)"
        )
    return AudioInfo(
        sample_rate=int(rate),
        num_samples=int(frames),
        channels=int(channels),
        duration_s=frames / rate,
        format=str(fmt),
        subtype=str(subtype),
    )


def _segment_frames(
    path: str | Path, info: AudioInfo, offset_s: float, duration_s: float | None
) -> tuple[int, int]:
    """Turn (offset_s, duration_s) into (start, count) in samples, checked against the file."""
    if not math.isfinite(offset_s) or offset_s < 0:
        raise AudioError(f"{path}: offset_s must be a finite number >= 0, got {offset_s}")
    rate, total = info.sample_rate, info.num_samples
    start = round(offset_s * rate)
    if start >= total:
        raise AudioError(
            f"{path}: segment offset {offset_s:.3f} s is beyond the end of the audio "
            f"({info.duration_s:.3f} s)"
        )
    if duration_s is None:
        return start, total - start
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise AudioError(f"{path}: duration_s must be a finite number > 0, got {duration_s}")
    count = round(duration_s * rate)
    if start + count > total + round(SEGMENT_END_TOLERANCE_S * rate):
        raise AudioError(
            f"{path}: segment {offset_s:.3f}-{offset_s + duration_s:.3f} s is beyond the end of "
            f"the audio ({info.duration_s:.3f} s)"
        )
    count = min(count, total - start)
    if count <= 0:
        raise AudioError(f"{path}: zero-length segment (duration_s={duration_s})")
    return start, count


def _check_riff(path: Path, info: AudioInfo) -> None:
    """Raise for a WAV whose data chunk is cut short (libsndfile would read it silently)."""
    if info.format not in ("WAV", "WAVEX"):
        return
    shortfall = _riff_data_shortfall(path)
    if shortfall is not None:
        raise AudioError(
            f"{path}: truncated WAV file: data chunk declares {shortfall[0]} bytes, "
            f"only {shortfall[1]} present"
        )


def _check_complete(path: Path, info: AudioInfo, wanted: int, got: int) -> None:
    """Raise when fewer samples could be decoded than the header promised."""
    if got >= wanted:
        return
    if info.format == "MP3":
        slack = _MP3_SHORTFALL_SAMPLES + int(_MP3_SHORTFALL_FRACTION * info.num_samples)
        if wanted - got <= slack and got > 0:
            return
    raise AudioError(
        f"{path}: truncated or corrupt file: header declares {wanted} samples from this "
        f"position, only {got} could be decoded"
    )


def _check_finite(path: str | Path, samples: np.ndarray, rate: int, start: int) -> None:
    """Raise on NaN or Inf samples, naming the first bad sample's time."""
    finite = np.isfinite(samples)
    if finite.all():
        return
    first = int(np.argmin(finite.all(axis=1) if finite.ndim == 2 else finite))
    bad = int(finite.size - np.count_nonzero(finite))
    raise AudioError(
        f"{path}: {bad} NaN or Inf sample value(s), first at {(start + first) / rate:.4f} s "
        f"(sample {start + first})"
    )


def _seek(fh: sf.SoundFile, start: int) -> None:
    """Position ``fh`` at sample ``start``.

    libsndfile's MP3 seek (mpg123 fuzzy seeking, bit reservoir) lands up to thousands of samples
    off and its Ogg Vorbis seek sometimes lands 128 samples off (libsndfile 1.2.2), so for MP3 and
    OGG the samples before ``start`` are decoded and dropped (exact; cost grows with the offset).
    Every other format (WAV, FLAC, ...) seeks directly, which is exact.
    """
    if start == 0:
        return
    if fh.format not in _INEXACT_SEEK_FORMATS:
        fh.seek(start)
        return
    remaining = start
    while remaining > 0:
        got = len(fh.read(min(remaining, _SKIP_BLOCK), dtype="float32", always_2d=True))
        if got == 0:
            return
        remaining -= got


def load_audio(
    path: AudioSource,
    sample_rate: int | None = None,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file (or a segment of it) as mono float32.

    Args:
        path: audio file in any format libsndfile reads (WAV, FLAC, OGG, MP3, ...), or a
            :class:`Waveform`.
        sample_rate: resample to this rate with soxr; None (default) keeps the file's rate.
        offset_s: start of the segment in seconds (default 0.0). Reached by seeking.
        duration_s: length of the segment in seconds; None (default) reads to the end. A segment
            that ends up to ``SEGMENT_END_TOLERANCE_S`` past the end is clamped to the end;
            further is an error.

    Returns:
        ``(samples, rate)``: samples of shape ``(samples,)``, float32, channels averaged (or the
        loudest alone when they cancel out). PCM files give values in [-1, 1); float files are
        returned as stored (not clipped).
        ``rate`` is ``sample_rate`` when given, else the file's rate.

    Raises:
        AudioError: missing, unreadable, corrupt, truncated or unsupported file; zero-length
            audio; a sample rate below ``MIN_SAMPLE_RATE_HZ``; NaN/Inf samples; a segment
            beyond the end of the file.
    """
    if isinstance(path, Waveform):
        return _load_waveform(path, sample_rate, offset_s, duration_s)
    path = Path(path)
    with _open(path) as fh:
        info = _info(path, fh)
        start, count = _segment_frames(path, info, offset_s, duration_s)
        _check_riff(path, info)
        try:
            _seek(fh, start)
            data = fh.read(count, dtype="float32", always_2d=True)
        except sf.LibsndfileError as err:
            reason = err.error_string.strip().rstrip(".")
            msg = f"{path}: corrupt or truncated audio data (libsndfile: {reason})"
            raise AudioError(msg) from None
    _check_complete(path, info, count, len(data))
    _check_finite(path, data, info.sample_rate, start)
    samples = data[:, 0] if data.shape[1] == 1 else _mix_to_mono(path, data)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if sample_rate is not None and sample_rate != info.sample_rate:
        return resample(samples, info.sample_rate, sample_rate), int(sample_rate)
    return samples, info.sample_rate


def _mix_to_mono(path: Path, data: np.ndarray) -> np.ndarray:
    """The mean of the channels of ``data`` (samples, channels), or the loudest channel when the
    mean cancels out (see ``CANCELLED_MIX_RATIO``); says so on stderr in one line."""
    mix = data.mean(axis=1, dtype=np.float32)
    channel_rms = np.sqrt(np.mean(np.square(data, dtype=np.float64), axis=0))
    mix_rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
    if mix_rms >= CANCELLED_MIX_RATIO * float(channel_rms.mean()):
        return mix
    loudest = int(np.argmax(channel_rms))
    print(
        f"warning: {path}: the {data.shape[1]} channels cancel out when mixed (phase-inverted?); "
        f"using channel {loudest + 1} alone",
        file=sys.stderr,
    )
    return data[:, loudest]


def _load_waveform(
    wave: Waveform, sample_rate: int | None, offset_s: float, duration_s: float | None
) -> tuple[np.ndarray, int]:
    """:func:`load_audio` of audio in memory: the segment's samples (a copy), resampled."""
    info = audio_info(wave)
    start, count = _segment_frames(wave.name, info, offset_s, duration_s)
    samples = np.array(wave.samples[start : start + count], dtype=np.float32)
    _check_finite(wave.name, samples, info.sample_rate, start)
    if sample_rate is not None and sample_rate != info.sample_rate:
        return resample(samples, info.sample_rate, sample_rate), int(sample_rate)
    return samples, info.sample_rate


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample with soxr (band-limited, ``RESAMPLE_QUALITY``).

    Args:
        samples: ``(samples,)`` or ``(samples, channels)``, float32 or float64.
        orig_rate: rate of ``samples`` in Hz (> 0).
        new_rate: wanted rate in Hz (> 0).

    Returns:
        float32 array of shape ``(round(samples * new_rate / orig_rate),)`` (channels kept);
        a float32 copy of the input when the rates are equal.
    """
    for name, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if not (isinstance(rate, (int, np.integer)) and rate > 0):
            raise ValueError(f"resample: {name} must be a positive integer, got {rate!r}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2):
        raise ValueError(f"resample: samples must be 1-D or 2-D, got shape {samples.shape}")
    if orig_rate == new_rate or samples.shape[0] == 0:
        if orig_rate == new_rate:
            return samples.copy()
        return np.zeros((0, *samples.shape[1:]), dtype=np.float32)
    out = soxr.resample(samples, int(orig_rate), int(new_rate), quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(out, dtype=np.float32)


def save_audio(
    path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str | None = None
) -> None:
    """Write WAV or FLAC (chosen by the suffix of ``path``), atomically.

    Args:
        path: output file ending in ``.wav`` or ``.flac``.
        samples: ``(samples,)`` or ``(samples, channels)`` float in [-1, 1]; values outside are
            clipped for integer subtypes.
        sample_rate: rate in Hz.
        subtype: libsndfile subtype; default "PCM_16". WAV also takes PCM_24, PCM_32, FLOAT,
            DOUBLE; FLAC takes PCM_16, PCM_24, PCM_S8.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITE_FORMATS:
        raise AudioError(f"{path}: cannot write audio with suffix {suffix!r} (use .wav or .flac)")
    fmt, default_subtype = _WRITE_FORMATS[suffix]
    subtype = subtype or default_subtype
    if not sf.check_format(fmt, subtype):
        raise AudioError(f"{path}: {fmt} cannot hold subtype {subtype!r}")
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise AudioError(f"{path}: nothing to write (samples shape {samples.shape})")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: refusing to write NaN or Inf samples")
    if subtype not in ("FLOAT", "DOUBLE"):
        samples = np.clip(samples, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, int(sample_rate), format=fmt, subtype=subtype)
