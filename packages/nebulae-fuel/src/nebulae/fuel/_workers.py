"""Tank's workers: inline, threads, or processes returning batches through reused shared-memory slabs."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import os
import pickle
import signal
import threading
import traceback
import uuid
from typing import Any

import numpy as np

from ._build import BatchBuilder
from ._collate import ALIGN as _ALIGN
from ._collate import aligned as _aligned
from ._collate import materialise, plan_nbytes
from ._pack import main_unreachable, mp_context, reap, start_worker, uses_main

SLAB_PREFIX = "nebfuel"


class _Lease:
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


def _view(
    ptr: int, offset: int, shape: tuple[int, ...], dtype: np.dtype, lease: _Lease, keep: Any
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


class _BumpAlloc:
    """Carves aligned arrays out of one buffer, recording where each went."""

    def __init__(self, ptr: int, capacity: int, lease: _Lease | None, keep: Any) -> None:
        self.ptr, self.capacity, self.lease, self.keep = ptr, capacity, lease, keep
        self.offset = 0
        self.placed: dict[int, tuple[int, tuple[int, ...], str]] = {}

    def __call__(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.offset + nbytes > self.capacity:
            raise RuntimeError("batch buffer overflow (plan size changed while collating)")
        off = self.offset
        self.offset += _aligned(nbytes)
        if self.lease is None:
            arr = (
                np.frombuffer(self.keep, dtype=np.uint8, count=nbytes, offset=off).view(dtype).reshape(shape)
            )
        else:
            arr = _view(self.ptr, off, shape, np.dtype(dtype), self.lease, self.keep)
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
        return np.empty(max(nbytes, _ALIGN) + nbytes // 8, dtype=np.uint8)

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
        lease = _Lease(self.release, buf)
        return materialise(tree, _BumpAlloc(buf.ctypes.data, buf.nbytes, lease, buf))


class _PoolSink:
    """A BufferPool buffer opened for one batch while it is built (see BatchBuilder.build)."""

    def __init__(self, pool: BufferPool) -> None:
        self.pool = pool
        self.alloc: _BumpAlloc | None = None

    def open(self, nbytes: int) -> _BumpAlloc:
        buf = self.pool.acquire(nbytes)
        lease = _Lease(self.pool.release, buf)
        self.alloc = _BumpAlloc(buf.ctypes.data, buf.nbytes, lease, buf)
        return self.alloc

    def abort(self) -> None:
        self.alloc = None  # the buffer returns to the pool when its last view goes


class InlineExecutor:
    """Builds each batch in the calling thread when asked for it."""

    capacity = 1

    def __init__(self, builder: BatchBuilder) -> None:
        self.builder = builder
        self.pool = BufferPool()
        self.tasks: dict[Any, np.ndarray] = {}

    def submit(self, key: tuple[int, int], indices: np.ndarray) -> None:
        self.tasks[key] = indices

    def result(self, key: tuple[int, int]) -> Any:
        indices = self.tasks.pop(key)
        return self.pool.build(self.builder, key, indices, globals_too=True)

    def discard(self) -> None:
        self.tasks.clear()

    def close(self) -> None:
        self.tasks.clear()
        self.builder.close()


class ThreadExecutor:
    """`nworker` threads sharing this process's file handles; at most 2 batches in flight per thread."""

    def __init__(self, builder: BatchBuilder, nworker: int) -> None:
        self.builder = builder
        self.capacity = 2 * nworker
        self.pool = BufferPool()
        self.executor = cf.ThreadPoolExecutor(nworker, thread_name_prefix="nebulae-tank")
        self.futures: dict[Any, cf.Future[Any]] = {}

    def _run(self, key: tuple[int, int], indices: np.ndarray) -> Any:
        return self.pool.build(self.builder, key, indices, globals_too=False)

    def submit(self, key: tuple[int, int], indices: np.ndarray) -> None:
        self.futures[key] = self.executor.submit(self._run, key, indices)

    def result(self, key: tuple[int, int]) -> Any:
        return self.futures.pop(key).result()

    def discard(self) -> None:
        for fut in self.futures.values():
            fut.cancel()
        self.futures.clear()

    def close(self) -> None:
        self.discard()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.builder.close()


# -- process workers ------------------------------------------------------------------------------------


class _Leaf:
    """Placeholder for an array living in a slab: (offset, shape, dtype)."""

    __slots__ = ("dtype", "offset", "shape")

    def __init__(self, offset: int, shape: tuple[int, ...], dtype: str) -> None:
        self.offset, self.shape, self.dtype = offset, shape, dtype


