"""Read packed HDF5/NPZ files (one or many shards) as one set of row-indexed columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._constants import FRAME_KEY
from ._files import require_kind
from ._manifest import open_family
from ._shard import Shard

KEEP_OPEN = 4  # shards a Source opened on demand keeps open at a time


def resolve_paths(data_path: Any) -> tuple[list[str], str]:
    """Return the shard paths and their kind ('hdf5' or 'npz') for Tank's `data_path`.

    A family's name reads the shards its manifest lists (checked to be one complete run), or, without a manifest,
    `{stem}_0, {stem}_1, ...`; a manifest path reads its family.
    """
    if isinstance(data_path, (list, tuple)):
        if not data_path:
            raise ValueError("'data_path' is an empty list; give at least one .hdf5/.h5/.npz file")
        paths = [os.fspath(p) for p in data_path]
    elif isinstance(data_path, (str, os.PathLike)):
        paths = [os.fspath(data_path)]
    else:
        raise TypeError(f"'data_path' must be a path or a list of paths (got {type(data_path).__name__})")
    kinds = set()
    out: list[str] = []
    for path in paths:
        kind = require_kind(path, "'data_path'", manifest=True)
        kinds.add(kind)
        out.extend(open_family(path, kind))
    if len(kinds) > 1:
        raise ValueError("'data_path' mixes HDF5 and NPZ files; pack them in one format")
    return out, kinds.pop()


class Source:
    """Every shard of a dataset opened in this process, indexed by global row."""

    def __init__(
        self,
        paths: Sequence[str],
        kind: str,
        decode: bool = True,
        rows: Sequence[int] | None = None,
        meta: int = 0,
        keep: int = KEEP_OPEN,
    ) -> None:
        """With `rows` (rows per shard, from a manifest) the shards open on first read, at most `keep` at a time:
        a data set larger than the local cache is never all on disk; shard `meta` is opened for the columns."""
        self.paths = list(paths)
        self.kind = kind
        self.decode = decode
        self.shards: list[Shard] = []
        self._rows = None if rows is None else [int(r) for r in rows]
        self._keep = max(1, keep)
        self._open: dict[int, Shard] = {}
        self._meta_index = 0
        try:
            if self._rows is None:
                for path in self.paths:
                    self.shards.append(Shard(path, kind))
                self._meta = self.shards[0]
            else:
                self._meta = self.shard(meta)
                self._meta_index = meta
        except BaseException:
            self.close()
            raise
        first = self._meta.keys
        for shard in self.shards[1:]:
            if set(shard.keys) != set(first):
                raise ValueError(
                    f"shard {os.path.basename(shard.path)} has columns {sorted(shard.keys)} but "
                    f"{os.path.basename(self.paths[0])} has {sorted(first)}; shards must come from one pack"
                )
        self.keys = list(first)
        self._starts: dict[str, np.ndarray] = {}

    def shard(self, s: int) -> Shard:
        """Shard `s`, opened now if this Source opens shards lazily (closing the least recently used one)."""
        if self._rows is None:
            return self.shards[s]
        got = self._open.pop(s, None)
        meta = self.__dict__.get("_meta")  # None while the metadata shard itself is being opened
        if got is None and s == self._meta_index and meta in self.shards:
            got = meta
        if got is None:
            if not os.path.isfile(self.paths[s]):
                raise FileNotFoundError(
                    f"shard {os.path.basename(self.paths[s])} is not in the local cache {os.path.dirname(self.paths[s])}"
                    " (removed while its batch was built?)"
                )
            got = Shard(self.paths[s], self.kind)
            self.shards.append(got)
        self._open[s] = got  # most recently used last
        while len(self._open) > self._keep:
            old = next(iter(self._open))
            closing = self._open.pop(old)
            if closing is not self._meta:
                closing.close()
                self.shards.remove(closing)
        return got

    def check_keys(self, wanted: Sequence[str]) -> None:
        missing = [k for k in wanted if k not in self.keys and k != FRAME_KEY]
        if FRAME_KEY in wanted and self._rows is not None:
            raise ValueError(
                f"{FRAME_KEY} (sequence frame counts) needs every shard at hand; it is not available when the data "
                "set does not fit the local cache (raise cache_bytes)"
            )
        if FRAME_KEY in wanted and not any(
            (FRAME_KEY in s.raw if s.kind == "hdf5" else FRAME_KEY in s.files) for s in self.shards
        ):
            missing.append(FRAME_KEY)
        if missing:
            raise KeyError(
                f"data_specf key(s) {missing} not in {os.path.basename(self.paths[0])}; available: {sorted(self.keys)}"
            )

    def starts(self, key: str) -> np.ndarray:
        if key not in self._starts:
            lengths = self._rows if self._rows is not None else [s.length(key) for s in self.shards]
            self._starts[key] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return self._starts[key]

    def length(self, key: str) -> int:
        return int(self.starts(key)[-1])

    def max_frames(self) -> int:
        return max(s.max_frames() for s in self.shards)

    def locate(self, key: str, row: int) -> tuple[str, int]:
        """The file holding global row `row` of `key`, and the row's index in that file."""
        starts = self.starts(key)
        s = int(np.searchsorted(starts, row, side="right")) - 1
        s = min(max(s, 0), len(self.paths) - 1)
        return self.paths[s], int(row - starts[s])

    def stored_dtype(self, key: str) -> np.dtype:
        """The dtype of the values of column `key` (of each element for variable-length HDF5 columns)."""
        shard = self._meta
        if self.kind == "npz":
            return shard.npz_array(key).dtype
        import h5py

        dtype = shard.dataset(key).dtype
        if h5py.check_string_dtype(dtype) is not None:
            return np.dtype("U")
        vlen = h5py.check_vlen_dtype(dtype)
        if vlen in (str, bytes):
            return np.dtype("U")
        return np.dtype(vlen) if vlen is not None else dtype

    def is_image(self, key: str) -> bool:
        return key in self._meta.images

    def encode_of(self, key: str) -> str | None:
        info = self._meta.images.get(key)
        return info["encode"] if info else None

    def read(self, key: str, rows: Any, decode: bool | None = None, borrow: bool = False) -> list[Any]:
        """Elements of global rows `rows`, in that order (images decoded per `decode`, default the Source's).

        `borrow`: see `Shard.read`.
        """
        decode = self.decode if decode is None else decode
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = self.length(key)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row index out of range for column {key!r} with {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        starts = self.starts(key)
        if len(self.paths) == 1:
            return self.shard(0).read(key, rows, decode, borrow)
        which = np.searchsorted(starts, rows, side="right") - 1
        out: list[Any] = [None] * len(rows)
        for s in np.unique(which):
            pos = np.nonzero(which == s)[0]
            got = self.shard(s).read(key, rows[pos] - starts[s], decode, borrow)
            for p, item in zip(pos, got, strict=True):
                out[p] = item
        return out

    def read_one(self, key: str, row: int) -> Any:
        """Element of global row `row`, as `read(key, [row])[0]`; cached HDF5 columns skip the general path.

        fetch_fn reads labels one row at a time: the general path costs ~20 us per call, this one ~1 us.
        """
        if len(self.paths) == 1:
            shard = self.shard(0)
            hit = shard.cache.get(key) if shard.kind == "hdf5" and key not in shard.images else None
            if hit is not None and hit[0] in ("array", "str", "blobs"):
                values = hit[1]
                n = len(values)
                if not -n <= row < n:
                    raise IndexError(f"row index out of range for column {key!r} with {n} rows")
                value = values[row]
                # a copy, as the fancy indexing of read() makes: the cached column must stay intact
                return value.copy() if isinstance(value, np.ndarray) else value
        return self.read(key, [row])[0]

    def prefers_batches(self, key: str) -> bool:
        """True for HDF5 vlen columns, where one read per batch is much cheaper than one per row."""
        if self.kind != "hdf5" or self.encode_of(key) == "RAW":
            return False
        import h5py

        return h5py.check_vlen_dtype(self._meta.dataset(key).dtype) is not None

    def raw_shape(self, key: str) -> tuple[int, ...] | None:
        """Row shape (H, W, C) of a non-sequence RAW column; None for any other column."""
        # a lazily opened data set has one layout per pack: its metadata shard speaks for all
        if self.encode_of(key) != "RAW" or any(s.nframes(key) is not None for s in self.shards):
            return None
        return tuple(self._meta.raw_array(key).shape[1:])

    def raw_gather(self, key: str, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Copy RAW rows straight from the memory map into `out` (one copy, no temporary)."""
        starts = self.starts(key)
        if len(self.paths) == 1:
            arr = self.shard(0).raw_array(key)
            if isinstance(arr, np.ndarray):
                # rows are validated: mode='clip' lets numpy copy straight into `out` (mode='raise' with out=
                # goes through a temporary and runs ~3x slower)
                np.take(arr, rows, axis=0, out=out, mode="clip")
            else:
                out[...] = arr[rows]
            return out
        which = np.searchsorted(starts, rows, side="right") - 1
        for s in np.unique(which):
            pos = np.nonzero(which == s)[0]
            out[pos] = self.shard(s).raw_array(key)[rows[pos] - starts[s]]
        return out

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self.shards = []
        self._open = {}
