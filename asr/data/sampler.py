"""Dynamic batches by seconds of audio: duration buckets, epoch-seeded shuffling, DDP sharding,
exact mid-epoch resumption.

:class:`DynamicBucketSampler` is a *batch sampler*: each item it yields is a list of utterance
indices, to be passed to ``DataLoader(batch_sampler=...)``.

How an epoch's batches are made (all from ``numpy.random.default_rng([seed, epoch])``, so every rank
computes the same list without communicating):

1. Utterances are put into ``num_buckets`` duration buckets whose edges are quantiles of all
   durations (each bucket holds about the same number of utterances; utterances of similar length
   share batches, so little of a batch is padding).
2. With ``shuffle=True`` each bucket is shuffled and packed greedily in that order; with
   ``shuffle=False`` all utterances are sorted by duration (ties by index) and packed in that order
   (the best packing, for validation).
3. Packing budget: the *padded* seconds of a batch, ``len(batch) * max(duration in batch)``,
   must not exceed ``max_batch_seconds`` (padded seconds are what activations, hence memory,
   cost), and ``len(batch)`` must not exceed ``max_batch_size`` when given. An utterance longer
   than the whole budget cannot be split and forms a batch of its own (the only batches over
   budget).
4. With ``shuffle=True`` the list of batches is shuffled, so buckets are interleaved.
5. Sharding: the global list is made a multiple of ``world_size`` by repeating batches from its
   start (``drop_remainder=False``, the default: nothing is lost, at most ``world_size - 1``
   batches are seen twice in an epoch) or by dropping its last batches (``drop_remainder=True``);
   rank ``r`` takes batches ``r, r + world_size, r + 2 * world_size, ...``. Every rank gets exactly
   the same number of batches, so DDP ranks never wait on a missing step.

The budget is computed on the manifest durations; speed perturbation at factor ``f`` makes an
utterance ``1/f`` times longer, so with factors down to 0.9 a batch may hold up to 11 % more audio.

Resumption: :meth:`state_dict` records the epoch and how many of this rank's batches of that
epoch are done; after :meth:`load_state_dict` the next iteration yields exactly the remaining
batches (batch ``k`` onwards of epoch ``e``, the same batches an uninterrupted run would have
yielded). A DataLoader with workers asks the sampler for batches ahead of the training loop, so a
trainer passes its own count of finished batches: ``state_dict(batches_done=k)``
(:class:`asr.data.dataset.SpeechDataLoader` does this itself).

Example::

    sampler = DynamicBucketSampler([u.duration for u in utts], max_batch_seconds=300.0,
                                   seed=1, rank=rank, world_size=world_size)
    for epoch in range(start_epoch, epochs):
        sampler.set_epoch(epoch)
        for indices in sampler:
            ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from asr.errors import AsrError


class SamplerError(AsrError):
    """Bad sampler arguments, or a saved sampler state that does not fit this sampler."""


def bucket_edges(durations: np.ndarray, num_buckets: int) -> np.ndarray:
    """Inner bucket boundaries: the ``1/num_buckets, ..., (num_buckets-1)/num_buckets`` quantiles.

    Args:
        durations: ``(utterances,)`` seconds.
        num_buckets: number of buckets (>= 1).

    Returns:
        ``(num_buckets - 1,)`` non-decreasing edges; utterance ``i`` goes to bucket
        ``searchsorted(edges, durations[i], side="right")``.
    """
    if num_buckets <= 1 or len(durations) == 0:
        return np.zeros(0)
    return np.quantile(durations, np.arange(1, num_buckets) / num_buckets)


def pack_batches(
    order: np.ndarray,
    durations: np.ndarray,
    max_batch_seconds: float,
    max_batch_size: int | None = None,
) -> list[list[int]]:
    """Greedily cut ``order`` into consecutive batches within the padded-seconds budget.

    Args:
        order: ``(n,)`` utterance indices, in the order they are packed.
        durations: ``(utterances,)`` seconds for every index.
        max_batch_seconds: budget on ``len(batch) * max(duration in batch)``.
        max_batch_size: cap on utterances per batch (None: no cap).

    Returns:
        Batches (lists of indices) covering ``order`` exactly once, in order. An utterance longer
        than the budget is a batch on its own.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0.0
    for index in order.tolist():
        d = float(durations[index])
        new_longest = max(longest, d)
        fits = (len(current) + 1) * new_longest <= max_batch_seconds
        if current and (not fits or (max_batch_size and len(current) >= max_batch_size)):
            batches.append(current)
            current, new_longest = [], d
        current.append(index)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


