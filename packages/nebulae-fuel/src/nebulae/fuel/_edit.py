"""merge, fill and deduct: edit packed files, always through an atomically replaced temp file."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import numpy as np

from ._constants import FRAME_KEY, META_KEY
from ._dtype import split_dtype
from ._files import RUN_KEY, commit, discard, new_run_id, require_kind, same_path, target_of, temp_name
from ._manifest import refresh_manifest_entry
from ._validate import instance_of
from ._writer import write_npz, write_rows

_SLAB_ROWS = 1024


def merge(src_dir: str, src: list[str], dst: str, dtype: dict[str, str], keep_src: bool = True) -> str:
    """Concatenate packed files `src` (names in `src_dir`), in list order, into `src_dir/dst`.

    Args:
        src_dir: directory of the sources and of the output.
        src: file names to merge; all must hold the same keys.
        dst: output file name.
        dtype: `{key: dtype}` of the output columns (keys not listed keep their stored type).
        keep_src: False deletes the sources, only once the output is in place.

    Returns:
        The output path.

    Raises:
        ValueError: sources with different keys, or mixed formats.
        FileExistsError: `dst` is one of the sources.

    Example:
        >>> merge('data', ['a_0.hdf5', 'a_1.hdf5'], 'a.hdf5', {'label': 'int64'})  # doctest: +SKIP
    """
    instance_of("src", src, (list, tuple), "a non-empty list of file names")
    if not src:
        raise ValueError(f"'src' must be a non-empty list of file names (got {src!r})")
    if not isinstance(dtype, dict):
        raise TypeError(f"'dtype' must be a dict of key -> dtype (got {type(dtype).__name__})")
    for key, dt in dtype.items():
        try:
            split_dtype(dt)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"dtype[{key!r}]: {exc}") from None
    paths = [os.path.join(src_dir, s) for s in src]
    out = os.path.join(src_dir, dst)
    kinds = {require_kind(p, "'src'") for p in paths} | {require_kind(out, "'dst'")}
    if len(kinds) != 1:
        raise ValueError("merge needs sources and destination of one format (all HDF5 or all NPZ)")
    if any(same_path(out, p) for p in paths):
        raise FileExistsError(f"'dst' {dst!r} is also a source; choose another name")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"source {p!r} does not exist")
    target = target_of(out)
    tmp = temp_name(target)
    try:
        (_merge_hdf5 if kinds == {"hdf5"} else _merge_npz)(paths, tmp, dtype)
        commit(tmp, target)
    except BaseException:
        discard(tmp)
        raise
    if not keep_src:
        for p in paths:
            os.unlink(p)
    return out


def _out_type(key: str, dtype: dict[str, str], stored: Any) -> Any:
    import h5py

    if key not in dtype:
        return stored
    base, variable = split_dtype(dtype[key])
    if base == "str":
        return h5py.string_dtype("utf-8")
    np_base = np.dtype(bool) if base == "bool" else np.dtype(base)
    if variable or dtype[key].startswith("v"):
        if h5py.check_vlen_dtype(stored) is None:
            return stored  # e.g. RAW pixels listed as 'vuint8'
        return h5py.vlen_dtype(np_base)
    return np_base


def _merge_hdf5(paths: list[str], tmp: str, dtype: dict[str, str]) -> None:
    import h5py

    files = [h5py.File(p, "r") for p in paths]
    try:
        keys = [set(f.keys()) for f in files]
        for p, k in zip(paths[1:], keys[1:], strict=True):
            if k != keys[0]:
                raise ValueError(
                    f"{os.path.basename(p)} has keys {sorted(k)} but {os.path.basename(paths[0])} has "
                    f"{sorted(keys[0])}; merge needs the same keys in every source"
                )
        frames = max((int(f[FRAME_KEY][()]) for f in files if FRAME_KEY in f), default=None)
        with h5py.File(tmp, "w") as out:
            for name, value in files[0].attrs.items():
                out.attrs[name] = value
            total = 0
            for key in files[0]:
                if key == FRAME_KEY:
                    out.create_dataset(FRAME_KEY, data=np.int64(frames or 0))
                    continue
                first = files[0][key]
                rows = sum(f[key].shape[0] for f in files)
                shape = list(first.shape)
                shape[0] = rows
                vlen = h5py.check_vlen_dtype(first.dtype) is not None
                seq_vlen = vlen and first.ndim == 2 and frames is not None
                seq_raw = not vlen and first.ndim == 5 and frames is not None
                if seq_vlen or seq_raw:
                    shape[1] = frames
                ds = out.create_dataset(key, shape=tuple(shape), dtype=_out_type(key, dtype, first.dtype))
                for name, value in first.attrs.items():
                    ds.attrs[name] = value
                at = 0
                for f in files:
                    src = f[key]
                    for a in range(0, src.shape[0], _SLAB_ROWS):
                        block = src[a : a + _SLAB_ROWS]
                        k = block.shape[0]
                        if seq_vlen:
                            padded: Any = np.empty((k, int(frames or 0)), dtype=object)
                            empty = np.zeros(0, dtype=np.uint8)
                            for i in range(k):
                                for j in range(int(frames or 0)):
                                    padded[i, j] = block[i, j] if j < block.shape[1] else empty
                            block = padded
                        elif seq_raw and block.shape[1] != frames:
                            padded = np.zeros((k, frames, *block.shape[2:]), dtype=block.dtype)
                            padded[:, : block.shape[1]] = block
                            block = padded
                        write_rows(ds, at, block)
                        at += k
                total = max(total, rows)
            if "nebulae_total_rows" in out.attrs:
                out.attrs["nebulae_total_rows"] = total
                out.attrs["nebulae_shard"] = -1
                out.attrs["nebulae_num_shards"] = 1
                out.attrs[RUN_KEY] = new_run_id()  # a new file, of no packing run's family
    finally:
        for f in files:
            f.close()


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _merge_npz(paths: list[str], tmp: str, dtype: dict[str, str]) -> None:
    parts = [_load_npz(p) for p in paths]
    for p, part in zip(paths[1:], parts[1:], strict=True):
        if set(part) != set(parts[0]):
            raise ValueError(
                f"{os.path.basename(p)} has keys {sorted(part)} but {os.path.basename(paths[0])} has "
                f"{sorted(parts[0])}; merge needs the same keys in every source"
            )
    merged: dict[str, np.ndarray] = {}
    frames = max((int(p[FRAME_KEY]) for p in parts if FRAME_KEY in p), default=None)
    for key in parts[0]:
        if key == META_KEY:
            continue
        if key == FRAME_KEY:
            merged[key] = np.asarray(frames, dtype=np.int64)
        elif key.endswith(("__offsets", "__frames")):
            pieces, shift = [parts[0][key][:1]], 0
            for part in parts:
                pieces.append(part[key][1:] + shift)
                shift += int(part[key][-1])
            merged[key] = np.concatenate(pieces)
        else:
            arrays = [part[key] for part in parts]
            if arrays[0].ndim == 5 and frames is not None:
                arrays = [
                    np.pad(a, ((0, 0), (0, frames - a.shape[1]), (0, 0), (0, 0), (0, 0))) for a in arrays
                ]
            merged[key] = np.concatenate(arrays)
            if key in dtype and not dtype[key].startswith("v") and split_dtype(dtype[key])[0] != "str":
                base = split_dtype(dtype[key])[0]
                merged[key] = merged[key].astype(bool if base == "bool" else base)
    if META_KEY in parts[0]:
        meta = json.loads(str(parts[0][META_KEY]))
        first_col = meta.get("nebulae_columns", [None])[0]
        rows = None
        if first_col in merged:
            rows = (
                len(merged[first_col + "__frames"]) - 1
                if first_col + "__frames" in merged
                else (
                    len(merged[first_col + "__offsets"]) - 1
                    if first_col + "__offsets" in merged
                    else len(merged[first_col])
                )
            )
        meta.update(nebulae_shard=-1, nebulae_num_shards=1, nebulae_total_rows=rows, nebulae_run=new_run_id())
        merged[META_KEY] = np.asarray(json.dumps(meta))
    write_npz(tmp, merged)


def _as_array(data: Any) -> Any:
    if isinstance(data, (str, bytes)):
        return data.decode("utf-8") if isinstance(data, bytes) else data
    arr = np.asarray(data)
    return arr.reshape(1) if arr.ndim == 0 else arr


def fill(src: str, key: str, data: Any) -> None:
    """Add dataset `key` holding `data` to a packed file (scalars become length-1 arrays, text a UTF-8 string).

    Raises:
        KeyError: `key` already exists.
        FileNotFoundError: `src` does not exist.

    Example:
        >>> fill('fuel.hdf5', 'classes', ['cat', 'dog'])  # doctest: +SKIP
    """
    kind = require_kind(src, "'src'")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"'src' {src!r} does not exist")
    value = _as_array(data)
    target = target_of(src)
    tmp = temp_name(target)
    try:
        if kind == "hdf5":
            import h5py

            shutil.copyfile(target, tmp)
            with h5py.File(tmp, "a") as f:
                if key in f:
                    raise KeyError(f"{key!r} already exists in {os.path.basename(src)}; deduct() it first")
                if isinstance(value, str):
                    f.create_dataset(key, data=value, dtype=h5py.string_dtype("utf-8"))
                elif value.dtype.kind == "U":
                    f.create_dataset(key, data=value.astype(object), dtype=h5py.string_dtype("utf-8"))
                else:
                    f.create_dataset(key, data=value)
        else:
            arrays = _load_npz(target)
            if key in arrays:
                raise KeyError(f"{key!r} already exists in {os.path.basename(src)}; deduct() it first")
            arrays[key] = np.asarray(value)
            if arrays[key].dtype == object:
                raise TypeError(f"fill: {key!r} would need pickling in NPZ; pass numbers or text")
            write_npz(tmp, arrays)
        commit(tmp, target)
    except BaseException:
        discard(tmp)
        raise
    refresh_manifest_entry(target, added=key)


def deduct(src: str, key: str, repack: bool = False) -> None:
    """Delete dataset `key` from a packed file.

    Args:
        src: an HDF5 or NPZ file.
        key: the dataset to remove.
        repack: HDF5 only: rewrite the file so that the space is reclaimed (NPZ is always rewritten).

    Raises:
        KeyError: `key` is not in the file.

    Example:
        >>> deduct('fuel.hdf5', 'classes', repack=True)  # doctest: +SKIP
    """
    kind = require_kind(src, "'src'")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"'src' {src!r} does not exist")
    target = target_of(src)
    tmp = temp_name(target)
    try:
        if kind == "hdf5":
            import h5py

            with h5py.File(target, "r") as f:
                if key not in f:
                    raise KeyError(
                        f"{key!r} is not in {os.path.basename(src)}; available: {sorted(f.keys())}"
                    )
                if repack:
                    with h5py.File(tmp, "w") as out:
                        for name, value in f.attrs.items():
                            out.attrs[name] = value
                        for name in f:
                            if name != key:
                                f.copy(f[name], out, name)
            if not repack:
                shutil.copyfile(target, tmp)
                with h5py.File(tmp, "a") as out:
                    del out[key]
        else:
            arrays = _load_npz(target)
            if key not in arrays:
                raise KeyError(f"{key!r} is not in {os.path.basename(src)}; available: {sorted(arrays)}")
            for name in [key, f"{key}__offsets", f"{key}__frames", f"{key}__nframes"]:
                arrays.pop(name, None)
            write_npz(tmp, arrays)
        commit(tmp, target)
    except BaseException:
        discard(tmp)
        raise
    refresh_manifest_entry(target, removed=key)
