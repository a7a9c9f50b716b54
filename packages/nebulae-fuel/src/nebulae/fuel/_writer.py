"""Streaming writers for one HDF5 or NPZ output file."""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from typing import Any

import numpy as np

from ._constants import FRAME_KEY, META_KEY
from ._csv import Column
from ._files import RUN_KEY, discard, spill_name


def part_columns(columns: list[Column], start: int, stop: int) -> list[Column]:
    """The same columns restricted to rows [start, stop)."""
    return [
        Column(c.name, c.dtype, c.base, c.variable, c.is_image, c.values[start:stop], c.width)
        for c in columns
    ]


def _object_array(items: list[Any], dtype: Any = None) -> np.ndarray:
    # filled one by one: np.array(list_of_arrays, dtype=object) collapses equal lengths to 2-D
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = np.asarray(item, dtype=dtype) if dtype is not None else item
    return out


def write_rows(ds: Any, start: int, block: np.ndarray) -> None:
    """ds[start:start+len(block)] = block; object (vlen) blocks go through write_direct, because h5py's
    __setitem__ turns equal-length vlen items into an extra axis and then fails to broadcast."""
    if block.dtype == object:
        ds.write_direct(np.ascontiguousarray(block), dest_sel=np.s_[start : start + len(block)])
    else:
        ds[start : start + len(block)] = block


def _np_base(base: str) -> np.dtype:
    return np.dtype(bool) if base == "bool" else np.dtype(base)


class ImageLayout:
    """What the image column of one file looks like."""

    def __init__(self, encode: str, channel: int, height: int, width: int, is_seq: bool, nframes: list[int]):
        self.encode = encode
        self.channel = channel
        self.height = height
        self.width = width
        self.is_seq = is_seq
        self.nframes = nframes
        self.max_frames = max(nframes) if nframes else 0


def file_meta(
    columns: list[Column], is_seq: bool, shard: int, num_shards: int, total: int, run: str | None = None
) -> dict[str, Any]:
    """The metadata every packed file carries (HDF5 root attributes, or the NPZ's metadata entry).

    `run` ties the files of one generate() call together, so that a reader can tell a complete shard family
    from one left half-replaced by an interrupted run; files without it (older packs) load as before.
    """
    meta: dict[str, Any] = {
        "nebulae_format": 1,
        "nebulae_columns": [c.name for c in columns],
        "nebulae_dtypes": [c.dtype for c in columns],
        "nebulae_is_seq": bool(is_seq),
        "nebulae_shard": shard,
        "nebulae_num_shards": num_shards,
        "nebulae_total_rows": total,
    }
    if run is not None:
        meta[RUN_KEY] = run
    return meta


