"""Small utilities: timing, seeding, label encodings, sparse conversion, config files, versions."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._optional import require
from ._validate import positive_int

__all__ = [
    "SPST",
    "Timer",
    "den2spa",
    "destine",
    "hotvec2mtx",
    "mtx2hotvec",
    "parse_cfg",
    "rand_trunc_norm",
    "record_cfg",
    "spa2den",
    "sprawl",
    "ver2num",
]


def Timer(fn: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
    """Decorator: the call returns ``(elapsed_seconds, *results)`` (a non-tuple result is wrapped).

    Example:
        >>> @Timer
        ... def add(a, b):
        ...     return a + b
        >>> elapsed, total = add(1, 2)
    """

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        elapsed = time.perf_counter() - start
        return (elapsed, *result) if isinstance(result, tuple) else (elapsed, result)

    return timed


def SPST(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: keep OpenCV single-threaded (and OpenCL off) in the wrapped call; no-op without cv2.

    Data workers that each let cv2 start a thread per core oversubscribe the CPU.
    """

    @functools.wraps(fn)
    def single_threaded(*args: Any, **kwargs: Any) -> Any:
        cv2: Any = sys.modules.get("cv2")
        if cv2 is None:
            with contextlib.suppress(ImportError):
                cv2 = importlib.import_module("cv2")
        if cv2 is not None:
            cv2.setNumThreads(0)
            cv2.ocl.setUseOpenCL(False)
        return fn(*args, **kwargs)

    return single_threaded


def destine(seed: int) -> None:
    """Seed ``random``, ``numpy.random`` and, when installed, torch on CPU and every CUDA device.

    A Tank draws its default seed from ``random``, so this also fixes the data order.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"'seed' must be an int (got {type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"'seed' must be >= 0 (got {seed})")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # also seeds every CUDA device, lazily


def hotvec2mtx(labels: Sequence[Any], nclasses: int, on_value: float = 1, off_value: float = 0) -> np.ndarray:
    """Turn labels into a float32 ``B×nclasses`` multi-hot matrix.

    Each label is an int, a list of ints, or a comma-separated string such as ``'1,3'``.

    Raises:
        TypeError: ``nclasses`` is not an int.
        ValueError: ``nclasses`` < 1, a class index outside ``[0, nclasses)`` or an unparsable string.
    """
    positive_int("nclasses", nclasses)
    matrix = np.full((len(labels), nclasses), off_value, dtype=np.float32)
    for row, label in enumerate(labels):
        if isinstance(label, str):
            try:
                indices = [int(part) for part in label.split(",") if part.strip()]
            except ValueError:
                raise ValueError(f"label {row} ({label!r}) is not a comma-separated list of ints") from None
        elif isinstance(label, Iterable):
            indices = [int(v) for v in label]
        else:
            indices = [int(label)]
        for index in indices:
            if not 0 <= index < nclasses:
                raise ValueError(f"label {row} has class {index}, outside [0, {nclasses})")
            matrix[row, index] = on_value
    return matrix


def mtx2hotvec(mtx: Any) -> list[list[int]]:
    """Return the non-zero column indices of each row of a (multi-)hot matrix."""
    array = np.asarray(mtx)
    if array.ndim != 2:
        raise ValueError(f"'mtx' must be 2-D (got shape {array.shape})")
    return [np.flatnonzero(row).tolist() for row in array]


def den2spa(arr: Any) -> Any:
    """Dense 2-D array → ``scipy.sparse.coo_matrix`` (needs the ``sparse`` extra)."""
    sparse = require("scipy.sparse", "sparse", "den2spa")
    array = np.asarray(arr)
    if array.ndim != 2:
        raise ValueError(f"'arr' must be 2-D (got shape {array.shape})")
    return sparse.coo_matrix(array)


def spa2den(coo: Any, cols: Any = None, vals: Any = None, shape: Any = None) -> np.ndarray:
    """Sparse → dense ndarray: ``spa2den(coo_matrix)`` or ``spa2den(rows, cols, vals, shape)``."""
    if cols is None and vals is None and shape is None:
        if not hasattr(coo, "toarray"):
            raise TypeError(f"spa2den(coo) expects a scipy sparse matrix (got {type(coo).__name__})")
        return np.asarray(coo.toarray())
    if cols is None or vals is None or shape is None:
        raise TypeError("spa2den takes a sparse matrix, or all of rows, cols, vals and shape")
    sparse = require("scipy.sparse", "sparse", "spa2den")
    return np.asarray(sparse.coo_matrix((vals, (coo, cols)), shape=shape).toarray())


def rand_trunc_norm(mean: float, std: float, shape: Any, cutoff_sigma: float = 2) -> np.ndarray:
    """Float32 normal samples truncated to ``mean ± cutoff_sigma·std`` (rejected values are redrawn).

    Uses ``numpy.random`` (seeded by ``destine``).
    """
    if std < 0 or cutoff_sigma <= 0:
        raise ValueError(f"'std' must be >= 0 and 'cutoff_sigma' > 0 (got {std}, {cutoff_sigma})")
    out = np.random.normal(mean, std, size=shape)
    if std > 0:
        bad = np.abs(out - mean) > cutoff_sigma * std
        while bad.any():
            out[bad] = np.random.normal(mean, std, size=int(bad.sum()))
            bad = np.abs(out - mean) > cutoff_sigma * std
    return out.astype(np.float32)


def parse_cfg(path: str | os.PathLike[str]) -> Any:
    """Load a JSON configuration file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def record_cfg(path: str | os.PathLike[str], config: Any, overwrite: bool = True) -> str:
    """Write ``config`` as JSON (indent 4) atomically; return the path written.

    With ``overwrite=False`` and an existing file, ``_`` is inserted before ``.json`` until
    the name is free (``cfg.json`` → ``cfg_.json`` → ``cfg__.json``).
    """
    target = os.fspath(path)
    if not overwrite:
        stem, ext = os.path.splitext(target)
        while os.path.exists(target):
            stem += "_"
            target = stem + ext
    text = json.dumps(config, indent=4)
    tmp = f"{target}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return target


