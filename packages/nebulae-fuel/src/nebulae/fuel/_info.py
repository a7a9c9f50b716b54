"""Summaries of packed files for `python -m nebulae.fuel info`."""

from __future__ import annotations

import os
from typing import Any

from ._source import Source, resolve_paths


def info(data_path: Any) -> dict[str, Any]:
    """Describe a packed dataset: shards, rows, columns with dtypes and shapes, encode and file sizes.

    Example:
        >>> info('fuel.hdf5')['rows']  # doctest: +SKIP
        1000
    """
    paths, kind = resolve_paths(data_path)
    source = Source(paths, kind, decode=False)
    try:
        columns = []
        for key in source.keys:
            shard = source.shards[0]
            if kind == "hdf5":
                ds = shard.raw[key]
                dtype, shape = str(ds.dtype), list(ds.shape)
                import h5py

                vlen = h5py.check_vlen_dtype(ds.dtype)
                if vlen is not None:
                    dtype = (
                        f"vlen {getattr(vlen, '__name__', vlen)}" if vlen in (str, bytes) else f"vlen {vlen}"
                    )
            else:
                arr = shard._npz(key)
                dtype, shape = str(arr.dtype), list(arr.shape)
            shape[0:1] = [source.length(key)] if shape else []
            columns.append({"name": key, "dtype": dtype, "shape": shape, "encode": source.encode_of(key)})
        rows = source.length(source.keys[0]) if source.keys else 0
        sizes = {os.path.basename(p): os.path.getsize(p) for p in paths}
        return {
            "path": os.fspath(data_path) if not isinstance(data_path, (list, tuple)) else list(data_path),
            "format": kind,
            "shards": len(paths),
            "rows": rows,
            "max_frames": source.max_frames(),
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
    if summary["max_frames"]:
        lines.append(f"  max frames: {summary['max_frames']}")
    for col in summary["columns"]:
        enc = f"  encode={col['encode']}" if col["encode"] else ""
        lines.append(f"  {col['name']:<20} {col['dtype']:<14} shape={tuple(col['shape'])}{enc}")
    for name, size in summary["sizes"].items():
        lines.append(f"  {name}: {size} bytes")
    return "\n".join(lines)
