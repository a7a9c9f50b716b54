"""One packed HDF5 or NPZ file opened for reading: its columns, images, and per-row reads with their caches."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
import zipfile
from typing import Any

import numpy as np

from ._constants import FRAME_KEY, KEY_COLUMN, META_KEY, SKIPPED_KEY, FuelWarning
from ._image import byte2arr

_MEMORY_CACHE_BYTES = 256 << 20
# HDF5 vlen columns (encoded images) of files up to this size, summed over the files a process has open, are
# read once into memory: h5py costs ~25-40 us per row even in one call per batch, a cached row ~1 us
VLEN_CACHE_BYTES = 64 << 20
_vlen_budget = {"used": 0}
# string columns up to this many rows are read once into a list; a longer one (the `__key__` column of a data set
# of millions of rows: one Python str per row would cost gigabytes) is read per batch
STR_CACHE_ROWS = 1 << 20
_vlen_lock = threading.Lock()


def _release_vlen(nbytes: int) -> None:
    with _vlen_lock:
        _vlen_budget["used"] = max(0, _vlen_budget["used"] - nbytes)


class Shard:
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
            self.skipped = int(self.raw.attrs.get(SKIPPED_KEY, 0))
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
                if (k == KEY_COLUMN or not k.startswith("__"))
                and not k.endswith(("__offsets", "__frames", "__nframes"))
            ]
            self.files = set(files)
            self.skipped = 0
            if META_KEY in files:
                meta = json.loads(str(self.npz_array(META_KEY).reshape(-1)[0]))
                self.skipped = int(meta.get(SKIPPED_KEY, 0))
                image = meta.get("nebulae_image")
                if image:
                    self.images[image["column"]] = {"encode": image["encode"], "channel": image["channel"]}

    def npz_array(self, key: str) -> np.ndarray:
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
            return len(self.npz_array(key + "__frames")) - 1
        elif key + "__offsets" in self.files:
            return len(self.npz_array(key + "__offsets")) - 1
        else:
            shape = self.npz_array(key).shape
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
        return int(self.npz_array(FRAME_KEY).reshape(-1)[0]) if FRAME_KEY in self.files else 0

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
                return [decode_item(it) for it in items]
            except ValueError:
                # the error path only: find the row whose image does not decode
                for row, it in zip(rows, items, strict=True):
                    try:
                        decode_item(it)
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
            if is_str and ds.shape[0] > STR_CACHE_ROWS:
                self.cache[key] = ("strings", None)
            elif is_str:
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
        if mode == "strings":
            uniq, inverse = np.unique(rows, return_inverse=True)
            block = ds[uniq] if len(uniq) else []
            return [_as_str(block[j]) for j in inverse]
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
        arr = self.npz_array(key)
        if key + "__frames" in self.files:
            offsets, frames = self.npz_array(key + "__offsets"), self.npz_array(key + "__frames")
            return [[arr[offsets[f] : offsets[f + 1]] for f in range(frames[i], frames[i + 1])] for i in rows]
        if key + "__offsets" in self.files:
            offsets = self.npz_array(key + "__offsets")
            return [arr[offsets[i] : offsets[i + 1]] for i in rows]
        if arr.dtype.kind == "U":
            return [str(arr[i]) for i in rows]
        return list(arr[rows])

    def raw_array(self, key: str) -> np.ndarray:
        """The RAW pixel array: a read-only memory map for contiguous HDF5 datasets."""
        if key in self.maps:
            return self.maps[key]
        if self.kind == "npz":
            arr = self.npz_array(key)
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
                self.counts[key] = self.npz_array(name) if name in self.files else None
        return self.counts[key]

    def _read_raw(self, key: str, rows: np.ndarray) -> list[Any]:
        arr = self.raw_array(key)
        counts = self.nframes(key)
        if counts is None:
            return [arr[int(i)] for i in rows]
        return [list(arr[int(i)][: int(counts[i])]) for i in rows]


def decode_item(item: Any) -> Any:
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
