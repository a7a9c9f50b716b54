"""Read packed HDF5/NPZ files (one or many shards) as one set of row-indexed columns."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._constants import FRAME_KEY, META_KEY, FuelWarning
from ._files import data_set_name, kind_of, open_family
from ._image import byte2arr

_MEMORY_CACHE_BYTES = 256 << 20
# HDF5 vlen columns (encoded images) of files up to this size, summed over the files a process has open, are
# read once into memory: h5py costs ~25-40 us per row even in one call per batch, a cached row ~1 us
VLEN_CACHE_BYTES = 64 << 20
_vlen_budget = {"used": 0}
_vlen_lock = threading.Lock()


def _release_vlen(nbytes: int) -> None:
    with _vlen_lock:
        _vlen_budget["used"] = max(0, _vlen_budget["used"] - nbytes)


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
        kind = kind_of(data_set_name(path))
        if kind is None:
            raise ValueError(
                f"'data_path' must be an .hdf5, .h5 or .npz file, or a family's .manifest.json (got {path!r})"
            )
        kinds.add(kind)
        out.extend(open_family(path, kind))
    if len(kinds) > 1:
        raise ValueError("'data_path' mixes HDF5 and NPZ files; pack them in one format")
    return out, kinds.pop()


class _Shard:
    """One opened file: column metadata and per-row readers."""

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.images: dict[str, dict[str, Any]] = {}
        self.cache: dict[str, Any] = {}
        self.maps: dict[str, Any] = {}
        self.datasets: dict[str, Any] = {}
        self.counts: dict[str, Any] = {}
        self.claimed = 0  # bytes of the vlen memory budget this shard holds
        name = os.path.basename(path)
        if kind == "hdf5":
            import h5py

            try:
                self.raw: Any = h5py.File(path, "r")
            except OSError as exc:
                raise ValueError(
                    f"{name} is not a readable HDF5 file (truncated or foreign?): {exc}"
                ) from None
            self.keys = [k for k in self.raw if isinstance(self.raw[k], h5py.Dataset)]
            for key in self.keys:
                try:
                    attrs = self.raw[key].attrs
                    if "nebulae_encode" in attrs:
                        self.images[key] = {
                            "encode": _as_str(attrs["nebulae_encode"]),
                            "channel": int(attrs.get("nebulae_channel", 3)),
                        }
                except OSError as exc:
                    self.raw.close()
                    raise OSError(
                        f"{name}: the attributes of column {key!r} cannot be read ({exc}); the file is damaged "
                        "(overwritten or cut short): restore it from a copy or re-pack it"
                    ) from None
        else:
            try:
                self.raw = np.load(path, allow_pickle=False)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ValueError(
                    f"{name} is not a readable NPZ archive (truncated or foreign?): {exc}"
                ) from None
            if not hasattr(self.raw, "files"):
                raise ValueError(f"{name} holds a single array, not an NPZ archive of columns")
            files = self.raw.files
            self.keys = [
                k
                for k in files
                if not k.startswith("__") and not k.endswith(("__offsets", "__frames", "__nframes"))
            ]
            self.files = set(files)
            if META_KEY in files:
                meta = json.loads(str(self._npz(META_KEY).reshape(-1)[0]))
                image = meta.get("nebulae_image")
                if image:
                    self.images[image["column"]] = {"encode": image["encode"], "channel": image["channel"]}

    def _npz(self, key: str) -> np.ndarray:
        if key not in self.cache:
            try:
                self.cache[key] = self.raw[key]
            except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ValueError(
                    f"{os.path.basename(self.path)}: array {key!r} cannot be read ({exc})"
                ) from None
        return self.cache[key]

    def length(self, key: str) -> int:
        if self.kind == "hdf5":
            shape = self.dataset(key).shape
        elif key + "__frames" in self.files:
            return len(self._npz(key + "__frames")) - 1
        elif key + "__offsets" in self.files:
            return len(self._npz(key + "__offsets")) - 1
        else:
            shape = self._npz(key).shape
        if not shape:
            raise ValueError(f"{os.path.basename(self.path)}: {key!r} is a scalar, not a column")
        return int(shape[0])

    def dataset(self, key: str) -> Any:
        # h5py's group lookup costs ~100 us; rows are read one by one, so keep the Dataset objects
        if key not in self.datasets:
            self.datasets[key] = self.raw[key]
        return self.datasets[key]

    def max_frames(self) -> int:
        if self.kind == "hdf5":
            return int(self.raw[FRAME_KEY][()]) if FRAME_KEY in self.raw else 0
        return int(self._npz(FRAME_KEY).reshape(-1)[0]) if FRAME_KEY in self.files else 0

    def close(self) -> None:
        self.cache.clear()
        _release_vlen(self.claimed)
        self.claimed = 0
        self.maps.clear()
        self.datasets.clear()
        with contextlib.suppress(Exception):
            self.raw.close()

    # -- reading ----------------------------------------------------------------------------------------

    def read(self, key: str, rows: np.ndarray, decode: bool, borrow: bool = False) -> list[Any]:
        """Rows `rows` (local indices) of column `key`, one element per row.

        With `borrow`, cached arrays may be returned themselves instead of copies: only for callers that never
        hand them to user code (Tank decoding encoded images itself).
        """
        image = self.images.get(key)
        if image and image["encode"] == "RAW":
            return self._read_raw(key, rows)
        if self.kind == "hdf5":
            try:
                # bytes decoded right here never leave this call either
                items = self._read_hdf5(key, rows, borrow or bool(image and decode))
            except (OSError, UnicodeDecodeError) as exc:
                raise self.damaged(key, rows, exc) from None
        else:
            items = self._read_npz(key, rows)
        if image and decode:
            try:
                return [_decode(it) for it in items]
            except ValueError:
                # the error path only: find the row whose image does not decode
                for row, it in zip(rows, items, strict=True):
                    try:
                        _decode(it)
                    except ValueError as exc:
                        raise undecodable(self.path, key, int(row), exc) from None
                raise
        return items

    def damaged(self, key: str, rows: np.ndarray, exc: BaseException) -> Exception:
        """The error for a failed read of `key`: names the file, the column and the first unreadable row."""
        name = os.path.basename(self.path)
        row = self._first_bad_row(key, rows)
        where = f", row {row}" if row is not None else ""
        if isinstance(exc, UnicodeDecodeError):
            return ValueError(
                f"{name}: column {key!r}{where}: a stored string is not UTF-8 ({exc}); "
                "re-pack the file from its CSV"
            )
        return OSError(
            f"{name}: column {key!r}{where}: the stored data cannot be read ({exc}); the file is damaged "
            "(overwritten or cut short): restore it from a copy or re-pack it"
        )

    def _first_bad_row(self, key: str, rows: np.ndarray) -> int | None:
        """The first row of `rows`, else of the whole column, that h5py cannot read (the error path only)."""
        ds = self.dataset(key)

        def bad(lo: int, hi: int) -> bool:
            try:
                for value in ds[lo:hi]:
                    if isinstance(value, bytes):
                        value.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                return True
            return False

        for row in rows:
            if bad(int(row), int(row) + 1):
                return int(row)
        # a whole-column read (into the memory cache) failed on a row this batch did not ask for
        n, step = (ds.shape[0] if ds.ndim else 0), 1024
        for start in range(0, n, step):
            if bad(start, start + step):
                return next((r for r in range(start, min(start + step, n)) if bad(r, r + 1)), None)
        return None

    def _read_hdf5(self, key: str, rows: np.ndarray, borrow: bool = False) -> list[Any]:
        import h5py

        ds = self.dataset(key)
        if key not in self.cache:
            vlen = h5py.check_vlen_dtype(ds.dtype)
            is_str = h5py.check_string_dtype(ds.dtype) is not None or vlen in (str, bytes)
            small = ds.size * max(ds.dtype.itemsize, 1) <= _MEMORY_CACHE_BYTES
            if is_str:
                self.cache[key] = ("str", [_as_str(v) for v in ds[()]])
            elif vlen is None and small:
                self.cache[key] = ("array", ds[()])
            elif vlen is not None and ds.ndim == 1 and self._claim_file():
                self.cache[key] = ("blobs", _read_vlen_column(ds))
            else:
                self.cache[key] = ("vlen" if vlen is not None else "dataset", None)
        mode, values = self.cache[key]
        if mode == "str":
            return [values[i] for i in rows]
        if mode == "array":
            return list(values[rows])
        if mode == "blobs":
            if borrow:
                return [values[i] for i in rows]
            return [values[i].copy() for i in rows]  # copies, as h5py's: the cache must stay intact
        if len(rows) == 1:
            got = [ds[int(rows[0])]]
        else:
            # one h5py call for the whole batch is ~7x cheaper than one per item; h5py wants increasing indices
            uniq, inverse = np.unique(rows, return_inverse=True)
            block = ds[uniq]
            got = [block[j] for j in inverse]
        if ds.ndim == 2 and mode == "vlen":
            return [[f for f in row if len(f)] for row in got]
        return got

    def _claim_file(self) -> bool:
        """Claim the vlen memory budget for this file's vlen columns (its size bounds what they hold)."""
        with _vlen_lock:  # thread workers share this shard: claim once
            if not self.claimed:
                size = max(os.path.getsize(self.path), 1)
                if _vlen_budget["used"] + size > VLEN_CACHE_BYTES:
                    return False
                _vlen_budget["used"] += size
                self.claimed = size
        return True

    def _read_npz(self, key: str, rows: np.ndarray) -> list[Any]:
        arr = self._npz(key)
        if key + "__frames" in self.files:
            offsets, frames = self._npz(key + "__offsets"), self._npz(key + "__frames")
            return [[arr[offsets[f] : offsets[f + 1]] for f in range(frames[i], frames[i + 1])] for i in rows]
        if key + "__offsets" in self.files:
            offsets = self._npz(key + "__offsets")
            return [arr[offsets[i] : offsets[i + 1]] for i in rows]
        if arr.dtype.kind == "U":
            return [str(arr[i]) for i in rows]
        return list(arr[rows])

    def raw_array(self, key: str) -> np.ndarray:
        """The RAW pixel array: a read-only memory map for contiguous HDF5 datasets."""
        if key in self.maps:
            return self.maps[key]
        if self.kind == "npz":
            arr = self._npz(key)
        else:
            ds = self.dataset(key)
            offset = ds.id.get_offset()
            if offset is None or ds.chunks is not None or ds.compression is not None:
                warnings.warn(
                    f"{os.path.basename(self.path)}: RAW column {key!r} is not contiguous; reading it through "
                    "h5py instead of a memory map (slower)",
                    FuelWarning,
                    stacklevel=3,
                )
                arr = _H5Rows(ds)  # type: ignore[assignment]
            else:
                arr = np.memmap(self.path, dtype=np.uint8, mode="r", offset=offset, shape=ds.shape)
        self.maps[key] = arr
        return arr

    def nframes(self, key: str) -> np.ndarray | None:
        if key not in self.counts:
            name = key + "__nframes"
            if self.kind == "hdf5":
                self.counts[key] = self.raw[name][()] if name in self.raw else None
            else:
                self.counts[key] = self._npz(name) if name in self.files else None
        return self.counts[key]

    def _read_raw(self, key: str, rows: np.ndarray) -> list[Any]:
        arr = self.raw_array(key)
        counts = self.nframes(key)
        if counts is None:
            return [arr[int(i)] for i in rows]
        return [list(arr[int(i)][: int(counts[i])]) for i in rows]


