"""Summaries of packed files for `python -m nebulae.fuel info`."""

from __future__ import annotations

import os
from typing import Any

from ._cache import ShardCache
from ._constants import FRAME_KEY
from ._remote import is_url, local_path, open_remote
from ._source import Source, resolve_paths


def _column(source: Source, key: str, max_frames: int) -> dict[str, Any]:
    """dtype, shape (rows, then frames for sequences) and encode of one column, as stored in the first shard."""
    shard = source.shards[0]
    if source.kind == "hdf5":
        import h5py

        ds = shard.raw[key]
        dtype, shape = str(ds.dtype), list(ds.shape)
        vlen = h5py.check_vlen_dtype(ds.dtype)
        if vlen is not None:
            dtype = f"vlen {getattr(vlen, '__name__', vlen)}" if vlen in (str, bytes) else f"vlen {vlen}"
    else:
        arr = shard.npz_array(key)
        dtype, shape = str(arr.dtype), list(arr.shape)
        if key + "__offsets" in shard.files:
            # encoded rows are stored end to end in one flat array: show them as HDF5 shows its vlen rows
            dtype = f"vlen {arr.dtype}"
            shape = [0, max_frames] if key + "__frames" in shard.files else [0]
    if max_frames and source.is_image(key) and len(shape) >= 2:
        shape[1] = max_frames  # each shard pads its sequences to its own longest: report the family's
    shape[0:1] = [source.length(key)] if shape else []
    return {"name": key, "dtype": dtype, "shape": shape, "encode": source.encode_of(key)}


def _is_column(source: Source, key: str) -> bool:
    """False for the bookkeeping datasets of sequence files: the `_MAX_FRAMES` scalar and `{col}__nframes`."""
    if key == FRAME_KEY:
        return False
    return not (key.endswith("__nframes") and key[: -len("__nframes")] in source.keys)


def info(
    data_path: Any, *, storage_options: dict[str, Any] | None = None, cache_dir: Any = None
) -> dict[str, Any]:
    """Describe a packed dataset: shards, rows, columns with dtypes and shapes, encode and file sizes.

    A URL (s3://, gs://, az://, http(s)://) reads the manifest and downloads only the first shard into the cache
    (`cache_dir`, see Tank) for the columns; rows and sizes come from the manifest, and a sequence column's
    frame count from that shard.

    Example:
        >>> info('fuel.hdf5')['rows']  # doctest: +SKIP
        1000
    """
    local = local_path(data_path)  # file:// names a local path
    if is_url(local):
        return _remote_info(local, storage_options, cache_dir)
    paths, kind = resolve_paths(local)
    return _summary(
        data_path, paths, kind, Source(paths, kind, decode=False), [os.path.getsize(p) for p in paths]
    )


def _remote_info(url: str, storage_options: dict[str, Any] | None, cache_dir: Any) -> dict[str, Any]:
    rset = open_remote(url, storage_options)
    cache = ShardCache(rset, cache_dir)
    try:
        cache.acquire(0)
        known = [e.rows for e in rset.entries if e.rows is not None]
        lazy = known if len(known) == len(rset.entries) else None  # a lone file without manifest opens whole
        source = Source(cache.paths, rset.kind, decode=False, rows=lazy, meta=0)
        return _summary(url, cache.paths, rset.kind, source, [e.bytes for e in rset.entries])
    finally:
        cache.close()


def _summary(
    data_path: Any, paths: list[str], kind: str, source: Source, nbytes: list[int]
) -> dict[str, Any]:
    try:
        max_frames = source.max_frames()
        columns = [_column(source, key, max_frames) for key in source.keys if _is_column(source, key)]
        rows = next((c["shape"][0] for c in columns if c["shape"]), 0)
        sizes = {os.path.basename(p): n for p, n in zip(paths, nbytes, strict=True)}
        return {
            "path": os.fspath(data_path) if not isinstance(data_path, (list, tuple)) else list(data_path),
            "format": kind,
            "shards": len(paths),
            "rows": rows,
            "skipped": sum(s.skipped for s in source.shards),
            "max_frames": max_frames,
            "columns": columns,
            "sizes": sizes,
            "total_bytes": sum(sizes.values()),
        }
    finally:
        source.close()


def format_info(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['path']}: {summary['format'].upper()}, {summary['shards']} file(s), {summary['rows']} rows, "
        f"{summary['total_bytes'] / 1e6:.1f} MB"
    ]
    if summary.get("skipped"):
        lines.append(f"  skipped rows (on_error='skip'): {summary['skipped']}")
    if summary["max_frames"]:
        lines.append(f"  max frames: {summary['max_frames']}")
    for col in summary["columns"]:
        enc = f"  encode={col['encode']}" if col["encode"] else ""
        lines.append(f"  {col['name']:<20} {col['dtype']:<14} shape={tuple(col['shape'])}{enc}")
    for name, size in summary["sizes"].items():
        lines.append(f"  {name}: {size} bytes")
    return "\n".join(lines)
