"""What fetch_fn is handed: `data[col][i]` row access over a Source, with a batch's rows read ahead."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._constants import FRAME_KEY
from ._shard import decode_item, undecodable
from ._source import Source

_prefetched = threading.local()


class prefetch:
    """Read the rows of a batch in one call per column, so that per-row `data[col][i]` in fetch_fn is cheap."""

    def __init__(self, data: Data, keys: Sequence[str], rows: np.ndarray) -> None:
        self.data, self.keys, self.rows = data, keys, rows

    def __enter__(self) -> None:
        source = self.data.source
        cache: dict[str, dict[int, Any]] = {}
        rows = [int(r) for r in self.rows]
        for key in self.keys:
            if key in source.keys and source.prefers_batches(key):
                # encoded bytes only: each image is decoded when fetch_fn asks for it, right before its prep
                # runs, so the decoded pixels are still in cache (decoding all 64 first spills them)
                decode = source.decode and source.is_image(key)
                # bytes that are decoded here never reach user code: the cached arrays need no copy
                items = source.read(key, self.rows, decode=False, borrow=decode)
                cache[key] = {r: (item, decode) for r, item in zip(rows, items, strict=True)}
        _prefetched.cache = cache

    def __exit__(self, *exc: Any) -> None:
        _prefetched.cache = None


class ColumnView(Sequence):
    """`data[col]`: row access to one column (`view[i]`, `view.take(rows)`, `len(view)`)."""

    def __init__(self, source: Source, key: str) -> None:
        self._source = source
        self._key = key

    def __len__(self) -> int:
        return self._source.length(self._key)

    def __getitem__(self, idx: Any) -> Any:
        if type(idx) is not int:  # fetch_fn is handed Python ints: that common case skips these checks
            if isinstance(idx, slice):
                return self._source.read(self._key, np.arange(len(self))[idx])
            if isinstance(idx, (list, np.ndarray)):
                return self._source.read(self._key, idx)
            if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
                raise TypeError(f"column {self._key!r} rows are indexed by int (got {type(idx).__name__})")
            idx = int(idx)
        cache = getattr(_prefetched, "cache", None)
        if cache:
            column = cache.get(self._key)
            hit = column.pop(idx, None) if column is not None else None  # handed out once: again reads again
            if hit is not None:
                item, decode = hit
                if not decode:
                    return item
                try:
                    return decode_item(item)
                except ValueError as exc:
                    path, row = self._source.locate(self._key, idx)
                    raise undecodable(path, self._key, row, exc) from None
        return self._source.read_one(self._key, idx)

    def take(self, rows: Any) -> list[Any]:
        """Many rows in one read (much cheaper than one call per row for HDF5 vlen data)."""
        return self._source.read(self._key, rows)

    def __repr__(self) -> str:
        return f"<column {self._key!r}: {len(self)} rows>"


class Data(Mapping):
    """The read-only mapping handed to `fetch_fn`: column name -> ColumnView; `data.raw` is the file handle."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._views = {k: ColumnView(source, k) for k in source.keys}

    def __getitem__(self, key: str) -> Any:
        if key == FRAME_KEY:
            return self._source.max_frames()
        try:
            return self._views[key]
        except KeyError:
            raise KeyError(f"no column {key!r}; available: {sorted(self._views)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    @property
    def raw(self) -> Any:
        """The underlying h5py.File / NpzFile (a list of them for several shards)."""
        handles = [s.raw for s in self._source.shards]
        return handles[0] if len(handles) == 1 else handles

    @property
    def source(self) -> Source:
        return self._source
