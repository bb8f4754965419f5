"""Endpointing for streams: the detectors of :mod:`asr.inference.vad` applied 10 ms frame by frame.

A frame is speech by WebRTC's detector when installed (``VadConfig.backend``), else by its
energy: ``threshold_db`` above a noise floor that is the ``noise_percentile`` of the energies
of the last ``noise_window_s`` seconds, with hysteresis. An utterance ends (an endpoint) once
it has held at least ``min_speech_s`` of speech followed by ``silence_s`` of non-speech.
"""

from __future__ import annotations

import collections

import numpy as np

from asr.inference.vad import FRAME_MS, VadConfig, _resolve_backend, frame_energies_db

_WEBRTC_RATES = (8000, 16000, 32000, 48000)


class Endpointer:
    """Frame-wise speech detection and the endpoint rule.

    Args:
        rate: sample rate of the audio, Hz.
        cfg: detector options (:class:`asr.inference.vad.VadConfig`).
        silence_s: non-speech after speech that ends an utterance.
    """

    def __init__(self, rate: int, cfg: VadConfig | None = None, silence_s: float = 0.3) -> None:
        self.cfg = cfg or VadConfig()
        self.backend = _resolve_backend(self.cfg.backend)
        self.frame = max(1, rate * FRAME_MS // 1000)
        self.rate = rate
        self.webrtc = None
        if self.backend == "webrtc" and rate in _WEBRTC_RATES:
            import webrtcvad

            self.webrtc = webrtcvad.Vad(self.cfg.webrtc_mode)
        window = max(10, round(self.cfg.noise_window_s * 1000 / FRAME_MS))
        self.history: collections.deque[float] = collections.deque(maxlen=window)
        self.silence_frames = max(1, round(silence_s * 1000 / FRAME_MS))
        self.min_speech = max(1, round(self.cfg.min_speech_s * 1000 / FRAME_MS))
        self.pending = np.zeros(0, dtype=np.float32)
        self.active = False
        self.position = 0  # samples of the stream in whole frames seen so far
        self.reset()

    def reset(self) -> None:
        """Start a new utterance (the noise floor is kept)."""
        self.speech = 0  # speech frames in this utterance
        self.silence = 0  # non-speech frames since the last speech frame
        self.first_speech: int | None = None  # frame index (since the reset) of the first speech
        self.frames = 0

    def accept(self, samples: np.ndarray) -> list[int]:
        """Feed ``(n,)`` samples; returns the stream sample indices at which an utterance
        ended (an endpoint), in order."""
        audio = np.concatenate([self.pending, samples])
        n = len(audio) // self.frame
        self.pending = audio[n * self.frame :]
        if n == 0:
            return []
        flags = self._flags(audio[: n * self.frame], n)
        ends = []
        for is_speech in flags:
            self.frames += 1
            self.position += self.frame
            if is_speech:
                self.speech += 1
                self.silence = 0
                if self.first_speech is None:
                    self.first_speech = self.frames - 1
            else:
                self.silence += 1
            if self.speech >= self.min_speech and self.silence >= self.silence_frames:
                ends.append(self.position)
                self.reset()
        return ends

    def _flags(self, audio: np.ndarray, n: int) -> np.ndarray:
        energies = frame_energies_db(audio, self.frame)[:n]
        if self.webrtc is not None:
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
            step = self.frame
            return np.array(
                [
                    self.webrtc.is_speech(pcm[i * step : (i + 1) * step].tobytes(), self.rate)
                    for i in range(n)
                ]
            )
        self.history.extend(energies.tolist())
        floor = max(
            float(np.percentile(np.fromiter(self.history, float), self.cfg.noise_percentile)),
            self.cfg.min_floor_db,
        )
        out = np.zeros(n, dtype=bool)
        for i, e in enumerate(energies):
            on = e >= floor + self.cfg.threshold_db
            stay = e >= floor + self.cfg.threshold_db - self.cfg.hysteresis_db
            self.active = bool(on or (self.active and stay))
            out[i] = self.active
        return out
