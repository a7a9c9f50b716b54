"""Epoch order and per-rank batch arithmetic of Tank, as pure functions."""

from __future__ import annotations

import numpy as np


def miles_per_epoch(n: int, batch_size: int, nworld: int, in_same_size: bool) -> int:
    """Batches per epoch and rank: floor (in_same_size) or ceil of n / (batch_size * nworld)."""
    g = batch_size * nworld
    return n // g if in_same_size else -(-n // g)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The sample order of one epoch, a function of (seed, epoch) only."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    # int64 already: no copy (10 million rows are 80 MB)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64, copy=False)


def rank_batch(
    order: np.ndarray, b: int, batch_size: int, nworld: int, rank: int, in_same_size: bool
) -> np.ndarray:
    """Indices of batch `b` for `rank`, given the epoch order.

    Global batch b is order[b*G:(b+1)*G] with G = batch_size*nworld. Without in_same_size the last global
    batch (rem samples) is padded by wrap-around to nworld*ceil(rem/nworld) and split evenly over ranks.
    """
    n = len(order)
    g = batch_size * nworld
    start = b * g
    rem = n - start
    if in_same_size or rem >= g:
        return order[start + rank * batch_size : start + (rank + 1) * batch_size]
    per = -(-rem // nworld)
    padded = order[np.arange(start, start + per * nworld) % n]  # wraps around, repeatedly if n < nworld
    return padded[rank * per : (rank + 1) * per]


def windowed_order(
    file_rows: list[int],
    seed: int,
    epoch: int,
    shuffle: bool,
    window: int,
    nworld: int,
    rank: int,
    in_same_size: bool,
) -> np.ndarray:
    """This rank's samples of one epoch when the data set does not fit the cache, in reading order.

    The shards are permuted per (seed, epoch); the rows of that shard order are cut into `nworld` contiguous spans
    of equal length (a rank reads its own shards; only a shard on a span's edge is shared, by different rows);
    within a span, rows are shuffled among groups of `window` consecutive shards, so that a rank needs about
    `window` shards at a time. Without in_same_size each span has ceil(n / nworld) rows, the last one padded by
    wrap-around as the global order pads its last batch. A function of (seed, epoch, rows, nworld, rank) only.
    """
    rows = np.asarray(file_rows, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    n = int(starts[-1])
    shards = (
        np.random.default_rng([seed, epoch, 1]).permutation(len(rows)) if shuffle else np.arange(len(rows))
    )
    stream = np.concatenate([np.arange(starts[s], starts[s + 1], dtype=np.int64) for s in shards])
    place = np.empty(len(rows), dtype=np.int64)
    place[shards] = np.arange(len(rows))  # position of each shard in this epoch's shard order
    per = n // nworld if in_same_size else -(-n // nworld)
    span = stream[np.arange(rank * per, (rank + 1) * per) % n]
    if not shuffle or not len(span):
        return span
    group = place[np.searchsorted(starts, span, side="right") - 1] // window
    cuts = np.flatnonzero(np.diff(group)) + 1
    rng = np.random.default_rng([seed, epoch, 2, rank])
    return np.concatenate([rng.permutation(part) for part in np.split(span, cuts)])
