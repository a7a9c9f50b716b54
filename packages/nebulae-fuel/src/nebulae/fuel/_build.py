"""Build one batch (fetch + prep + collate) from an index list; runs in Tank's workers."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeGuard

import numpy as np

from ._collate import Prefilled, Stack, aligned, copy_into, leaves, plan, plan_nbytes
from ._data import Data, prefetch
from ._dtype import split_dtype
from ._rng import clear_batch, reseed_globals, restore_globals, seed_batch
from ._source import Source


def cast(value: Any, dtype: str) -> Any:
    """Default fetch cast: fixed numeric/bool dtypes through np.asarray(v).astype(T); others unchanged."""
    base, variable = split_dtype(dtype)
    if variable or base == "str" or dtype.startswith("v"):
        return value
    if isinstance(value, list):
        return value
    return np.asarray(value).astype(base, copy=False)


def cast_column(source: Source, key: str, dtype: str, values: list[Any], rows: Any) -> list[Any]:
    """`cast` over one column's values of a batch; a value that does not cast names its file, column and row."""
    try:
        return [cast(v, dtype) for v in values]
    except (ValueError, TypeError, OverflowError):
        for v, row in zip(values, np.asarray(rows).tolist(), strict=True):
            try:
                cast(v, dtype)
            except (ValueError, TypeError, OverflowError) as exc:
                path, local = source.locate(key, row)
                raise ValueError(
                    f"{os.path.basename(path)}: column {key!r}, row {local}: value {_short(v)} cannot be cast "
                    f"to data_specf[{key!r}] = {dtype!r} ({exc}); give data_specf the column's type or pass a "
                    "fetch_fn that converts it"
                ) from None
        raise


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Gather(Stack):
    """RAW rows gathered from the memory map directly into the batch buffer."""

    def __init__(self, source: Source, key: str, rows: np.ndarray, row_shape: tuple[int, ...]) -> None:
        self.source, self.key, self.rows = source, key, rows
        self.arrays = None  # type: ignore[assignment]
        self.dtype = np.dtype(np.uint8)
        self.shape = (len(rows), *row_shape)

    def fill(self, out: np.ndarray) -> np.ndarray:
        return self.source.raw_gather(self.key, self.rows, out)


class Block(Stack):
    """An already stacked array, copied once into the destination buffer."""

    def __init__(self, array: np.ndarray) -> None:
        self.arrays = array  # type: ignore[assignment]
        self.dtype = array.dtype
        self.shape = array.shape


def to_plan(tree: Any) -> Any:
    """Turn the numeric arrays of an arbitrary batch into Blocks (so they can travel in shared memory)."""
    if isinstance(tree, np.ndarray) and tree.dtype.kind not in "OUSV" and tree.size:
        return Block(tree)
    if isinstance(tree, dict):
        return {k: to_plan(v) for k, v in tree.items()}
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(to_plan(v) for v in tree)
    if isinstance(tree, list):
        return [to_plan(v) for v in tree]
    return tree


