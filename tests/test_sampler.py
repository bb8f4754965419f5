"""DynamicBucketSampler: budget, coverage, sharding, shuffling, exact resumption."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.data.sampler import DynamicBucketSampler, SamplerError, pack_batches


def make_durations(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(1.0, 17.0, size=n), 2)


def padded_seconds(batch: list[int], durations: np.ndarray) -> float:
    return len(batch) * float(durations[batch].max())


def test_no_batch_exceeds_budget_except_single_long_utterance() -> None:
    durations = np.concatenate([make_durations(200), [45.0, 60.0]])
    sampler = DynamicBucketSampler(durations, max_batch_seconds=40.0, max_batch_size=8, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    for batch in batches:
        assert len(batch) <= 8
        if padded_seconds(batch, durations) > 40.0:
            assert len(batch) == 1 and durations[batch[0]] > 40.0
    singles = sorted(b[0] for b in batches if padded_seconds(b, durations) > 40.0)
    assert singles == [200, 201]


def test_packing_is_greedy_and_tight() -> None:
    durations = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    batches = pack_batches(np.arange(5), durations, max_batch_seconds=9.0)
    # [1,2,3]: 3*3=9 fits; + 4 -> 4*4=16 > 9; [4,10]: 2*10 > 9, so 4 alone; 10 alone (> budget).
    assert batches == [[0, 1, 2], [3], [4]]


def test_each_utterance_exactly_once_per_epoch_single_rank() -> None:
    durations = make_durations(257)
    sampler = DynamicBucketSampler(durations, max_batch_seconds=60.0, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        flat = [i for b in sampler for i in b]
        assert sorted(flat) == list(range(len(durations)))


@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_ranks_cover_everything_with_equal_counts(world_size: int, drop_remainder: bool) -> None:
    durations = make_durations(211, seed=world_size)
    ranks = [
        DynamicBucketSampler(
            durations, 50.0, seed=5, rank=r, world_size=world_size, drop_remainder=drop_remainder
        )
        for r in range(world_size)
    ]
    for s in ranks:
        s.set_epoch(2)
    per_rank = [list(s) for s in ranks]
    counts = {len(b) for b in per_rank}
    assert len(counts) == 1 and counts == {len(ranks[0])}
    global_batches = ranks[0].global_batches(2)
    seen = [i for batches in per_rank for b in batches for i in b]
    if drop_remainder:
        assert len(per_rank[0]) == len(global_batches) // world_size
        assert len(seen) == len(set(seen))  # nothing repeated
        dropped = global_batches[len(per_rank[0]) * world_size :]
        assert set(seen) | {i for b in dropped for i in b} == set(range(len(durations)))
    else:
        assert len(per_rank[0]) == -(-len(global_batches) // world_size)
        assert set(seen) == set(range(len(durations)))
        assert len(seen) - len(durations) <= sum(len(b) for b in global_batches[: world_size - 1])


def test_more_ranks_than_batches_still_equal_counts() -> None:
    durations = [1.0, 2.0, 3.0]
    ranks = [DynamicBucketSampler(durations, 100.0, rank=r, world_size=4) for r in range(4)]
    assert [len(list(s)) for s in ranks] == [1, 1, 1, 1]


def test_epochs_shuffle_differently_same_epoch_is_identical() -> None:
    durations = make_durations(300)
    a = DynamicBucketSampler(durations, 60.0, seed=7)
    b = DynamicBucketSampler(durations, 60.0, seed=7)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(5)
    assert list(a) != first
    c = DynamicBucketSampler(durations, 60.0, seed=8)
    c.set_epoch(4)
    assert list(c) != first


def test_no_shuffle_is_sorted_and_epoch_independent() -> None:
    durations = make_durations(100)
    sampler = DynamicBucketSampler(durations, 60.0, shuffle=False)
    first = list(sampler)
    flat = [i for b in first for i in b]
    assert np.all(np.diff(durations[flat]) >= 0)
    sampler.set_epoch(1)
    assert list(sampler) == first


def test_sorted_epochs_go_shortest_first_then_shuffle() -> None:
    durations = make_durations(120, seed=4)
    sampler = DynamicBucketSampler(durations, max_batch_seconds=40.0, sorted_epochs=2, seed=1)
    plain = DynamicBucketSampler(durations, max_batch_seconds=40.0, seed=1)
    for epoch in (0, 1):
        flat = [i for batch in sampler.rank_batches(epoch) for i in batch]
        assert flat == np.argsort(durations, kind="stable").tolist()
    assert sampler.rank_batches(2) == plain.rank_batches(2)  # shuffled as usual from epoch 2
    assert sampler.rank_batches(2) != sampler.rank_batches(0)
    with pytest.raises(SamplerError, match="sorted_epochs"):
        DynamicBucketSampler(durations, max_batch_seconds=40.0, sorted_epochs=-1)


def test_buckets_keep_similar_lengths_together() -> None:
    durations = make_durations(1000)
    bucketed = DynamicBucketSampler(durations, 120.0, num_buckets=10, seed=0)
    flat = DynamicBucketSampler(durations, 120.0, num_buckets=1, seed=0)

    def padding(sampler: DynamicBucketSampler) -> float:
        batches = list(sampler)
        padded = sum(padded_seconds(b, durations) for b in batches)
        return 1.0 - durations.sum() / padded

    assert padding(bucketed) < 0.1 < padding(flat)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(min_value=0, max_value=60),
    epoch=st.integers(min_value=0, max_value=3),
    world_size=st.integers(min_value=1, max_value=3),
)
def test_resume_at_batch_k_yields_exactly_the_rest(k: int, epoch: int, world_size: int) -> None:
    durations = make_durations(240, seed=11)
    rank = world_size - 1
    full = DynamicBucketSampler(durations, 45.0, seed=2, rank=rank, world_size=world_size)
    full.set_epoch(epoch)
    reference = list(full)
    k = min(k, len(reference))

    run = DynamicBucketSampler(durations, 45.0, seed=2, rank=rank, world_size=world_size)
    run.set_epoch(epoch)
    it = iter(run)
    head = [next(it) for _ in range(k)]
    state = run.state_dict()
    assert state["epoch"] == epoch and state["batches_done"] == k

    resumed = DynamicBucketSampler(durations, 45.0, seed=2, rank=rank, world_size=world_size)
    resumed.load_state_dict(state)
    resumed.set_epoch(epoch)  # a trainer calls this again at the start of the epoch: a no-op
    assert len(resumed) == len(reference) - k
    rest = list(resumed)
    assert head + rest == reference
    # the following epoch starts from its first batch
    resumed.set_epoch(epoch + 1)
    full.set_epoch(epoch + 1)
    assert list(resumed) == list(full)


def test_state_with_explicit_batches_done() -> None:
    durations = make_durations(100)
    s = DynamicBucketSampler(durations, 30.0, seed=4)
    s.set_epoch(1)
    reference = list(s)
    it = iter(s)
    for _ in range(5):  # a prefetching loader asked for 5, the trainer finished 3
        next(it)
    state = s.state_dict(batches_done=3)
    t = DynamicBucketSampler(durations, 30.0, seed=4)
    t.load_state_dict(state)
    assert list(t) == reference[3:]
    assert list(t) == reference  # a second iteration of the epoch is a whole epoch again


def test_resume_with_mismatched_config_is_a_clear_error() -> None:
    durations = make_durations(50)
    state = DynamicBucketSampler(durations, 30.0, seed=1).state_dict()
    with pytest.raises(SamplerError, match=r"seed=1.*seed=2"):
        DynamicBucketSampler(durations, 30.0, seed=2).load_state_dict(state)
    with pytest.raises(SamplerError, match="world_size"):
        DynamicBucketSampler(durations, 30.0, seed=1, world_size=2).load_state_dict(state)
    bad = dict(state, batches_done=10_000)
    with pytest.raises(SamplerError, match="batches_done=10000"):
        DynamicBucketSampler(durations, 30.0, seed=1).load_state_dict(bad)


def test_bad_arguments() -> None:
    with pytest.raises(SamplerError, match="rank 2"):
        DynamicBucketSampler([1.0], 10.0, rank=2, world_size=2)
    with pytest.raises(SamplerError, match="max_batch_seconds"):
        DynamicBucketSampler([1.0], 0.0)
    with pytest.raises(SamplerError, match="utterance 1"):
        DynamicBucketSampler([1.0, float("nan")], 10.0)
    with pytest.raises(SamplerError, match="non-empty"):
        DynamicBucketSampler([], 10.0)


def test_works_as_torch_batch_sampler() -> None:
    torch = pytest.importorskip("torch")
    durations = make_durations(40)
    sampler = DynamicBucketSampler(durations, 20.0, seed=0)
    dataset = list(range(40))
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=list)
    assert len(loader) == len(sampler)
    assert sorted(i for b in loader for i in b) == list(range(40))
