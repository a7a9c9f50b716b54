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