class DynamicBucketSampler:
    """Batch sampler yielding lists of indices whose padded duration fits ``max_batch_seconds``.

    Args:
        durations: seconds of each utterance ``(utterances,)``, e.g. ``[u.duration for u in utts]``.
        max_batch_seconds: budget on padded seconds per batch, ``batch size * longest utterance``.
        max_batch_size: cap on utterances per batch; None (default) for no cap.
        num_buckets: number of quantile duration buckets (default 10); 1 disables bucketing.
        shuffle: shuffle within buckets and the batch order, per epoch (default True); False packs
            utterances sorted by duration, the same every epoch.
        sorted_epochs: the first this many epochs (default 0) are packed shortest utterance
            first, as with ``shuffle=False`` (SortaGrad, Amodei et al. 2016: short utterances
            first help CTC models find their first alignments).
        seed: base seed (default 0); epoch ``e`` uses ``default_rng([seed, e])``.
        rank: this process's rank in ``[0, world_size)`` (default 0).
        world_size: number of processes sharing the data (default 1).
        drop_remainder: make the batch count a multiple of ``world_size`` by dropping the last
            batches (True) instead of repeating the first ones (False, default).
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        *,
        max_batch_size: int | None = None,
        num_buckets: int = 10,
        shuffle: bool = True,
        sorted_epochs: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_remainder: bool = False,
    ) -> None:
        self.durations = np.asarray(durations, dtype=np.float64)
        self._check_args(max_batch_seconds, max_batch_size, num_buckets, rank, world_size)
        self.max_batch_seconds = float(max_batch_seconds)
        self.max_batch_size = max_batch_size
        self.num_buckets = int(num_buckets)
        self.shuffle = bool(shuffle)
        if sorted_epochs < 0:
            raise SamplerError(f"sorted_epochs must be >= 0, got {sorted_epochs}")
        self.sorted_epochs = int(sorted_epochs)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_remainder = bool(drop_remainder)
        edges = bucket_edges(self.durations, self.num_buckets)
        self._bucket_of = np.searchsorted(edges, self.durations, side="right")
        self.epoch = 0
        self._start = 0  # batch of this epoch the next iteration starts at (resumption)
        self._yielded = 0  # position after the last batch yielded in this epoch
        self._cache: tuple[int, list[list[int]]] | None = None

    def _check_args(
        self,
        max_batch_seconds: float,
        max_batch_size: int | None,
        num_buckets: int,
        rank: int,
        world_size: int,
    ) -> None:
        d = self.durations
        if d.ndim != 1 or len(d) == 0:
            raise SamplerError("DynamicBucketSampler: durations must be a non-empty 1-D sequence")
        if not np.isfinite(d).all() or (d < 0).any():
            bad = int(np.argmax(~np.isfinite(d) | (d < 0)))
            raise SamplerError(f"DynamicBucketSampler: duration of utterance {bad} is {d[bad]}")
        if not (math.isfinite(max_batch_seconds) and max_batch_seconds > 0):
            raise SamplerError(f"max_batch_seconds must be > 0, got {max_batch_seconds}")
        if max_batch_size is not None and max_batch_size < 1:
            raise SamplerError(f"max_batch_size must be >= 1 or None, got {max_batch_size}")
        if num_buckets < 1:
            raise SamplerError(f"num_buckets must be >= 1, got {num_buckets}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise SamplerError(f"rank {rank} is not in [0, world_size={world_size})")

    # ---- the batches of an epoch -------------------------------------------------------------

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` over all ranks, before sharding (same on every rank)."""
        if not self.shuffle or epoch < self.sorted_epochs:
            order = np.argsort(self.durations, kind="stable")
            return pack_batches(order, self.durations, self.max_batch_seconds, self.max_batch_size)
        rng = np.random.default_rng([self.seed, epoch])
        batches: list[list[int]] = []
        for bucket in range(self.num_buckets):
            members = np.flatnonzero(self._bucket_of == bucket)
            if len(members) == 0:
                continue
            order = rng.permutation(members)
            batches += pack_batches(
                order, self.durations, self.max_batch_seconds, self.max_batch_size
            )
        perm = rng.permutation(len(batches))
        return [batches[i] for i in perm]

    def rank_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``, in the order they are yielded."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        batches = self.global_batches(epoch)
        total = len(batches)
        if self.drop_remainder:
            per_rank = total // self.world_size
        else:
            per_rank = -(-total // self.world_size)
        padded = [batches[i % total] for i in range(per_rank * self.world_size)]
        mine = padded[self.rank :: self.world_size]
        self._cache = (epoch, mine)
        return mine

    def num_batches(self, epoch: int | None = None) -> int:
        """Batches per rank in ``epoch`` (default: the current one); varies a little by epoch."""
        return len(self.rank_batches(self.epoch if epoch is None else epoch))

    # ---- iteration and state -----------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate. Changing it starts the epoch from its first batch;
        setting the epoch already selected (e.g. just after :meth:`load_state_dict`) keeps the
        resumption point."""
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self._start = 0
            self._yielded = 0

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches(self.epoch)
        start, self._start = self._start, 0
        self._yielded = start
        return self._generate(batches, start)

    def _generate(self, batches: list[list[int]], start: int) -> Iterator[list[int]]:
        for position in range(start, len(batches)):
            self._yielded = position + 1
            yield list(batches[position])

    def __len__(self) -> int:
        """Number of batches the next iteration yields (fewer than per epoch after resuming)."""
        return self.num_batches() - self._start

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """The resumption point, as plain ints/floats (safe to save in a checkpoint).

        Args:
            batches_done: batches of the current epoch this rank has finished; default the number
                this sampler has yielded (exact when nothing fetches ahead, e.g. a DataLoader
                with ``num_workers=0``).
        """
        done = self._yielded if batches_done is None else int(batches_done)
        return {
            "epoch": self.epoch,
            "batches_done": done,
            "seed": self.seed,
            "world_size": self.world_size,
            "num_utterances": len(self.durations),
            "max_batch_seconds": self.max_batch_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields batches ``batches_done ..`` of epoch ``epoch``.

        Raises:
            SamplerError: the state was saved with a different seed, world size, data size or
                budget (the batches would differ, so resumption could not be exact).
        """
        mine = {
            "seed": self.seed,
            "world_size": self.world_size,
            "num_utterances": len(self.durations),
            "max_batch_seconds": self.max_batch_seconds,
        }
        for key, value in mine.items():
            if key in state and state[key] != value:
                raise SamplerError(
                    f"cannot resume sampler: checkpoint has {key}={state[key]}, this run has "
                    f"{key}={value} (the batches would differ)"
                )
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        self.epoch = epoch
        total = self.num_batches(epoch)
        if not 0 <= done <= total:
            raise SamplerError(
                f"cannot resume sampler: batches_done={done} outside [0, {total}] for epoch {epoch}"
            )
        self._start = done
        self._yielded = done
