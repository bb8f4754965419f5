"""bench/streaming.py end to end on two short clips of the shipped samples: in-process latency
and WER, then the server's latency, capacity and load test over a real ``asr serve``
subprocess at 4x real time (structure and sane values, no timing thresholds)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
from bench import streaming as bs
from bench import streaming_data as bd
from bench import streaming_server as bsv

SAMPLES = Path(asr.__file__).parent / "pretrained" / "samples"
CLIP_S = 2.0


@pytest.fixture(scope="module", autouse=True)
def _cheap() -> Iterator[None]:
    """One torch thread (as the bench) and beam 4 instead of decode.yaml's beam 32."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(bd.DECODINGS, "beam+LSTM", {"beam_size": 4})
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> asr.Model:
    return asr.load_model()


@pytest.fixture(scope="module")
def utts(tmp_path_factory: pytest.TempPathFactory) -> list[bd.Utt]:
    """The first CLIP_S seconds of each sample as a WAV (so that whole-file and streaming see
    the same audio)."""
    folder = tmp_path_factory.mktemp("clips")
    refs = dict(line.split(" ", 1) for line in (SAMPLES / "text").read_text().splitlines())
    out = []
    for k, name in enumerate(sorted(refs)):
        full = bd.load_utt(name, str(SAMPLES / f"{name}.flac"), "")
        path = folder / f"{name}.wav"
        sf.write(path, full.pcm[: round(CLIP_S * bd.RATE)], bd.RATE)
        words = refs[name].split()[:5]  # about what 2 s hold
        out.append(bd.load_utt(name, str(path), " ".join(words), seed=k))
    return out


@pytest.fixture(scope="module")
def inproc(model: asr.Model, utts: list[bd.Utt]) -> dict:
    return bs.measure_inprocess(model, utts, ["default"])


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def test_reference_items_from_manifest_and_folder(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    row = {"audio_filepath": "/a/x.flac", "duration": 1.0, "text": "HELLO", "utt_id": "x"}
    manifest.write_text(json.dumps(row) + "\n")
    assert bd.reference_items(manifest) == [("x", "/a/x.flac", "HELLO")]
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "1-2-3.flac", np.zeros(1600, np.int16), 16000)
    sf.write(tmp_path / "audio" / "4-5-6.flac", np.zeros(1600, np.int16), 16000)
    (tmp_path / "t.tsv").write_text("1-2-3\tA CAT\n")
    assert bd.reference_items(tmp_path / "audio") == [
        ("1-2-3", str(tmp_path / "audio" / "1-2-3.flac"), "A CAT")
    ]


def test_utterance_padding_and_onset(utts: list[bd.Utt]) -> None:
    for u in utts:
        assert u.pcm.dtype == np.int16
        assert len(u.pcm) == round(CLIP_S * bd.RATE) + round(bd.PAD_S * bd.RATE)
        assert 0.0 <= u.onset_s < u.speech_s == pytest.approx(CLIP_S)
        assert np.abs(u.pcm[-round(bd.PAD_S * bd.RATE) :]).max() < 1000  # quiet room tone


def test_simulated_clock_and_latencies(model: asr.Model, utts: list[bd.Utt]) -> None:
    tl = bd.simulate(model.stream(bd.CONFIGS["default"], decoder="greedy"), utts[0].pcm)
    times = [t for t, _ in tl.events]
    assert times == sorted(times) and tl.done_s >= tl.audio_s and tl.proc_s > 0
    assert all(t >= m["end"] for t, m in tl.events)  # nothing before its audio
    lat = bd.Latency()
    lat.add(tl, utts[0].onset_s, 0.5)
    assert lat.first_partial and lat.compute and _finite(lat.first_partial)
    assert all(v >= 0 for v in lat.lag + lat.compute + lat.final)
    assert all(v >= 0.5 for v in lat.final)  # the endpoint rule waits that long


def test_inprocess_rows(inproc: dict, utts: list[bd.Utt]) -> None:
    out = inproc
    assert len(out["latency"]) == len(out["accuracy"]) == len(bd.DECODINGS)
    for _, cfg, n, whole, stream, rel, met in out["accuracy"]:
        assert cfg == "default" and n == len(utts) and met in ("yes", "no")
        # WER has no upper bound: the references are the clips' first 5 words, and a clip may
        # cut into a sixth, which the model can hear as several
        assert whole >= 0.0 and stream >= 0.0 and math.isfinite(rel)
        if whole > 0:
            assert rel == pytest.approx(stream / whole - 1.0)
    assert set(out["texts"]) == {(d, "default") for d in bd.DECODINGS}
    assert all(len(texts) == len(utts) for texts in out["texts"].values())
    assert 0.0 <= bd.corpus_wer(["A B"], ["A C"]) == 0.5


def test_server_end_to_end(
    model: asr.Model, utts: list[bd.Utt], inproc: dict, tmp_path: Path
) -> None:
    pytest.importorskip("aiohttp")
    flags = "--max-streams 1 --server-utts 1 --capacity-s 1 --load-s 1 --idle-timeout 1"
    args = bs.parse_args([*flags.split(), "--speed", "4", "--limit", "2", "--no-write"])
    served = asyncio.run(bsv.measure_server(model, utts, args, tmp_path / "serve.log"))
    load = served["load"]
    assert bsv.load_passed(load), bsv.render_load(load)
    assert load["threads"][1] <= load["threads"][0] and load["active"] == 0
    for lat, texts in served["latency"].values():
        assert len(texts) == 1 and lat.compute and all(v >= 0 for v in lat.lag)
    assert served["capacity"].count("\n| ") == 2  # one round per decoder
    body = bs.render(args, utts, inproc, served, 0.0)
    for part in ("**Latency**", "**Accuracy**", "**Capacity**", "**Load test**", "Anchors"):
        assert part in body
    results = tmp_path / "RESULTS.md"
    bs.write_section("streaming", "Streaming", body, path=results)
    text = results.read_text()
    assert "<!-- bench:streaming -->" in text and "<!-- /bench:streaming -->" in text
