"""pack_samples: map a function over any inputs and pack the dicts it returns into HDF5 shards."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._constants import KEY_COLUMN
from ._csv import check_header
from ._files import (
    RUN_KEY,
    abandon,
    new_run_id,
    prepare_output,
    require_kind,
    shard_names,
    temp_name,
)
from ._manifest import place_output, shard_record
from ._pack import RowEncoder, RowError, map_samples
from ._procs import process_safe, start_forkserver
from ._progress import Progress
from ._rank import get_rank
from ._signals import Terminated, check_terminated, install_handlers, restore_handlers, signals_deferred
from ._validate import int_in
from ._writer import write_rows

_BLOCK = 256  # samples buffered per column write


@dataclass(frozen=True)
class Field:
    """One column of a sample dict: 'array' (fixed shape and dtype), 'scalar', 'str' or 'bytes'."""

    name: str
    kind: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """The column's type as the manifest and the file's metadata record it."""
        if self.kind in ("str", "bytes"):
            return self.kind
        if self.kind == "array":
            return f"{self.dtype}[{','.join(map(str, self.shape))}]"
        return str(self.dtype)


def _field(name: str, value: Any, index: int) -> Field:
    if isinstance(value, str):
        return Field(name, "str", np.dtype(object))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Field(name, "bytes", np.dtype(np.uint8))
    if isinstance(value, (bool, np.bool_)):
        return Field(name, "scalar", np.dtype(bool))
    if isinstance(value, (int, np.integer)):
        return Field(name, "scalar", np.dtype(np.int64) if isinstance(value, int) else value.dtype)
    if isinstance(value, (float, np.floating)):
        return Field(name, "scalar", np.dtype(np.float64) if isinstance(value, float) else value.dtype)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        if value.ndim == 0:
            return Field(name, "scalar", value.dtype)
        return Field(name, "array", value.dtype, tuple(value.shape))
    raise TypeError(
        f"pack_samples: input {index}: sample[{name!r}] is a {type(value).__name__}; values must be numeric or bool "
        "numpy arrays, bytes, str, int, float or bool"
    )


def schema_of(sample: Any, index: int) -> list[Field]:
    """The columns a sample dict defines (its keys, sorted), checked as names of packed columns."""
    if not isinstance(sample, dict) or not sample:
        raise TypeError(
            f"pack_samples: fn(inputs[{index}]) returned {type(sample).__name__}; it must return a non-empty dict "
            "of column name -> value"
        )
    names = sorted(sample)
    if not all(isinstance(k, str) for k in names):
        raise TypeError(f"pack_samples: input {index}: sample keys must be str (got {names!r})")
    check_header([k for k in names if k != KEY_COLUMN], f"the sample of input {index}")
    return [_field(k, sample[k], index) for k in names]


def _check_sample(sample: Any, schema: list[Field], index: int) -> None:
    """Every sample must have the first one's columns, kinds, dtypes and shapes."""
    if not isinstance(sample, dict) or sorted(sample) != [f.name for f in schema]:
        keys = sorted(sample) if isinstance(sample, dict) else type(sample).__name__
        raise ValueError(
            f"pack_samples: input {index}: fn returned keys {keys}, but input 0 returned "
            f"{[f.name for f in schema]}; every sample must have the same keys"
        )
    for want in schema:
        got: Field | None
        try:
            got = _field(want.name, sample[want.name], index)
        except TypeError:
            got = None
        if got != want:
            shown = got.label if got is not None else type(sample[want.name]).__name__
            raise ValueError(
                f"pack_samples: input {index}: sample[{want.name!r}] is {shown}, but input 0's is {want.label}; "
                "every sample must match the first (same types, dtypes and shapes)"
            )


