"""Tank's executors: batches built inline, in threads, or in worker processes that return them in shared-memory
slabs."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import os
import pickle
import signal
import traceback
import uuid
from typing import Any

import numpy as np

from ._buffers import BufferPool, Lease, array_view
from ._build import BatchBuilder
from ._collate import materialise, plan_nbytes
from ._procs import exit_status, ignore_sigint, main_unreachable, mp_context, reap, start_worker, uses_main
from ._slabs import SLAB_PREFIX, SlabSink, WorkerSlabs, from_leaves, map_slab, to_leaves, unlink_leftovers


class InlineExecutor:
    """Builds each batch in the calling thread when asked for it."""

    capacity = 1

    def __init__(self, builder: BatchBuilder) -> None:
        self.builder = builder
        self.pool = BufferPool()
        self.tasks: dict[Any, np.ndarray] = {}

    def submit(self, key: tuple[int, int], indices: np.ndarray) -> None:
        self.tasks[key] = indices

    def warm(self, shard: int) -> None:
        self.builder.warm(shard)

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

    def warm(self, shard: int) -> None:
        self.builder.warm(shard)  # the threads share this process's Source

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
    ignore_sigint()
    keep_freed_memory()

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    slabs = WorkerSlabs(tag)
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            if msg[0] == "stop":
                break
            if msg[0] == "warm":
                builder.warm(msg[1])  # no reply: the tasks that follow are answered in order as ever
                continue
            _, task_id, epoch, batch, indices, freed = msg
            slabs.busy.difference_update(freed)
            sink = SlabSink(slabs)
            try:
                tree = builder.build(epoch, batch, indices, globals_too=True, sink=sink)
                if sink.alloc is None:
                    nbytes = plan_nbytes(tree)
                    if nbytes:
                        sink.open(nbytes)
                if sink.alloc is not None:
                    out = to_leaves(materialise(tree, sink.alloc), sink.alloc.placed)
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
            base = map_slab(name)
            self.maps[name] = (base, base.ctypes.data)
            self.names.add(name)
        return self.maps[name]

    def take_freed(self) -> list[str]:
        out = []
        while self.freed:
            out.append(self.freed.popleft())
        return out


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

    def warm(self, shard: int) -> None:
        """Have every worker open shard `shard` and load its column caches now (see `BatchBuilder.warm`)."""
        for worker in self.workers:
            try:
                worker.conn.send(("warm", shard))
            except OSError:
                raise _died(worker) from None

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
        lease = Lease(worker.freed.append, name)
        return from_leaves(
            tree, lambda leaf: array_view(ptr, leaf.offset, leaf.shape, np.dtype(leaf.dtype), lease, keep)
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
            unlink_leftovers(worker.tag)