class BatchBuilder:
    """Picklable recipe for batches; opens its own file handles lazily in each process."""

    def __init__(
        self,
        paths: list[str],
        kind: str,
        decode: bool,
        specf: dict[str, str],
        fetch_fn: Callable[..., Any] | None,
        prep_fn: Callable[..., Any] | None,
        collate_fn: Callable[..., Any] | None,
        seed: int,
        *,
        source: Source | None = None,
        lazy: tuple[list[int], int, int] | None = None,
    ) -> None:
        self.paths = paths
        # (rows per shard, metadata shard, shards kept open) when the shards are opened on demand from the cache
        self.lazy = lazy
        self.kind = kind
        self.decode = decode
        self.specf = specf
        self.fetch_fn = fetch_fn
        self.prep_fn = prep_fn
        self.collate_fn = collate_fn
        self.seed = seed
        # an already opened Source of these paths may be handed over (Tank validates with it); it never travels to
        # a worker process, which opens its own
        self._source: Source | None = source
        self._data: Data | None = Data(source) if source is not None else None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_source"] = state["_data"] = state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def data(self) -> Data:
        if self._data is None:
            with self._lock:
                if self._data is None:
                    self._source = Source(self.paths, self.kind, self.decode, *(self.lazy or ()))
                    self._data = Data(self._source)
        return self._data

    def warm(self, shard: int) -> None:
        """Open shard `shard` and load what its first read would (column caches), ahead of the first batch: a remote
        data set's shards are warmed as their downloads land, while the others still download. Best effort: a shard
        that cannot be read is left to the batch that reads it, which raises naming it."""
        try:
            self.data()
            source = self._source
            if source is None or shard >= len(source.paths):
                return
            opened = source.shard(shard)
            first = np.zeros(1, dtype=np.int64)
            for key in self.specf:
                if key in opened.keys and opened.length(key):
                    opened.read(key, first, decode=False, borrow=True)
        except Exception:
            return

    def close(self) -> None:
        with self._lock:
            if self._source is not None:
                self._source.close()
            self._source = self._data = None

    def build(
        self, epoch: int, batch: int, indices: np.ndarray, *, globals_too: bool, sink: Sink | None = None
    ) -> Any:
        """The batch as a collate plan (pending stacks), seeded from (seed, epoch, batch).

        With a `sink` and the default collation, large arrays are written into the sink's batch buffer as soon
        as each item is made (while still in the CPU cache) instead of being stacked at the end; the plan then
        holds them as Prefilled stacks and must be materialised with `sink.alloc`. On an exception the caller
        calls `sink.abort()`.
        """
        saved = reseed_globals(self.seed, epoch, batch) if globals_too else None
        seed_batch(self.seed, epoch, batch)
        try:
            data = self.data()
            if self.fetch_fn is None and self.prep_fn is None and self.collate_fn is None:
                return self._columnar(data, indices)
            if self.collate_fn is not None:
                return to_plan(self.collate_fn(self._items(data, indices, None)))
            stream = _Stream(len(indices), sink) if sink is not None else None
            items = self._items(data, indices, stream)
            if stream is not None and stream.live:
                return stream.finish(items)
            return to_plan_default(items)
        finally:
            clear_batch()
            if saved is not None:
                restore_globals(saved)

    def _items(self, data: Data, indices: np.ndarray, stream: _Stream | None) -> list[Any]:
        """Fetch and prep every item, one item at a time (its arrays are still cached when prep runs).

        This loop runs once per sample between a decode and a copy that evict the CPU caches, so each Python
        call in it is paid at cache-miss prices: keep it short.
        """
        prep_fn = self.prep_fn
        put = stream.put if stream is not None else None
        scope: Any
        if self.fetch_fn is not None:
            fetch_fn = self.fetch_fn
            scope = prefetch(data, list(self.specf), indices)
            # Python ints, as fetch_fn expects; fetched lazily, so each fetch is followed by its prep
            fetched: Any = (fetch_fn(data, i) for i in np.asarray(indices).tolist())
        else:
            columns = {
                k: cast_column(data.source, k, t, data[k].take(indices), indices)
                for k, t in self.specf.items()
            }
            scope = contextlib.nullcontext()
            fetched = ({k: columns[k][j] for k in self.specf} for j in range(len(indices)))
        items: list[Any] = []
        with scope:
            for j, item in enumerate(fetched):
                if prep_fn is not None:
                    item = prep_fn(item)
                items.append(item if put is None else put(j, item, items))
        return items

    def _columnar(self, data: Data, indices: np.ndarray) -> Any:
        out: dict[str, Any] = {}
        source = data.source
        for key, dtype in self.specf.items():
            row_shape = source.raw_shape(key)
            if row_shape is not None:
                out[key] = Gather(source, key, np.asarray(indices), row_shape)
                continue
            values = cast_column(source, key, dtype, data[key].take(indices), indices)
            out[key] = to_plan(plan(values)) if values else []
        return out


def to_plan_default(items: list[Any]) -> Any:
    """Default collation plan, with ragged array lists also routed through buffers."""
    return _lists_to_blocks(plan(items))


def _lists_to_blocks(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _lists_to_blocks(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(_lists_to_blocks(v) for v in tree)
    if isinstance(tree, list):
        return to_plan(tree)
    return tree


# -- streaming large arrays into the batch buffer ---------------------------------------------------------

STREAM_MIN_BYTES = 1 << 16  # smaller arrays are stacked at the end as before


class Sink(Protocol):
    """Where a batch's buffer comes from: `open(nbytes)` returns a bump allocator over it (see _buffers)."""

    alloc: Any

    def open(self, nbytes: int) -> Any: ...

    def abort(self) -> None: ...


class _Row:
    """Stands in an item for an array already copied into its row of the batch buffer."""

    __slots__ = ()


_ROW = _Row()


def _big_arrays(item: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], np.ndarray]]:
    """(path, array) of every plain numeric ndarray of at least STREAM_MIN_BYTES in a dict/tuple item."""
    if type(item) is np.ndarray:
        big = item.ndim >= 1 and item.dtype.kind not in "OUSV" and item.nbytes >= STREAM_MIN_BYTES
        return [(path, item)] if big else []
    if isinstance(item, dict):
        return [x for k, v in item.items() for x in _big_arrays(v, (*path, k))]
    if isinstance(item, tuple) and not hasattr(item, "_fields"):
        return [x for k, v in enumerate(item) for x in _big_arrays(v, (*path, k))]
    return []


