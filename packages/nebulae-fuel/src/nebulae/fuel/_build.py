"""Build one batch (fetch + prep + collate) from an index list; runs in Tank's workers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ._collate import _Stack, plan
from ._csv import split_dtype
from ._rng import clear_batch, reseed_globals, restore_globals, seed_batch
from ._source import Data, Source, prefetch


def cast(value: Any, dtype: str) -> Any:
    """Default fetch cast: fixed numeric/bool dtypes through np.asarray(v).astype(T); others unchanged."""
    base, variable = split_dtype(dtype)
    if variable or base == "str" or dtype.startswith("v"):
        return value
    if isinstance(value, list):
        return value
    return np.asarray(value).astype(base, copy=False)


class Gather(_Stack):
    """RAW rows gathered from the memory map directly into the batch buffer."""

    def __init__(self, source: Source, key: str, rows: np.ndarray, row_shape: tuple[int, ...]) -> None:
        self.source, self.key, self.rows = source, key, rows
        self.arrays = None  # type: ignore[assignment]
        self.dtype = np.dtype(np.uint8)
        self.shape = (len(rows), *row_shape)

    def fill(self, out: np.ndarray) -> np.ndarray:
        return self.source.raw_gather(self.key, self.rows, out)


class Block(_Stack):
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
    ) -> None:
        self.paths = paths
        self.kind = kind
        self.decode = decode
        self.specf = specf
        self.fetch_fn = fetch_fn
        self.prep_fn = prep_fn
        self.collate_fn = collate_fn
        self.seed = seed
        self._source: Source | None = None
        self._data: Data | None = None
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
                    self._source = Source(self.paths, self.kind, self.decode)
                    self._data = Data(self._source)
        return self._data

    def close(self) -> None:
        with self._lock:
            if self._source is not None:
                self._source.close()
            self._source = self._data = None

    def build(self, epoch: int, batch: int, indices: np.ndarray, *, globals_too: bool) -> Any:
        """The batch as a collate plan (pending stacks), seeded from (seed, epoch, batch)."""
        saved = reseed_globals(self.seed, epoch, batch) if globals_too else None
        seed_batch(self.seed, epoch, batch)
        try:
            data = self.data()
            if self.fetch_fn is None and self.prep_fn is None and self.collate_fn is None:
                return self._columnar(data, indices)
            items = self._fetch(data, indices)
            if self.prep_fn is not None:
                items = [self.prep_fn(item) for item in items]
            if self.collate_fn is not None:
                return to_plan(self.collate_fn(items))
            return to_plan_default(items)
        finally:
            clear_batch()
            if saved is not None:
                restore_globals(saved)

    def _fetch(self, data: Data, indices: np.ndarray) -> list[Any]:
        if self.fetch_fn is not None:
            with prefetch(data, list(self.specf), indices):
                return [self.fetch_fn(data, int(i)) for i in indices]
        columns = {k: data[k].take(indices) for k in self.specf}
        return [{k: cast(columns[k][j], t) for k, t in self.specf.items()} for j in range(len(indices))]

    def _columnar(self, data: Data, indices: np.ndarray) -> Any:
        out: dict[str, Any] = {}
        source = data.source
        for key, dtype in self.specf.items():
            row_shape = source.raw_shape(key)
            if row_shape is not None:
                out[key] = Gather(source, key, np.asarray(indices), row_shape)
                continue
            values = [cast(v, dtype) for v in data[key].take(indices)]
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
