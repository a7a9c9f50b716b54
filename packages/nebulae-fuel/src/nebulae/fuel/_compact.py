"""Rewrite a finished (temp) packed file without some of its rows: what `on_error='skip'` left out."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ._constants import FRAME_KEY, META_KEY, SKIPPED_KEY
from ._files import discard, spill_name
from ._writer import write_npz, write_rows

_STEP = 256  # rows copied per HDF5 call: a few tens of MB of RAW pixels at most


def drop_rows(path: str, kind: str, keep: np.ndarray) -> None:
    """Replace the temp file `path` by a copy holding only the rows where `keep` is True.

    The copy records in its metadata how many rows were left out. Its own temp file is the NPZ spill name of
    `path`, which stale-temp cleanup and the pack's own cleanup already know.
    """
    out = spill_name(path)
    try:
        (_drop_hdf5 if kind == "hdf5" else _drop_npz)(path, out, np.asarray(keep, dtype=bool))
        os.replace(out, path)
    except BaseException:
        discard(out)
        raise


def _drop_hdf5(src: str, dst: str, keep: np.ndarray) -> None:
    import h5py

    n, rows = len(keep), np.flatnonzero(keep)
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for key, value in f.attrs.items():
            g.attrs[key] = value
        g.attrs[SKIPPED_KEY] = int(n - len(rows))
        for name, ds in f.items():
            if ds.ndim and ds.shape[0] == n and name != FRAME_KEY:
                # contiguous (no chunks), as the writer makes them: Tank memory-maps RAW columns
                out = g.create_dataset(name, shape=(len(rows), *ds.shape[1:]), dtype=ds.dtype)
                for start in range(0, len(rows), _STEP):
                    write_rows(out, start, ds[rows[start : start + _STEP]])
            else:
                out = g.create_dataset(name, data=ds[()], dtype=ds.dtype)
            for key, value in ds.attrs.items():
                out.attrs[key] = value


def _drop_npz(src: str, dst: str, keep: np.ndarray) -> None:
    n = len(keep)
    arrays: dict[str, Any] = {}
    with np.load(src, allow_pickle=False) as z:
        names = list(z.files)
        for name in names:
            if name.endswith(("__offsets", "__frames")) and name.rsplit("__", 1)[0] in names:
                continue  # rebuilt with the column they index
            arr = z[name]
            if name == META_KEY:
                meta = json.loads(str(arr.reshape(-1)[0]))
                meta[SKIPPED_KEY] = int(n - keep.sum())
                arrays[name] = np.asarray(json.dumps(meta))
            elif f"{name}__frames" in names:
                # a sequence column: rows -> frames (`__frames`) -> bytes (`__offsets`)
                frames, offsets = z[f"{name}__frames"], z[f"{name}__offsets"]
                keep_frames = np.repeat(keep, np.diff(frames))
                arrays[name] = arr[np.repeat(keep_frames, np.diff(offsets))]
                arrays[f"{name}__offsets"] = _offsets(np.diff(offsets)[keep_frames])
                arrays[f"{name}__frames"] = _offsets(np.diff(frames)[keep])
            elif f"{name}__offsets" in names:
                offsets = z[f"{name}__offsets"]
                arrays[name] = arr[np.repeat(keep, np.diff(offsets))]
                arrays[f"{name}__offsets"] = _offsets(np.diff(offsets)[keep])
            elif arr.ndim and arr.shape[0] == n and name != FRAME_KEY:
                arrays[name] = arr[keep]
            else:
                arrays[name] = arr
    write_npz(dst, arrays)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out