def ver2num(version: str, vbits: int = 2) -> int:
    """Turn a version string into a comparable int (each release part takes ``vbits`` decimal digits).

    ``ver2num('2.13.0') == 21300`` with ``vbits=2``; pre/post/local parts are ignored.
    """
    match = re.fullmatch(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?([.+-]?[0-9A-Za-z.+-]*)\s*", str(version))
    if match is None:
        raise ValueError(f"{version!r} is not a version string")
    release = tuple(int(g) for g in match.groups()[:3] if g is not None)
    number = 0
    for part in (*release, 0, 0)[:3]:
        if part >= 10**vbits:
            raise ValueError(f"version part {part} of {version!r} does not fit in {vbits} digits")
        number = number * 10**vbits + part
    return number


def sprawl(root: Any, max_depth: int = 3, *, file: Any = None) -> str:
    """Print and return a tree: a directory's contents, or an object's public attributes."""
    lines: list[str] = []

    def walk_dir(path: str, prefix: str, depth: int) -> None:
        entries = sorted(os.listdir(path))
        for k, name in enumerate(entries):
            last = k == len(entries) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{name}")
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full) and depth < max_depth:
                walk_dir(full, prefix + ("    " if last else "│   "), depth + 1)

    def walk_obj(obj: Any, prefix: str, depth: int, seen: set[int]) -> None:
        names = [n for n in sorted(vars(obj)) if not n.startswith("_")] if hasattr(obj, "__dict__") else []
        for k, name in enumerate(names):
            last = k == len(names) - 1
            value = getattr(obj, name)
            lines.append(f"{prefix}{'└── ' if last else '├── '}{name}: {type(value).__name__}")
            if hasattr(value, "__dict__") and id(value) not in seen and depth < max_depth:
                walk_obj(value, prefix + ("    " if last else "│   "), depth + 1, seen | {id(value)})

    if isinstance(root, str | os.PathLike) and os.path.isdir(root):
        lines.append(os.fspath(root))
        walk_dir(os.fspath(root), "", 1)
    else:
        lines.append(type(root).__name__)
        walk_obj(root, "", 1, {id(root)})
    text = "\n".join(lines)
    print(text, file=file)
    return text
