"""asr.inference.forward: per-utterance log-probs equal the model run on each utterance alone
(padding does not leak), unreadable items are failures of their batch, duration batching, devices;
and the one utterance identity of asr.data.manifest / asr.data.inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from asr.data.inputs import AudioItem, collect_inputs, manifest_items
from asr.data.manifest import Utterance, utterance_id
from asr.inference.forward import (
    InferenceError,
    duration_batches,
    infer_batch,
    iter_emissions,
    read_item,
    resolve_device,
)
from tests.tone_corpus import TINY_MODEL, make_corpus


@pytest.fixture(scope="module")
def model():
    """A randomly initialised tiny CTC model (eval mode)."""
    from asr import config as config_io
    from asr.models.ctc import CTCModel, ModelConfig

    torch.manual_seed(0)
    return CTCModel(config_io.from_dict(ModelConfig, TINY_MODEL, where="test"), 29).eval()


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[AudioItem]:
    manifest = make_corpus(tmp_path_factory.mktemp("audio"), 5, seed=4, name="inf")
    return manifest_items(manifest)


def _alone(model, item: AudioItem) -> torch.Tensor:
    """``(frames, vocab)`` log-probs of ``item`` run through the model by itself."""
    wave = torch.from_numpy(read_item(item, model.cfg.frontend.sample_rate_hz))[None]
    with torch.no_grad():
        log_probs, lengths = model(wave, torch.tensor([wave.shape[1]]))
    return log_probs[0, : int(lengths[0])]


def test_batched_log_probs_equal_each_utterance_alone(model, items):
    durations = {len(read_item(it, 16000)) for it in items}
    assert len(durations) > 1  # the batch really is padded
    keyed = [(10 + i, item) for i, item in enumerate(items)]
    batch = infer_batch(model, keyed)
    assert batch.keys == tuple(k for k, _ in keyed) and batch.failures == ()
    assert batch.log_probs.shape[0] == len(items) and batch.frame_shift_s == model.frame_shift_s
    for row, item in enumerate(items):
        got = batch.utterance(row)
        want = _alone(model, item)
        assert got.shape == want.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_unreadable_items_are_failures_of_their_batch(model, items, tmp_path):
    missing = AudioItem(str(tmp_path / "missing.wav"))
    batch = infer_batch(model, [(0, items[0]), (1, missing), (2, items[1])])
    assert batch.keys == (0, 2)
    [(key, message)] = batch.failures
    assert key == 1 and "missing.wav" in message
    torch.testing.assert_close(batch.utterance(1), _alone(model, items[1]), atol=1e-4, rtol=1e-4)
    empty = infer_batch(model, [(5, missing)])
    assert empty.keys == () and len(empty.failures) == 1


@pytest.mark.parametrize("num_workers", [0, 1])
def test_iter_emissions_keeps_batches_and_order(model, items, num_workers):
    batches = [[(0, items[0]), (1, items[1])], [(2, items[2])], [(3, items[3]), (4, items[4])]]
    out = list(iter_emissions(model, batches, num_workers))
    assert [b.keys for b in out] == [(0, 1), (2,), (3, 4)]
    for batch in out:
        for row, key in enumerate(batch.keys):
            want = _alone(model, items[key])
            torch.testing.assert_close(batch.utterance(row), want, atol=1e-4, rtol=1e-4)


def test_duration_batches_budget_and_cover():
    durations = [3.0, 1.0, 7.5, 2.0, 2.0, 9.0, 0.5, 4.0]
    batches = duration_batches(durations, 8.0)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    for batch in batches:
        longest = max(durations[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= 8.0
        assert durations[batch[0]] == longest  # longest first
    assert [5] in batches  # 9 s alone, over budget
    assert all(len(b) <= 2 for b in duration_batches(durations, 100.0, max_batch_size=2))
    with pytest.raises(InferenceError):
        duration_batches(durations, 0.0)


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InferenceError, match="no CUDA device"):
            resolve_device("cuda")


def test_one_utterance_identity(tmp_path):
    assert utterance_id("/a/talk.flac") == "talk"
    assert utterance_id("/a/talk.flac", 12.5) == "talk@12.5"
    assert utterance_id("/a/talk.flac", 12.5, "spk-1") == "spk-1"
    utt = Utterance("/a/talk.flac", 3.0, "HI", offset=12.5)
    item = AudioItem.from_utterance(utt)
    assert utt.name == item.name == "talk@12.5" and item.offset_s == 12.5
    manifest = tmp_path / "m.jsonl"
    line = {"audio_filepath": "x.wav", "duration": 0, "text": "A", "offset": 1.25}
    manifest.write_text(json.dumps(line) + "\n")
    [got], errors = collect_inputs([manifest])
    assert errors == [] and got.name == "x@1.25" and got.duration_s is None
    assert Path(got.path).is_absolute()