class HDF5Writer:
    """Writes one HDF5 file: plain columns at once, the image column in slabs."""

    def __init__(self, path: str, columns: list[Column], layout: ImageLayout | None, meta: dict[str, Any]):
        import h5py

        self.path = path
        self.layout = layout
        self.file = h5py.File(path, "w")
        n = len(columns[0].values) if columns else 0
        for key, value in meta.items():
            self.file.attrs[key] = json.dumps(value) if isinstance(value, list) else value
        self.image: Any = None
        for col in columns:
            if col.is_image and layout is not None:
                self.image = self._create_image(col.name, n, layout)
            else:
                self._write_plain(col)
        if meta["nebulae_is_seq"]:
            frames = layout.max_frames if layout else max((len(v) for v in columns[0].values), default=0)
            self.file.create_dataset(FRAME_KEY, data=np.int64(frames))

    def _create_image(self, name: str, n: int, lay: ImageLayout) -> Any:
        import h5py

        if lay.encode == "RAW":
            shape: tuple[int, ...] = (n, lay.height, lay.width, lay.channel)
            if lay.is_seq:
                shape = (n, lay.max_frames, *shape[1:])
                self.file.create_dataset(f"{name}__nframes", data=np.asarray(lay.nframes, dtype=np.int32))
            ds = self.file.create_dataset(name, shape=shape, dtype=np.uint8)  # contiguous: Tank maps it
        else:
            shape = (n, lay.max_frames) if lay.is_seq else (n,)
            ds = self.file.create_dataset(name, shape=shape, dtype=h5py.vlen_dtype(np.uint8))
        ds.attrs["nebulae_encode"] = lay.encode
        ds.attrs["nebulae_channel"] = lay.channel
        ds.attrs["nebulae_height"] = lay.height
        ds.attrs["nebulae_width"] = lay.width
        return ds

    def _write_plain(self, col: Column) -> None:
        import h5py

        if col.base == "str":
            data = _object_array([str(v) if not isinstance(v, list) else ",".join(v) for v in col.values])
            self.file.create_dataset(col.name, data=data, dtype=h5py.string_dtype("utf-8"))
        elif col.variable:
            base = _np_base(col.base)
            data = _object_array(col.values, base)
            self.file.create_dataset(col.name, shape=(len(data),), dtype=h5py.vlen_dtype(base))
            if len(data):
                write_rows(self.file[col.name], 0, data)
        else:
            self.file.create_dataset(col.name, data=col.to_array())

    def write_images(self, start: int, items: list[Any]) -> None:
        """Store the processed elements of rows [start, start+len(items))."""
        lay = self.layout
        assert lay is not None and self.image is not None
        k = len(items)
        if lay.encode == "RAW":
            if lay.is_seq:
                slab = np.zeros((k, *self.image.shape[1:]), dtype=np.uint8)
                for i, frames in enumerate(items):
                    slab[i, : len(frames)] = np.stack(frames)
            else:
                slab = np.stack(items)
            self.image[start : start + k] = slab
        elif lay.is_seq:
            slab = np.empty((k, lay.max_frames), dtype=object)
            empty = np.zeros(0, dtype=np.uint8)
            for i, frames in enumerate(items):
                for j in range(lay.max_frames):
                    slab[i, j] = frames[j] if j < len(frames) else empty
            write_rows(self.image, start, slab)
        else:
            write_rows(self.image, start, _object_array(items))

    def finish(self) -> None:
        # flushed to disk by the commit that puts this temp file in place
        self.file.flush()
        self.file.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


def _npy_entry(zf: zipfile.ZipFile, key: str) -> Any:
    return zf.open(f"{key}.npy", "w", force_zip64=True)