def _get(item: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        try:
            item = item[step]
        except (KeyError, IndexError, TypeError):
            return None
    return item


def _put(item: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `item` (dicts and tuples along `path` rebuilt) with `value` at `path`."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(item, dict):
        out = dict(item)
        out[head] = _put(item[head], rest, value)
        return out
    seq = list(item)
    seq[head] = _put(seq[head], rest, value)
    return tuple(seq)


class _Stream:
    """Copies each item's large arrays into rows of the batch buffer as the item is made.

    The first item fixes which arrays stream (by path) and their row shape and dtype. An item that does not
    match (other shape or dtype, missing key) stops streaming: earlier rows are copied back into their items
    and the default stacking takes over, so the batch is exactly what default collation would build.
    """

    def __init__(self, n: int, sink: Sink) -> None:
        self.n, self.sink = n, sink
        self.paths: list[tuple[Any, ...]] = []
        self.regions: list[np.ndarray] = []
        self.live = False
        self.key: Any = None  # set when the one streamed array is a top-level value of dict items

    def _start(self, first: Any) -> None:
        found = _big_arrays(first)
        if not found:
            return
        self.paths = [p for p, _ in found]
        stripped = first
        for p in self.paths:
            stripped = _put(stripped, p, _ROW)
        rest = _rest_nbytes(stripped, self.n)
        dtypes = [np.result_type(a) for _, a in found]
        big = sum(aligned(self.n * a.size * d.itemsize) for (_, a), d in zip(found, dtypes, strict=True))
        alloc = self.sink.open(big + rest)
        self.regions = [alloc((self.n, *a.shape), d) for (_, a), d in zip(found, dtypes, strict=True)]
        self.live = True
        if type(first) is dict and len(self.paths) == 1 and len(self.paths[0]) == 1:
            self.key = self.paths[0][0]

    def put(self, j: int, item: Any, items: list[Any]) -> Any:
        if j == 0:
            self._start(item)
        if not self.live:
            return item
        if self.key is not None and type(item) is dict:  # the usual item: one image under one key
            a, r = item.get(self.key), self.regions[0]
            if _fits(a, r):
                copy_into(r[j], a)
                item = dict(item)
                item[self.key] = _ROW
                return item
        arrays = [_get(item, p) for p in self.paths]
        if not all(_fits(a, r) for a, r in zip(arrays, self.regions, strict=True)):
            self._stop(items)
            return item
        for a, r in zip(arrays, self.regions, strict=True):
            copy_into(r[j], a)
        for p in self.paths:
            item = _put(item, p, _ROW)
        return item

    def _stop(self, items: list[Any]) -> None:
        """Give the streamed rows back to their items (as copies) and release the buffer."""
        for k, item in enumerate(items):
            for p, r in zip(self.paths, self.regions, strict=True):
                item = _put(item, p, r[k].copy())
            items[k] = item
        self.regions = []
        self.live = False
        self.sink.abort()

    def finish(self, items: list[Any]) -> Any:
        tree = to_plan_default(items)
        try:
            for p, r in zip(self.paths, self.regions, strict=True):
                tree = _fill_in(tree, p, Prefilled(r))
        except (KeyError, IndexError, TypeError, ValueError):
            tree = None
        alloc = self.sink.alloc
        if tree is None or alloc.offset + plan_nbytes(tree) > alloc.capacity:
            self._stop(items)
            return to_plan_default(items)
        return tree


def _fits(a: Any, region: np.ndarray) -> TypeGuard[np.ndarray]:
    """Whether `a` can be copied into a row of `region` as it is (same shape and dtype, a plain ndarray)."""
    return type(a) is np.ndarray and a.shape == region.shape[1:] and a.dtype == region.dtype


def _rest_nbytes(item: Any, n: int) -> int:
    """`plan_nbytes(to_plan_default([item] * n))`, from the plan of one item (64x less work per batch)."""
    total = 0
    for leaf in leaves(to_plan_default([item])):
        # a Block is one item's own array (n of them, each aligned); any other stack grows along the batch
        total += n * aligned(leaf.nbytes) if isinstance(leaf, Block) else aligned(n * leaf.nbytes)
    return total


def _fill_in(tree: Any, path: tuple[Any, ...], stack: Prefilled) -> Any:
    """Replace the list of row markers at `path` of a plan by `stack`."""
    rows = _get(tree, path)
    if not isinstance(rows, list) or len(rows) != stack.shape[0] or any(x is not _ROW for x in rows):
        raise ValueError("streamed rows do not line up with the plan")
    return _put(tree, path, stack)
