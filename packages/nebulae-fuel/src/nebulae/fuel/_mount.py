"""What Tank reads, opened and checked: `data_path` resolved to local files or a remote data set mounted through
the shard cache, the checks of `data_specf`, the callables and the columns, and the worker type chosen for them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._cache import ShardCache
from ._constants import FRAME_KEY
from ._dtype import split_dtype
from ._order import windowed_order
from ._procs import process_safe
from ._remote import RemoteSet, is_url, local_path, open_remote
from ._source import KEEP_OPEN, Source, resolve_paths

DEFAULT_WORKER_TYPE = "process"  # fixed by bench/bench_fuel.py (JPEG + prep: processes ~1.5x threads)


def open_data_path(
    data_path: Any, storage_options: dict[str, Any] | None
) -> tuple[RemoteSet | None, Any, str]:
    """(the remote data set or None, the local files or None for a remote one, the files' kind)."""
    remote = None
    paths = None
    # file:// names a local path, alone or in a list of files
    if isinstance(data_path, (list, tuple)):
        data_path = [local_path(p) for p in data_path]
    else:
        data_path = local_path(data_path)
    if is_url(data_path):
        remote = open_remote(data_path, storage_options)
        kind = remote.kind
    elif isinstance(data_path, (list, tuple)) and any(is_url(p) for p in data_path):
        raise ValueError(
            "'data_path' takes one URL (a file, a family's name or its manifest), not a list of URLs"
        )
    else:
        paths, kind = resolve_paths(data_path)
    return remote, paths, kind


def check_specf(data_specf: Any) -> None:
    if not isinstance(data_specf, dict):
        raise TypeError(f"'data_specf' must be a dict of column -> dtype (got {type(data_specf).__name__})")
    if not data_specf:
        raise ValueError("'data_specf' is empty; list at least one column, e.g. {'image': 'vuint8'}")
    for key, dtype in data_specf.items():
        try:
            split_dtype(dtype)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"data_specf[{key!r}]: {exc}") from None


def check_callables(fetch_fn: Any, prep_fn: Any, collate_fn: Any, worker_type: Any) -> None:
    for name, fn in (("fetch_fn", fetch_fn), ("prep_fn", prep_fn), ("collate_fn", collate_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name!r} must be callable or None (got {type(fn).__name__})")
    if worker_type not in (None, "thread", "process"):
        raise ValueError(f"'worker_type' must be 'thread' or 'process' (got {worker_type!r})")


def mount_remote(
    remote: RemoteSet,
    cache_dir: Any,
    cache_bytes: int | None,
    seed: int,
    shuffle: bool,
    shuffle_window: int,
    nworld: int,
    rank: int,
    every_shard: bool = False,
) -> tuple[ShardCache, list[str], tuple[list[int], int] | None, tuple[list[int], int, int] | None]:
    """(the shard cache, the local cache paths of a remote data set, None or the windowed plan (rows per shard, the
    shard opened for the columns), None or how a Source opens the shards: (rows per shard, the shard opened for the
    columns, how many it keeps open); None opens them all at once, `every_shard` asks for that).

    When the data set fits the cache, the global order reads every shard from the first batch on: the others start
    downloading in the background, the shard opened for the columns is fetched now (`cache.wait()` before the
    first batch), so that the caller starts its workers meanwhile. Else the shards are read in the windowed order,
    fetched as the epoch reaches them (the shard every process opens for the columns is pinned meanwhile)."""
    cache = ShardCache(remote, cache_dir, cache_bytes)
    try:
        everything = list(range(len(remote.entries)))
        fits = remote.total_bytes <= cache.budget
        if any(e.rows is None for e in remote.entries) or (fits and every_shard):
            # a lone file without a manifest (its rows are known only once it is here), or the frame counts of
            # every shard asked for
            return cache, cache.acquire_all(everything, tag=0), None, None
        rows = [int(e.rows or 0) for e in remote.entries]
        if fits:
            # the others start first: shard 0, which this process opens for the columns, downloads alongside them
            cache.acquire_later(everything[1:], tag=0)
            cache.acquire(0, tag=0)
            return cache, list(cache.paths), None, (rows, 0, len(rows))
        n = sum(rows)
        first = windowed_order(rows, seed, 0, shuffle, shuffle_window, nworld, rank, False)
        starts = np.concatenate([[0], np.cumsum(rows)])
        meta = int(np.searchsorted(starts, first[0], side="right") - 1) if n else 0
        cache.acquire(meta, tag=0)
        return cache, list(cache.paths), (rows, meta), (rows, meta, KEEP_OPEN)
    except BaseException:
        cache.close()
        raise


def check_columns(source: Source, data_specf: dict[str, str]) -> tuple[list[str], int, list[int]]:
    """(the columns besides the frame key, their common number of rows, the rows per file)."""
    source.check_keys(list(data_specf))
    keys = [k for k in data_specf if k != FRAME_KEY]
    if not keys:
        raise ValueError(f"'data_specf' lists only {FRAME_KEY}; add a column")
    length = source.length(keys[0])
    # rows per file, for the data set's identity in state_dict()
    file_rows = np.diff(source.starts(keys[0])).tolist()
    for key in keys[1:]:
        if source.length(key) != length:
            raise ValueError(
                f"column {key!r} has {source.length(key)} rows but {keys[0]!r} has {length}; "
                "data_specf columns must have one row per sample"
            )
    return keys, length, file_rows


def check_castable(source: Source, specf: dict[str, str]) -> None:
    """Refuse columns whose stored values the default fetcher cannot cast to their data_specf dtype."""
    for key, dtype in specf.items():
        base, variable = split_dtype(dtype)
        if variable or base == "str" or dtype.startswith("v"):
            continue  # handed over as stored
        stored = source.stored_dtype(key)
        if stored.kind not in "biufUSO":
            name = os.path.basename(source.paths[0])
            raise ValueError(
                f"{name}: column {key!r} stores {stored} values, which data_specf[{key!r}] = {dtype!r} cannot "
                "be cast from (Tank reads bool, integer, float and str columns); pass a fetch_fn that converts "
                "them, or re-pack the column as one of those types"
            )


def choose_worker_type(
    source: Source,
    keys: list[str],
    fetch_fn: Callable[..., Any] | None,
    prep_fn: Callable[..., Any] | None,
    collate_fn: Callable[..., Any] | None,
) -> str:
    # fixed by bench/bench_fuel.py: per-item Python work (decode, fetch, prep) runs ~1.5x faster in processes; pure
    # memory-mapped RAW/numeric batches are copies, fastest in threads
    light = fetch_fn is None and prep_fn is None and collate_fn is None
    light = light and all(source.encode_of(k) in (None, "RAW") for k in keys)
    safe = process_safe(fetch_fn, prep_fn, collate_fn)
    return DEFAULT_WORKER_TYPE if safe and not light else "thread"
