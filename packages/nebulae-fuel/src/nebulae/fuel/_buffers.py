"""Batch buffers in this process: bump allocation of aligned arrays, reused buffers, and leases that hand a
buffer back when the last array of its batch is gone."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from ._build import BatchBuilder
from ._collate import ALIGN, aligned, materialise, plan_nbytes


class Lease:
    """Alive while any array of one delivered batch is; then hands its buffer back."""

    __slots__ = ("__weakref__", "key", "release")

    def __init__(self, release: Any, key: Any) -> None:
        self.release = release
        self.key = key

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release(self.key)


class _Holder:
    """Exposes a region of a buffer to NumPy while keeping the batch's lease alive."""

    __slots__ = ("__array_interface__", "lease")


def array_view(
    ptr: int, offset: int, shape: tuple[int, ...], dtype: np.dtype, lease: Lease, keep: Any
) -> np.ndarray:
    holder: Any = _Holder()
    holder.__array_interface__ = {
        "data": (ptr + offset, False),
        "shape": tuple(shape),
        "typestr": np.dtype(dtype).str,
        "version": 3,
    }
    holder.lease = (lease, keep)
    return np.asarray(holder)


class BumpAlloc:
    """Carves aligned arrays out of one buffer, recording where each went."""

    def __init__(self, ptr: int, capacity: int, lease: Lease | None, keep: Any) -> None:
        self.ptr, self.capacity, self.lease, self.keep = ptr, capacity, lease, keep
        self.offset = 0
        self.placed: dict[int, tuple[int, tuple[int, ...], str]] = {}

    def __call__(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.offset + nbytes > self.capacity:
            raise RuntimeError("batch buffer overflow (plan size changed while collating)")
        off = self.offset
        self.offset += aligned(nbytes)
        if self.lease is None:
            arr = (
                np.frombuffer(self.keep, dtype=np.uint8, count=nbytes, offset=off).view(dtype).reshape(shape)
            )
        else:
            arr = array_view(self.ptr, off, shape, np.dtype(dtype), self.lease, self.keep)
        self.placed[id(arr)] = (off, tuple(shape), np.dtype(dtype).str)
        return arr


class BufferPool:
    """Reused NumPy buffers for batches built in this process (no page faults on the hot path)."""

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def acquire(self, nbytes: int) -> np.ndarray:
        with self._lock:
            # by position, not list.remove: == on arrays compares elements (and broadcasts)
            fits = [k for k, b in enumerate(self._free) if b.nbytes >= nbytes]
            if fits:
                return self._free.pop(min(fits, key=lambda k: self._free[k].nbytes))
        return np.empty(max(nbytes, ALIGN) + nbytes // 8, dtype=np.uint8)

    def release(self, buf: np.ndarray) -> None:
        with self._lock:
            self._free.append(buf)
            if len(self._free) > 16:
                self._free.sort(key=lambda b: b.nbytes)
                del self._free[0]

    def build(
        self, builder: BatchBuilder, key: tuple[int, int], indices: np.ndarray, globals_too: bool
    ) -> Any:
        """Build batch `key` into a buffer of this pool (large arrays streamed in as items are made)."""
        sink = _PoolSink(self)
        tree = builder.build(key[0], key[1], indices, globals_too=globals_too, sink=sink)
        if sink.alloc is not None:
            return materialise(tree, sink.alloc)
        return self.deliver(tree)

    def deliver(self, tree: Any) -> Any:
        nbytes = plan_nbytes(tree)
        if nbytes == 0:
            return materialise(tree)
        buf = self.acquire(nbytes)
        lease = Lease(self.release, buf)
        return materialise(tree, BumpAlloc(buf.ctypes.data, buf.nbytes, lease, buf))


class _PoolSink:
    """A BufferPool buffer opened for one batch while it is built (see BatchBuilder.build)."""

    def __init__(self, pool: BufferPool) -> None:
        self.pool = pool
        self.alloc: BumpAlloc | None = None

    def open(self, nbytes: int) -> BumpAlloc:
        buf = self.pool.acquire(nbytes)
        lease = Lease(self.pool.release, buf)
        self.alloc = BumpAlloc(buf.ctypes.data, buf.nbytes, lease, buf)
        return self.alloc

    def abort(self) -> None:
        self.alloc = None  # the buffer returns to the pool when its last view goes