class SampleWriter:
    """Writes one HDF5 file of samples: every column created for `n` rows, then filled block by block."""

    def __init__(self, path: str, schema: list[Field], n: int, meta: dict[str, Any]) -> None:
        import h5py

        self.path, self.schema, self.pos = path, schema, 0
        self.pending: list[dict[str, Any]] = []
        self.file = h5py.File(path, "w")
        for key, value in meta.items():
            self.file.attrs[key] = json.dumps(value) if isinstance(value, list) else value
        for f in schema:
            if f.kind == "str":
                dtype: Any = h5py.string_dtype("utf-8")
            elif f.kind == "bytes":
                dtype = h5py.vlen_dtype(np.uint8)
            else:
                dtype = f.dtype
            self.file.create_dataset(f.name, shape=(n, *f.shape), dtype=dtype)

    def add(self, sample: dict[str, Any]) -> None:
        self.pending.append(sample)
        if len(self.pending) >= _BLOCK:
            self.flush()

    def flush(self) -> None:
        k = len(self.pending)
        if not k:
            return
        for f in self.schema:
            values = [s[f.name] for s in self.pending]
            if f.kind in ("str", "bytes"):
                block = np.empty(k, dtype=object)
                for i, v in enumerate(values):
                    block[i] = v if f.kind == "str" else np.frombuffer(bytes(v), dtype=np.uint8)
            elif f.kind == "array":
                block = np.stack(values)
            else:
                block = np.asarray(values, dtype=f.dtype)
            write_rows(self.file[f.name], self.pos, block)
        self.pos += k
        self.pending = []

    def finish(self) -> None:
        self.flush()
        self.file.close()  # flushed to disk by the commit that puts this temp file in place

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


