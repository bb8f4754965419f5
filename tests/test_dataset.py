"""SpeechDataset, collate and the resumable DataLoader."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from asr.data.augment import AugmentConfig
from asr.data.dataset import (
    Batch,
    DatasetError,
    SpeechDataset,
    collate,
    make_dataloader,
)
from asr.data.manifest import Utterance
from asr.data.sampler import DynamicBucketSampler
from asr.io.audio import load_audio, save_audio

RATE = 16000


class LetterTokenizer:
    """Test stand-in with the Tokenizer interface's encode: blank 0, space 1, A-Z, apostrophe."""

    vocab: ClassVar[list[str]] = ["<blank>", " ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "'"]

    def encode(self, text: str) -> list[int]:
        return [self.vocab.index(c) for c in text]


def tokenizer() -> object:
    try:
        from asr.text.tokenizer import CharTokenizer
    except ImportError:
        return LetterTokenizer()
    return CharTokenizer()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Utterance]:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    utts = []
    words = ["YES", "NO", "HELLO WORLD", "IT'S A TEST", "A", "SPEECH DATA"]
    for i in range(12):
        seconds = 0.3 + 0.1 * i
        path = root / f"utt{i:02d}.wav"
        save_audio(path, rng.uniform(-0.3, 0.3, int(seconds * RATE)), RATE)
        utts.append(Utterance(str(path), seconds, words[i % len(words)], utt_id=f"u{i:02d}"))
    long_path = root / "long.wav"
    save_audio(long_path, rng.uniform(-0.3, 0.3, 2 * RATE), RATE)
    utts.append(Utterance(str(long_path), 0.5, "SEGMENT", offset=1.0))
    return utts