def _decode(item: Any) -> Any:
    """A decoded image, or the list of a sequence row's decoded frames."""
    return [byte2arr(f) for f in item] if isinstance(item, list) else byte2arr(item)


def undecodable(path: str, key: str, row: int, exc: BaseException) -> ValueError:
    return ValueError(
        f"{os.path.basename(path)}: column {key!r}, row {row}: the stored image does not decode ({exc}); the "
        "file is damaged: restore it from a copy or re-pack it (or pass decode=False to read the bytes)"
    )


def _read_vlen_column(ds: Any, step: int = 1024) -> list[np.ndarray]:
    """Every row of a 1-D HDF5 vlen dataset, read in a few large calls."""
    out: list[np.ndarray] = []
    for start in range(0, ds.shape[0], step):
        out.extend(ds[start : start + step])
    return out


class _H5Rows:
    """Row access to a non-contiguous RAW dataset through h5py."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.shape = ds.shape

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, np.ndarray):
            uniq, inverse = np.unique(idx, return_inverse=True)
            return self.ds[uniq][inverse]
        return self.ds[idx]


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        return _as_str(value.item())
    return str(value)


class Source:
    """Every shard of a dataset opened in this process, indexed by global row."""

    def __init__(self, paths: Sequence[str], kind: str, decode: bool = True) -> None:
        self.paths = list(paths)
        self.kind = kind
        self.decode = decode
        self.shards: list[_Shard] = []
        try:
            for path in self.paths:
                self.shards.append(_Shard(path, kind))
        except BaseException:
            self.close()
            raise
        first = self.shards[0].keys
        for shard in self.shards[1:]:
            if set(shard.keys) != set(first):
                raise ValueError(
                    f"shard {os.path.basename(shard.path)} has columns {sorted(shard.keys)} but "
                    f"{os.path.basename(self.paths[0])} has {sorted(first)}; shards must come from one pack"
                )
        self.keys = list(first)
        self._starts: dict[str, np.ndarray] = {}

    def check_keys(self, wanted: Sequence[str]) -> None:
        missing = [k for k in wanted if k not in self.keys and k != FRAME_KEY]
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
            lengths = [s.length(key) for s in self.shards]
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
        s = min(max(s, 0), len(self.shards) - 1)
        return self.shards[s].path, int(row - starts[s])

    def stored_dtype(self, key: str) -> np.dtype:
        """The dtype of the values of column `key` (of each element for variable-length HDF5 columns)."""
        shard = self.shards[0]
        if self.kind == "npz":
            return shard._npz(key).dtype
        import h5py

        dtype = shard.dataset(key).dtype
        if h5py.check_string_dtype(dtype) is not None:
            return np.dtype("U")
        vlen = h5py.check_vlen_dtype(dtype)
        if vlen in (str, bytes):
            return np.dtype("U")
        return np.dtype(vlen) if vlen is not None else dtype

    def is_image(self, key: str) -> bool:
        return key in self.shards[0].images

    def encode_of(self, key: str) -> str | None:
        info = self.shards[0].images.get(key)
        return info["encode"] if info else None

    def read(self, key: str, rows: Any, decode: bool | None = None, borrow: bool = False) -> list[Any]:
        """Elements of global rows `rows`, in that order (images decoded per `decode`, default the Source's).

        `borrow`: see `_Shard.read`.
        """
        decode = self.decode if decode is None else decode
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = self.length(key)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row index out of range for column {key!r} with {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        starts = self.starts(key)
        if len(self.shards) == 1:
            return self.shards[0].read(key, rows, decode, borrow)
        which = np.searchsorted(starts, rows, side="right") - 1
        out: list[Any] = [None] * len(rows)
        for s in np.unique(which):
            pos = np.nonzero(which == s)[0]
            got = self.shards[s].read(key, rows[pos] - starts[s], decode, borrow)
            for p, item in zip(pos, got, strict=True):
                out[p] = item
        return out

    def read_one(self, key: str, row: int) -> Any:
        """Element of global row `row`, as `read(key, [row])[0]`; cached HDF5 columns skip the general path.

        fetch_fn reads labels one row at a time: the general path costs ~20 us per call, this one ~1 us.
        """
        if len(self.shards) == 1:
            shard = self.shards[0]
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

        return h5py.check_vlen_dtype(self.shards[0].dataset(key).dtype) is not None

    def raw_shape(self, key: str) -> tuple[int, ...] | None:
        """Row shape (H, W, C) of a non-sequence RAW column; None for any other column."""
        if self.encode_of(key) != "RAW" or any(s.nframes(key) is not None for s in self.shards):
            return None
        return tuple(self.shards[0].raw_array(key).shape[1:])

    def raw_gather(self, key: str, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Copy RAW rows straight from the memory map into `out` (one copy, no temporary)."""
        starts = self.starts(key)
        if len(self.shards) == 1:
            arr = self.shards[0].raw_array(key)
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
            out[pos] = self.shards[s].raw_array(key)[rows[pos] - starts[s]]
        return out

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self.shards = []


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
                    return _decode(item)
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