def _map_tree(tree: Any, fn: Any) -> Any:
    """Rebuild dicts, (plain) tuples and lists with `fn` applied to every other node."""
    if isinstance(tree, dict):
        return {k: _map_tree(v, fn) for k, v in tree.items()}
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_map_tree(v, fn) for v in tree)
    if isinstance(tree, list):
        return [_map_tree(v, fn) for v in tree]
    return fn(tree)


def _swap(tree: Any, placed: dict[int, Any]) -> Any:
    """Replace arrays written into a slab by _Leaf placeholders."""
    return _map_tree(
        tree, lambda x: _Leaf(*placed[id(x)]) if isinstance(x, np.ndarray) and id(x) in placed else x
    )


def _unswap(tree: Any, make: Any) -> Any:
    """Replace _Leaf placeholders by arrays made with `make(leaf)`."""
    return _map_tree(tree, lambda x: make(x) if isinstance(x, _Leaf) else x)


class _WorkerSlabs:
    """The slabs one worker process owns; it alone creates and unlinks them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.slabs: dict[str, Any] = {}
        self.busy: set[str] = set()
        self.views: dict[str, np.ndarray] = {}

    def acquire(self, nbytes: int) -> str:
        from multiprocessing import shared_memory

        free = [n for n in self.slabs if n not in self.busy and self.slabs[n].size >= nbytes]
        if free:
            name = min(free, key=lambda n: self.slabs[n].size)
        else:
            name = f"{self.tag}_{len(self.slabs)}_{uuid.uuid4().hex[:8]}"
            size = max(_aligned(nbytes + nbytes // 8), 1 << 16)
            shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            self.slabs[name] = shm
            self.views[name] = _map_slab(name, shm)
        self.busy.add(name)
        return name

    def cleanup(self) -> None:
        self.views.clear()
        for shm in self.slabs.values():
            shm.close()
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()
        self.slabs.clear()


class _SlabSink:
    """A worker slab opened for one batch while it is built (see BatchBuilder.build)."""

    def __init__(self, slabs: _WorkerSlabs) -> None:
        self.slabs = slabs
        self.name = ""
        self.alloc: _BumpAlloc | None = None

    def open(self, nbytes: int) -> _BumpAlloc:
        self.name = self.slabs.acquire(nbytes)
        self.alloc = _BumpAlloc(0, self.slabs.slabs[self.name].size, None, self.slabs.views[self.name])
        return self.alloc

    def abort(self) -> None:
        self.slabs.busy.discard(self.name)
        self.name, self.alloc = "", None


def _map_slab(name: str, shm: Any = None) -> np.ndarray:
    """A uint8 array over a slab through a mapping of our own, so SharedMemory.close() never meets live views."""
    import mmap
    from multiprocessing import shared_memory

    own = shm is None
    if own:
        shm = shared_memory.SharedMemory(name=name)
    mapped = mmap.mmap(shm._fd, shm.size)
    if own:
        shm.close()
    return np.frombuffer(mapped, dtype=np.uint8)


def keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks for reuse instead of returning them to the OS.

    Per-item arrays (decoded images, float copies made by prep) are a few hundred KB each: by default glibc
    unmaps or trims them on free, and touching fresh pages again costs more than decoding. Only called in
    Tank's own worker processes.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)


def _worker_main(conn: Any, builder: BatchBuilder, tag: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    keep_freed_memory()

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    slabs = _WorkerSlabs(tag)
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            if msg[0] == "stop":
                break
            _, task_id, epoch, batch, indices, freed = msg
            slabs.busy.difference_update(freed)
            sink = _SlabSink(slabs)
            try:
                tree = builder.build(epoch, batch, indices, globals_too=True, sink=sink)
                if sink.alloc is None:
                    nbytes = plan_nbytes(tree)
                    if nbytes:
                        sink.open(nbytes)
                if sink.alloc is not None:
                    out = _swap(materialise(tree, sink.alloc), sink.alloc.placed)
                else:
                    out = materialise(tree)
                conn.send(("ok", task_id, sink.name, out))
            except Exception as exc:
                sink.abort()  # not delivered: the slab is free again
                text = traceback.format_exc()
                try:
                    payload = pickle.dumps(exc)
                except Exception:
                    payload = None
                conn.send(("err", task_id, payload, text))
    finally:
        slabs.cleanup()
        builder.close()


class _Worker:
    """Parent-side handle of one worker process."""

    def __init__(self, ctx: Any, builder: BatchBuilder, index: int) -> None:
        self.tag = f"{SLAB_PREFIX}_{os.getpid()}_{index}_{uuid.uuid4().hex[:6]}"
        self.proc, self.conn = start_worker(ctx, _worker_main, builder, self.tag)
        self.freed: collections.deque[str] = collections.deque()
        self.maps: dict[str, tuple[Any, int]] = {}
        self.names: set[str] = set()

    def attach(self, name: str) -> tuple[Any, int]:
        if name not in self.maps:
            base = _map_slab(name)
            self.maps[name] = (base, base.ctypes.data)
            self.names.add(name)
        return self.maps[name]

    def take_freed(self) -> list[str]:
        out = []
        while self.freed:
            out.append(self.freed.popleft())
        return out


def exit_status(proc: Any, wait: float = 5.0) -> str:
    """How a child process ended, in words: 'exit code 3', 'killed by SIGKILL'.

    Its pipe closes a moment before the process is reaped: wait up to `wait` seconds for the status, as
    `exitcode` stays None until then.
    """
    proc.join(wait)
    code = proc.exitcode
    if code is None:
        return "exit status unknown: still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _died(worker: _Worker) -> RuntimeError:
    status = exit_status(worker.proc)
    hint = " (the kernel's out-of-memory killer sends SIGKILL)" if status == "killed by SIGKILL" else ""
    return RuntimeError(
        f"Tank worker process {worker.proc.pid} died ({status}){hint}; its batches are lost: close this Tank "
        "and create a new one"
    )


class ProcessExecutor:
    """`nworker` processes (forkserver, else spawn); arrays come back in reused shared-memory slabs."""

    def __init__(self, builder: BatchBuilder, nworker: int) -> None:
        ctx = mp_context()
        self.pid = os.getpid()
        self.capacity = 2 * nworker
        self.workers: list[_Worker] = []
        try:
            with main_unreachable(not uses_main(builder.fetch_fn, builder.prep_fn, builder.collate_fn)):
                for i in range(nworker):
                    self.workers.append(_Worker(ctx, builder, i))
        except BaseException:
            self.close()
            raise
        self.next_worker = 0
        self.owner: dict[Any, tuple[_Worker, int]] = {}
        self.done: dict[int, Any] = {}
        self.task_ids = 0
        self.discarded: set[int] = set()
        self.closed = False

    def submit(self, key: tuple[int, int], indices: np.ndarray) -> None:
        worker = self.workers[self.next_worker]
        self.next_worker = (self.next_worker + 1) % len(self.workers)
        self.task_ids += 1
        try:
            worker.conn.send(
                ("task", self.task_ids, key[0], key[1], np.asarray(indices), worker.take_freed())
            )
        except OSError:
            raise _died(worker) from None
        self.owner[key] = (worker, self.task_ids)

    def _receive(self, worker: _Worker) -> None:
        msg = worker.conn.recv()
        task_id = msg[1]
        if task_id in self.discarded:
            self.discarded.discard(task_id)
            if msg[0] == "ok" and msg[2]:
                worker.freed.append(msg[2])
            return
        self.done[task_id] = msg

    def result(self, key: tuple[int, int]) -> Any:
        worker, task_id = self.owner.pop(key)
        while task_id not in self.done:
            if worker.conn.poll(0.2):
                try:
                    self._receive(worker)
                except (EOFError, OSError):
                    raise _died(worker) from None
            elif not worker.proc.is_alive():
                raise _died(worker)
        msg = self.done.pop(task_id)
        if msg[0] == "err":
            _, _, payload, text = msg
            exc = None
            if payload is not None:
                try:
                    exc = pickle.loads(payload)
                except Exception:
                    exc = None
            if not isinstance(exc, BaseException):
                exc = RuntimeError(f"a Tank worker failed:\n{text}")
            else:
                exc.add_note(f"raised in a Tank worker process:\n{text}")
            raise exc
        _, _, name, tree = msg
        if not name:
            return tree
        keep, ptr = worker.attach(name)
        lease = _Lease(worker.freed.append, name)
        return _unswap(
            tree, lambda leaf: _view(ptr, leaf.offset, leaf.shape, np.dtype(leaf.dtype), lease, keep)
        )

    def discard(self) -> None:
        for _worker, task_id in self.owner.values():
            self.discarded.add(task_id)
        self.owner.clear()
        for task_id, _msg in list(self.done.items()):
            self.done.pop(task_id)
        # results still in flight are drained (and their slabs freed) as they arrive

    def close(self) -> None:
        if getattr(self, "closed", False) or os.getpid() != self.pid:
            return  # in a forked copy, the workers and their slabs are the parent's to stop and remove
        self.closed = True
        for worker in self.workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        for worker in self.workers:
            reap(worker.proc)
            worker.conn.close()
            _unlink_leftovers(worker.tag)


def _unlink_leftovers(tag: str) -> None:
    """Remove slabs a worker could not unlink itself (it was killed)."""
    shm_dir = "/dev/shm"
    if not os.path.isdir(shm_dir):
        return
    for name in os.listdir(shm_dir):
        if name.startswith(tag):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(shm_dir, name))