def pack_samples(
    fn: Callable[[Any], dict[str, Any]],
    inputs: Iterable[Any],
    dst: str,
    *,
    shards: int = 1,
    nworker: int | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> list[str]:
    """Call `fn` on every input and pack the sample dicts it returns into HDF5 files that Tank reads.

    The first sample fixes the columns (its keys, sorted): numeric or bool numpy arrays of a fixed shape, bytes,
    str, int, float or bool values; every later sample must match it. Shards hold contiguous runs of the inputs
    (`np.array_split` of their positions) and are committed as one family, with its manifest, as generate() does.

    Args:
        fn: `fn(input) -> dict`; with `nworker > 1` it must be importable from a module (not a lambda, a local
            function or one defined in `__main__`), as worker processes receive it by name.
        inputs: anything iterable; its items are handed to `fn` one by one (and pickled to worker processes).
        dst: the `.hdf5`/`.h5` output; with `shards > 1` the files are `{stem}_{i}{suffix}`.
        shards: number of files, 1 <= shards <= number of inputs.
        nworker: worker processes; None uses every core when `fn` can go to workers, else 1; 1 runs `fn` here.
        overwrite: replace an existing output of that name.
        verbose: progress bar and summary on rank <= 0.

    Returns:
        The written file paths.

    Raises:
        TypeError: `fn` is not callable or cannot go to worker processes, or a sample is not a dict of supported
            values; ValueError: a sample that does not match the first (naming its input index), a call of `fn`
            that raised, bad `shards`/`dst`; FileExistsError: the output exists and `overwrite` is False.

    Example:
        >>> pack_samples(lambda i: {'x': np.full(3, i, np.float32), 'name': str(i)}, range(100),
        ...              'out/samples.hdf5', shards=4, nworker=1)  # doctest: +SKIP
    """
    if not callable(fn):
        raise TypeError(f"'fn' must be callable (got {type(fn).__name__})")
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise TypeError(f"'inputs' must be an iterable of inputs (got {type(inputs).__name__})")
    items = list(inputs)
    if not items:
        raise ValueError("'inputs' is empty: nothing to pack")
    if not isinstance(dst, (str, os.PathLike)):
        raise TypeError(f"'dst' must be a path str (got {type(dst).__name__})")
    dst = os.fspath(dst)
    if require_kind(dst, "'dst'") != "hdf5":
        raise ValueError(f"pack_samples writes HDF5: 'dst' must end in .hdf5 or .h5 (got {dst!r})")
    nshard = int_in("shards", shards, 1)
    if nshard > len(items):
        raise ValueError(
            f"'shards' must be <= the number of inputs ({len(items)}) so that no shard is empty (got {nshard})"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"'overwrite' must be a bool (got {overwrite!r})")
    safe = process_safe(fn)
    if nworker is None:
        nworker = (os.cpu_count() or 1) if safe else 1
    nworker = min(int_in("nworker", nworker, 1, expected="None or an int >= 1"), len(items))
    if nworker > 1 and not safe:
        raise TypeError(
            f"'fn' ({getattr(fn, '__qualname__', fn)!r}) cannot be sent to worker processes: define it at the top of "
            "an importable module (not a lambda, a local function or in __main__), or pass nworker=1"
        )
    target, finals, family = prepare_output(dst, nshard, overwrite)
    show = verbose and get_rank() <= 0
    _pack(fn, items, target, finals, [*family.finals, *family.parts], nworker, show)
    return finals if os.path.islink(dst) else shard_names(dst, nshard)


def _pack(
    fn: Any, items: list[Any], target: str, finals: list[str], existing: list[str], nworker: int, show: bool
) -> None:
    start = time.perf_counter()
    n, nshard = len(items), len(finals)
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), nshard)])
    temps = [temp_name(f) for f in finals]
    run = new_run_id()
    records: list[dict[str, Any]] = []
    placed: list[str] = []
    writers: list[SampleWriter] = []
    schema: list[Field] = []
    handlers = install_handlers()
    progress = Progress(n, f"packing {os.path.basename(target)}", enabled=show)
    if nworker > 1:
        start_forkserver()
    try:
        with RowEncoder(nworker, fn, work=map_samples) as mapper:
            for i in range(nshard):
                a, b = int(bounds[i]), int(bounds[i + 1])
                writer = None
                pos = a
                for results in mapper.run(items[a:b]):
                    for sample in results:
                        if isinstance(sample, RowError):
                            raise ValueError(f"pack_samples: fn(inputs[{pos}]) raised {sample.message}")
                        if not schema:
                            schema = schema_of(sample, pos)
                        _check_sample(sample, schema, pos)
                        if writer is None:
                            writer = SampleWriter(temps[i], schema, b - a, _meta(schema, i, nshard, n, run))
                            writers.append(writer)
                        writer.add(sample)
                        pos += 1
                    progress.update(len(results))
                    check_terminated()
                assert writer is not None
                writer.finish()
                if nshard > 1:
                    records.append(shard_record(temps[i], finals[i], b - a))
        check_terminated()
        with signals_deferred():
            names, labels = [f.name for f in schema], [f.label for f in schema]
            place_output(target, temps, finals, existing, placed, records, run, names, labels)
        check_terminated()
    except Terminated:
        abandon(writers, temps, placed)
        restore_handlers(handlers)
        handlers = None
        raise SystemExit(143) from None
    except BaseException:
        abandon(writers, temps, placed)
        raise
    finally:
        if handlers is not None:
            restore_handlers(handlers)
    progress.close(
        f"wrote {', '.join(os.path.basename(f) for f in finals)} in {time.perf_counter() - start:.1f} s"
        if show
        else None
    )


def _meta(schema: list[Field], shard: int, nshard: int, total: int, run: str) -> dict[str, Any]:
    """The metadata generate() gives its files, for a file of samples."""
    return {
        "nebulae_format": 1,
        "nebulae_columns": [f.name for f in schema],
        "nebulae_dtypes": [f.label for f in schema],
        "nebulae_is_seq": False,
        "nebulae_shard": shard if nshard > 1 else -1,
        "nebulae_num_shards": nshard,
        "nebulae_total_rows": total,
        RUN_KEY: run,
    }