def test_item_reads_audio_lazily_and_encodes_text(corpus: list[Utterance]) -> None:
    ds = SpeechDataset(corpus, tokenizer(), RATE)
    ex = ds[3]
    expected, _ = load_audio(corpus[3].audio_filepath)
    assert ex.utt_id == "u03" and ex.index == 3
    assert np.array_equal(ex.waveform, expected)
    assert ex.tokens.tolist() == tokenizer().encode(corpus[3].text)
    seg = ds[12]
    whole, _ = load_audio(corpus[12].audio_filepath)
    assert seg.utt_id == "long@1"  # asr.data.manifest.utterance_id
    assert np.array_equal(seg.waveform, whole[RATE : RATE + RATE // 2])


def test_collate_pads_and_keeps_order(corpus: list[Utterance]) -> None:
    ds = SpeechDataset(corpus, tokenizer(), RATE)
    examples = [ds[i] for i in (5, 0, 9)]
    batch = collate(examples, RATE)
    n = [len(e.waveform) for e in examples]
    t = [len(e.tokens) for e in examples]
    assert batch.waveforms.shape == (3, max(n)) and batch.waveforms.dtype == torch.float32
    assert batch.lengths.tolist() == n and batch.target_lengths.tolist() == t
    assert batch.targets.shape == (3, max(t)) and batch.targets.dtype == torch.long
    assert batch.utt_ids == ("u05", "u00", "u09")
    for row, e in enumerate(examples):
        assert torch.equal(batch.waveforms[row, : n[row]], torch.from_numpy(e.waveform))
        assert not batch.waveforms[row, n[row] :].any()
        assert batch.targets[row, : t[row]].tolist() == e.tokens.tolist()
        assert not batch.targets[row, t[row] :].any()
    assert batch.audio_seconds == pytest.approx(sum(n) / RATE)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.waveforms, batch.waveforms)


def test_loader_yields_every_utterance_once_in_sampler_order(corpus: list[Utterance]) -> None:
    ds = SpeechDataset(corpus, tokenizer(), RATE)
    sampler = DynamicBucketSampler(ds.durations, 2.5, num_buckets=3, seed=4)
    expected = [[ds.utt_id(i) for i in b] for b in sampler]
    loader = make_dataloader(ds, sampler)
    assert len(loader) == len(expected)
    got = [list(b.utt_ids) for b in loader]
    assert got == expected
    assert sorted(u for b in got for u in b) == sorted(ds.utt_id(i) for i in range(len(ds)))


def augmented_epoch(corpus: list[Utterance], workers: int, epoch: int) -> list[Batch]:
    aug = AugmentConfig(speed_factors=(0.9, 1.0, 1.1), reverb_prob=0.5)
    ds = SpeechDataset(corpus, tokenizer(), RATE, augment=aug, seed=3)
    loader = make_dataloader(ds, DynamicBucketSampler(ds.durations, 3.0, seed=3), workers)
    loader.set_epoch(epoch)
    return list(loader)


def test_augmentation_is_independent_of_worker_count(corpus: list[Utterance]) -> None:
    base = augmented_epoch(corpus, 0, epoch=1)
    for workers in (1, 2):
        other = augmented_epoch(corpus, workers, epoch=1)
        assert [b.utt_ids for b in other] == [b.utt_ids for b in base]
        for a, b in zip(base, other):
            assert torch.equal(a.lengths, b.lengths) and torch.equal(a.waveforms, b.waveforms)
    plain = SpeechDataset(corpus, tokenizer(), RATE)
    lengths = {plain.utt_id(i): len(plain[i].waveform) for i in range(len(plain))}
    changed = [int(n) != lengths[u] for b in base for u, n in zip(b.utt_ids, b.lengths.tolist())]
    assert any(changed)  # speed perturbation acted
    epoch2 = augmented_epoch(corpus, 0, epoch=2)
    by_id = lambda batches: {u: w for b in batches for u, w in zip(b.utt_ids, b.waveforms)}  # noqa: E731
    one, two = by_id(base), by_id(epoch2)
    assert any(not torch.equal(one[u], two[u]) for u in one)


def test_loader_resume_is_exact_despite_prefetching(corpus: list[Utterance]) -> None:
    def build() -> tuple[SpeechDataset, object]:
        ds = SpeechDataset(corpus, tokenizer(), RATE, AugmentConfig(speed_factors=(0.9, 1.1)))
        sampler = DynamicBucketSampler(ds.durations, 1.5, seed=8)
        return ds, make_dataloader(ds, sampler, num_workers=2, prefetch_factor=4)

    _, loader = build()
    loader.set_epoch(2)
    reference = [b.utt_ids for b in loader]
    assert len(reference) > 5
    _, loader = build()
    loader.set_epoch(2)
    it = iter(loader)
    head = [next(it).utt_ids for _ in range(3)]
    state = loader.state_dict()
    assert state["epoch"] == 2 and state["batches_done"] == 3  # not what the workers fetched
    del it
    _, resumed = build()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    assert len(resumed) == len(reference) - 3
    assert head + [b.utt_ids for b in resumed] == reference
    assert resumed.state_dict()["batches_done"] == len(reference)
    resumed.set_epoch(3)
    assert resumed.state_dict()["batches_done"] == 0


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_audio_names_the_file(corpus: list[Utterance], tmp_path: Path, workers: int) -> None:
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC but not really")
    utts = [*corpus[:2], Utterance(str(bad), 1.0, "A", utt_id="bad1")]
    ds = SpeechDataset(utts, tokenizer(), RATE)
    loader = make_dataloader(ds, DynamicBucketSampler(ds.durations, 100.0), num_workers=workers)
    with pytest.raises(DatasetError) as info:
        list(loader)
    message = str(info.value)
    assert "\n" not in message
    assert "bad1" in message and "broken.flac" in message


def test_unencodable_text_is_a_clear_error(corpus: list[Utterance]) -> None:
    utts = [Utterance(corpus[0].audio_filepath, 0.3, "lower case?", utt_id="x")]
    ds = SpeechDataset(utts, tokenizer(), RATE)
    with pytest.raises(DatasetError, match=r"utterance x .*cannot encode"):
        ds[0]


def test_sampler_dataset_size_mismatch(corpus: list[Utterance]) -> None:
    ds = SpeechDataset(corpus, tokenizer(), RATE)
    with pytest.raises(DatasetError, match="sampler covers 3"):
        make_dataloader(ds, DynamicBucketSampler([1.0, 1.0, 1.0], 10.0))