def write_npy(zf: zipfile.ZipFile, key: str, arr: np.ndarray) -> None:
    with _npy_entry(zf, key) as fh:
        np.lib.format.write_array(fh, np.asarray(arr), allow_pickle=False)


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed NPZ archive of `arrays` at `path` (a temp file: its commit flushes it to disk)."""
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            write_npy(zf, key, arr)


def _concat(rows: list[Any], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([np.asarray(r, dtype=dtype).ravel() for r in rows]) if rows else np.zeros(0, dtype)
    return flat.astype(dtype, copy=False), offsets


class NPZWriter:
    """Writes one NPZ archive without object arrays; encoded images spill to a side file until the end."""

    def __init__(self, path: str, columns: list[Column], layout: ImageLayout | None, meta: dict[str, Any]):
        self.path = path
        self.layout = layout
        self.fh = open(path, "wb")  # noqa: SIM115 - kept open until finish(); a file object: numpy would append '.npz' to a bare path
        self.zf = zipfile.ZipFile(self.fh, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.image_name: str | None = None
        self.blob: Any = None
        self.raw_entry: Any = None
        n = len(columns[0].values) if columns else 0
        self._byte_offsets = [0]
        self._frame_offsets = [0]
        meta = dict(meta)
        for col in columns:
            if col.is_image and layout is not None:
                self.image_name = col.name
                meta["nebulae_image"] = {
                    "column": col.name,
                    "encode": layout.encode,
                    "channel": layout.channel,
                    "height": layout.height,
                    "width": layout.width,
                }
            else:
                self._write_plain(col)
        if meta["nebulae_is_seq"]:
            frames = layout.max_frames if layout else max((len(v) for v in columns[0].values), default=0)
            write_npy(self.zf, FRAME_KEY, np.asarray(frames, dtype=np.int64))
        write_npy(self.zf, META_KEY, np.asarray(json.dumps(meta)))
        if layout is not None and self.image_name is not None:
            if layout.encode == "RAW":
                shape: tuple[int, ...] = (n, layout.height, layout.width, layout.channel)
                if layout.is_seq:
                    shape = (n, layout.max_frames, *shape[1:])
                    write_npy(
                        self.zf, f"{self.image_name}__nframes", np.asarray(layout.nframes, dtype=np.int32)
                    )
                self.raw_entry = _npy_entry(self.zf, self.image_name)
                np.lib.format.write_array_header_2_0(
                    self.raw_entry, {"descr": "|u1", "fortran_order": False, "shape": shape}
                )
            else:
                self.blob = open(spill_name(path), "w+b")  # noqa: SIM115 - closed in finish()/abort()

    def _write_plain(self, col: Column) -> None:
        if col.base == "str":
            values = [str(v) if not isinstance(v, list) else ",".join(v) for v in col.values]
            write_npy(self.zf, col.name, np.asarray(values, dtype=str) if values else np.zeros(0, "<U1"))
        elif col.variable:
            flat, offsets = _concat(col.values, _np_base(col.base))
            write_npy(self.zf, col.name, flat)
            write_npy(self.zf, f"{col.name}__offsets", offsets)
        else:
            write_npy(self.zf, col.name, col.to_array())

    def write_images(self, start: int, items: list[Any]) -> None:
        lay = self.layout
        assert lay is not None
        if lay.encode == "RAW":
            for item in items:
                if lay.is_seq:
                    padded = np.zeros((lay.max_frames, lay.height, lay.width, lay.channel), dtype=np.uint8)
                    padded[: len(item)] = np.stack(item)
                    self.raw_entry.write(padded.tobytes())
                else:
                    self.raw_entry.write(np.ascontiguousarray(item).tobytes())
            return
        for item in items:
            frames = item if lay.is_seq else [item]
            for frame in frames:
                self.blob.write(frame.tobytes())
                self._byte_offsets.append(self._byte_offsets[-1] + len(frame))
            self._frame_offsets.append(self._frame_offsets[-1] + len(frames))

    def finish(self) -> None:
        if self.raw_entry is not None:
            self.raw_entry.close()
        if self.blob is not None:
            total = self._byte_offsets[-1]
            self.blob.seek(0)
            with _npy_entry(self.zf, self.image_name or "") as entry:
                np.lib.format.write_array_header_2_0(
                    entry, {"descr": "|u1", "fortran_order": False, "shape": (total,)}
                )
                shutil.copyfileobj(self.blob, entry, 1 << 22)
            write_npy(self.zf, f"{self.image_name}__offsets", np.asarray(self._byte_offsets, dtype=np.int64))
            if self.layout is not None and self.layout.is_seq:
                write_npy(
                    self.zf, f"{self.image_name}__frames", np.asarray(self._frame_offsets, dtype=np.int64)
                )
            self._drop_blob()
        self.zf.close()
        self.fh.close()  # flushed to disk by the commit that puts this temp file in place

    def _drop_blob(self) -> None:
        if self.blob is not None:
            self.blob.close()
            self.blob = None
            discard(spill_name(self.path))

    def abort(self) -> None:
        for closer in (getattr(self.raw_entry, "close", None), self.zf.close, self.fh.close):
            try:
                if closer:
                    closer()
            except Exception:
                pass
        self._drop_blob()


def make_writer(
    path: str, kind: str, columns: list[Column], layout: ImageLayout | None, meta: dict[str, Any]
):
    """An HDF5Writer or NPZWriter for the temp file `path`."""
    cls = HDF5Writer if kind == "hdf5" else NPZWriter
    return cls(path, columns, layout, meta)


__all__ = [
    "HDF5Writer",
    "ImageLayout",
    "NPZWriter",
    "file_meta",
    "make_writer",
    "part_columns",
    "write_npy",
    "write_npz",
    "write_rows",
]
