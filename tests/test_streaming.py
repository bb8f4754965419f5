"""Streaming inference: chunked encoder equality, resumable beam search, sessions, endpoints,
provisional partials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import asr
from asr.decode.beam import beam_search
from asr.io.audio import load_audio, resample
from asr.models.ctc import CTCModel, ModelConfig
from asr.models.tcn import BlockConfig, EncoderConfig
from asr.streaming import (
    ChunkConfig,
    ChunkedEncoder,
    Stream,
    StreamConfig,
    StreamingError,
    StreamResult,
    open_stream,
    receptive_field,
)
from asr.streaming.decoder import BeamStream
from asr.streaming.features import StreamingFeatures

SAMPLES = Path(asr.__file__).parent / "pretrained" / "samples"


@pytest.fixture(scope="module")
def model() -> asr.Model:
    return asr.load_model("default", device="cpu")


def _audio(name: str = "synth-test.flac", rate: int = 16000) -> np.ndarray:
    samples, file_rate = load_audio(SAMPLES / name)
    return resample(samples, file_rate, rate)


def _small_network(model: asr.Model) -> CTCModel:
    """A small random conv model with the default front-end, unnormalised (so that every
    output frame depends on a finite window of audio)."""
    encoder = EncoderConfig(
        blocks=(
            BlockConfig(filters=16, kernel=11, stride=2),
            BlockConfig(filters=16, repeat=2, kernel=7, residual=True),
            BlockConfig(filters=16, kernel=5, dilation=2),
        )
    )
    frontend = dataclasses.replace(model.network.cfg.frontend, normalize="none")
    torch.manual_seed(0)
    return CTCModel(ModelConfig(encoder, frontend), model.tokenizer.vocab_size).eval()


def _chunked(enc: ChunkedEncoder, x: np.ndarray, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    pos, outs = 0, []
    while pos < len(x):
        n = int(rng.integers(1, 4000))
        enc.accept(x[pos : pos + n])
        outs.append(enc.step())
        pos += n
    outs.append(enc.flush())
    return torch.cat(outs)


def test_receptive_field_of_the_default_model(model: asr.Model) -> None:
    # 16 (stride-3 prologue) + 3 * (4 * (16 + 19 + 25 + 31 + 37) + 86)
    assert receptive_field(model.network.cfg.encoder) == 1810


@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_equals_whole_when_context_covers_the_receptive_field(
    model: asr.Model, seed: int
) -> None:
    net = _small_network(model)
    rf = receptive_field(net.cfg.encoder)
    x = _audio()[:32000]
    with torch.no_grad():
        whole, _ = net(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    enc = ChunkedEncoder(net, ChunkConfig(chunk_s=0.04), left_frames=rf, right_frames=rf)
    streamed = _chunked(enc, x, seed)
    assert streamed.shape == whole[0].shape
    torch.testing.assert_close(streamed, whole[0], atol=1e-4, rtol=1e-4)


def test_short_context_is_an_approximation(model: asr.Model) -> None:
    net = _small_network(model)
    x = _audio()[:32000]
    with torch.no_grad():
        whole, _ = net(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    enc = ChunkedEncoder(net, ChunkConfig(chunk_s=0.04), left_frames=2, right_frames=2)
    assert (_chunked(enc, x) - whole[0]).abs().max() > 1e-3


def test_default_model_full_context_equals_whole(model: asr.Model) -> None:
    x = _audio()
    with torch.no_grad():
        whole, _ = model.network(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    enc = ChunkedEncoder(model.network, ChunkConfig(chunk_s=1.0, left_s=20, right_s=20))
    torch.testing.assert_close(_chunked(enc, x), whole[0], atol=1e-4, rtol=1e-4)


def test_beam_stream_equals_beam_search(model: asr.Model) -> None:
    decoder = model.decoder(model.decode_spec(beam_size=8))
    x = _audio()
    with torch.no_grad():
        lp, _ = model.network(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    want = beam_search(lp, None, decoder.cfg, decoder.lm, model.tokenizer)[0][0]
    stream = BeamStream(decoder)
    for piece in torch.split(lp[0], 7):
        stream.advance(piece)
    got = stream.best()
    assert got.token_ids == want.token_ids and got.frames == want.frames
    assert got.score == pytest.approx(want.score, abs=1e-4)


@pytest.mark.parametrize("decoding", [{"decoder": "greedy"}, {"beam_size": 4}])
def test_stream_session(model: asr.Model, decoding: dict) -> None:
    x = _audio()
    stream = open_stream(model, **decoding)
    results = []
    for pos in range(0, len(x), 1600):
        results += stream.accept((x[pos : pos + 1600] * 32767).astype(np.int16))
    results += stream.finish()
    partials = [r for r in results if not r.final]
    assert partials and all(r.text for r in partials)
    assert stream.finals and results[-1].final
    text = " ".join(r.text for r in stream.finals)
    assert len(text.split()) >= 8
    words = [w for r in stream.finals for w in r.words]
    assert all(0 <= w.start < w.end <= len(x) / 16000 + 0.1 for w in words)
    assert stream.finish() == []
    with pytest.raises(StreamingError):
        stream.accept(x[:100])


def test_endpoint_splits_utterances(model: asr.Model) -> None:
    x = _audio()
    gap = np.zeros(24000, dtype=np.float32)
    audio = np.concatenate([x, gap, x])
    stream = open_stream(model, StreamConfig(endpoint_silence_s=0.5), decoder="greedy")
    finals = []
    for pos in range(0, len(audio), 4000):
        finals += [r for r in stream.accept(audio[pos : pos + 4000]) if r.final]
    assert finals, "the silence should end the first utterance before finish()"
    assert finals[0].end < len(x) / 16000 + 1.5
    finals += stream.finish()
    assert len(finals) >= 2 and finals[-1].start >= len(x) / 16000
    assert [r.utterance for r in finals] == list(range(len(finals)))


def test_bad_audio_and_decoder(model: asr.Model) -> None:
    stream = open_stream(model, decoder="greedy")
    with pytest.raises(StreamingError):
        stream.accept(np.array([np.nan], dtype=np.float32))
    with pytest.raises(StreamingError):
        ChunkConfig(chunk_s=0)


def _feed(stream: Stream, audio: np.ndarray, seed: int | None = None) -> list[StreamResult]:
    """All results of ``audio`` in 0.1 s blocks (``seed``: random sizes of 1-4000 samples)."""
    rng = np.random.default_rng(seed)
    pos, results = 0, []
    while pos < len(audio):
        n = 1600 if seed is None else int(rng.integers(1, 4000))
        results += stream.accept(audio[pos : pos + n])
        pos += n
    return results + stream.finish()


def test_provisional_partial_comes_before_its_look_ahead(model: asr.Model) -> None:
    x = _audio()
    right = ChunkConfig().right_s
    early = {}
    for provisional in (False, True):
        stream = open_stream(model, StreamConfig(provisional=provisional), decoder="greedy")
        partials = [r for r in _feed(stream, x) if not r.final]
        # a word whose first frame's look-ahead had not arrived when the partial was made
        ahead = [r for r in partials if any(w.start > r.end - right for w in r.words)]
        early[provisional] = (ahead, next(r.end for r in partials if r.text))
    assert not early[False][0], "committed frames always have their look-ahead"
    assert early[True][0], "provisional partials should show words before their look-ahead"
    assert early[True][1] <= early[False][1] - right / 2  # the first text comes earlier


@pytest.mark.parametrize("decoding", [{"decoder": "greedy"}, {"beam_size": 4}])
def test_provisional_decoding_never_changes_finals(model: asr.Model, decoding: dict) -> None:
    x = _audio()
    audio = np.concatenate([x, np.zeros(12000, np.float32), x[: len(x) // 2]])
    finals = {}
    for provisional in (False, True):
        stream = open_stream(model, StreamConfig(provisional=provisional), **decoding)
        results = _feed(stream, audio, seed=3)
        finals[provisional] = [r.as_dict() for r in stream.finals]
        assert [r.as_dict() for r in results if r.final] == finals[provisional]
    assert len(finals[True]) >= 2 and finals[True] == finals[False]


def test_provisional_frames_see_the_end_as_whole_inference_does(model: asr.Model) -> None:
    net = _small_network(model)
    rf = receptive_field(net.cfg.encoder)
    x = _audio()[:32000]
    enc = ChunkedEncoder(net, ChunkConfig(chunk_s=0.12), left_frames=rf, right_frames=rf)
    plain = ChunkedEncoder(net, ChunkConfig(chunk_s=0.12), left_frames=rf, right_frames=rf)
    feats = StreamingFeatures(net.frontend)
    seen, outs, plain_outs = [], [], []
    for pos in range(0, len(x), 1000):
        for e in (enc, plain):
            e.accept(x[pos : pos + 1000])
        feats.accept(x[pos : pos + 1000])
        seen.append(feats.compute())
        outs.append(enc.step())
        plain_outs.append(plain.step())
        emitted = enc.emitted
        guess = enc.provisional()
        assert enc.emitted == emitted and len(guess) == enc.available - emitted
        all_feats = torch.cat(seen)
        with torch.no_grad():
            whole, _ = net.forward_features(all_feats[None], torch.tensor([len(all_feats)]))
        torch.testing.assert_close(guess, whole[0, emitted:], atol=1e-4, rtol=1e-4)
    assert torch.equal(torch.cat([*outs, enc.flush()]), torch.cat([*plain_outs, plain.flush()]))


def _count_provisional(stream: Stream) -> list[int]:
    """Record the number of pending frames of every provisional encoder run of ``stream``."""
    calls: list[int] = []
    run = stream.encoder.provisional

    def counted() -> torch.Tensor:
        out = run()
        calls.append(len(out))
        return out

    stream.encoder.provisional = counted  # type: ignore[method-assign]
    return calls


def test_provisional_is_bounded(model: asr.Model) -> None:
    stream = open_stream(model, StreamConfig(), decoder="greedy")
    calls = _count_provisional(stream)
    _feed(stream, np.zeros(16000, np.float32))
    assert not calls, "no provisional frames before the VAD hears speech"
    stream = open_stream(model, StreamConfig(endpoint=False), decoder="greedy")
    calls = _count_provisional(stream)
    x = _audio()[:16000]
    for pos in range(0, len(x), 160):  # 10 ms pieces: one run per provisional_every_s at most
        stream.accept(x[pos : pos + 160])
    assert 0 < len(calls) <= 11 + 5  # 1 s / 0.09 s, and the emitting chunks' (reused) tails
    chunk = stream.encoder.chunk_out
    assert max(calls) < chunk + round(0.48 / 0.03) + 2  # pending: a chunk and the look-ahead
    with pytest.raises(StreamingError):
        StreamConfig(provisional_every_s=0)
