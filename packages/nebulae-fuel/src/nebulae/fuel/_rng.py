"""Per-batch random generators for augmentation, private to the thread that builds the batch."""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np

_local = threading.local()


def seed_batch(seed: int, epoch: int, batch: int) -> tuple[random.Random, np.random.Generator]:
    """Seed this thread's generators for batch `batch` of epoch `epoch` and return them."""
    ss = np.random.SeedSequence([seed, epoch, batch])
    py = random.Random(int(ss.generate_state(2, np.uint64)[0]))
    gen = np.random.default_rng(ss)
    _local.pair = (py, gen)
    return py, gen


def clear_batch() -> None:
    _local.pair = None


def worker_rng() -> tuple[random.Random, np.random.Generator] | None:
    """The (random.Random, numpy Generator) of the batch being built in this thread, or None outside a Tank.

    Comburant draws from these inside a Tank so that augmentation depends only on (seed, epoch, batch),
    whatever the worker count or type.

    Example:
        >>> worker_rng() is None
        True
    """
    return getattr(_local, "pair", None)


def reseed_globals(seed: int, epoch: int, batch: int) -> Any:
    """Seed the global `random` and `numpy.random` like the batch generators; return their previous states."""
    saved = (random.getstate(), np.random.get_state())
    ss = np.random.SeedSequence([seed, epoch, batch, 1])
    state = ss.generate_state(2, np.uint32)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    return saved


def restore_globals(saved: Any) -> None:
    random.setstate(saved[0])
    np.random.set_state(saved[1])
