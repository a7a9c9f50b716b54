"""Parallel, ordered, bounded-memory work on packed rows (image encoding, a user's sample function) in worker
processes, and what becomes of a row that failed."""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._image import EncodeSpec, ImageError, encode_image
from ._procs import ignore_sigint, main_unreachable, mp_context, reap, start_worker

if TYPE_CHECKING:
    from ._csv import Table  # worker processes import this module: only what they use


class RowError(NamedTuple):
    """A row that could not be encoded, in place of its result: why (one word) and the full message."""

    reason: str
    message: str


def encode_rows(rows: list[tuple[int, Any]], spec: EncodeSpec) -> list[Any]:
    """Encode a chunk of rows; a row that fails comes back as a RowError in its place."""
    out: list[Any] = []
    for _, ref in rows:
        try:
            if isinstance(ref, list):
                out.append([encode_image(p, spec) for p in ref])
            else:
                out.append(encode_image(ref, spec))
        except ImageError as exc:
            out.append(RowError(exc.reason, str(exc)))
        except Exception as exc:
            # anything else a codec raises must still name the row and file, and must not end the worker (whose
            # death the parent could only report as "a worker died")
            shown = ", ".join(map(str, ref)) if isinstance(ref, list) else str(ref)
            out.append(RowError("failed", f"{shown!r} could not be processed ({type(exc).__name__}: {exc})"))
    return out


def map_samples(rows: list[tuple[int, Any]], fn: Any) -> list[Any]:
    """`fn` over a chunk of inputs; an input whose call raises comes back as a RowError in its place."""
    out: list[Any] = []
    for _, item in rows:
        try:
            out.append(fn(item))
        except Exception as exc:
            out.append(RowError("failed", f"{type(exc).__name__}: {exc}"))
    return out


Work = Callable[[list[tuple[int, Any]], Any], list[Any]]


def _encode_worker(conn: Any, spec: Any, work: Work = encode_rows) -> None:
    """A packing worker: run `work` on each chunk received on its own pipe and send the results back, in order."""
    ignore_sigint()
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        if chunk is None:
            break
        try:
            conn.send(work(chunk, spec))
        except OSError:
            break  # the parent is gone (BrokenPipeError): nobody to report to


class RowEncoder:
    """Yield encoded rows in order, with `nworker` processes each fed through a pipe of its own.

    `work(chunk, spec)` processes a chunk of (position, input) pairs: `encode_rows` (images, `spec` an EncodeSpec)
    or `map_samples` (`spec` the user's function).

    Not `multiprocessing.Pool`: its workers share one task queue whose lock an idle worker holds while it waits,
    so a worker killed there (the out-of-memory killer) leaves `terminate()` and every other worker blocked
    forever, and a killed busy worker's chunk is never finished either; its maintenance thread also wakes on
    every result until the result thread reads it (~0.2 ms of parent CPU per image, measured). Here a dead
    worker is a RuntimeError naming it, and stopping never waits on a lock a worker holds.
    """

    def __init__(self, nworker: int, spec: Any, chunk: int = 8, work: Work = encode_rows) -> None:
        self.nworker = nworker
        self.spec = spec
        self.chunk = chunk
        self.work = work
        self.procs: list[Any] = []
        self.conns: list[Any] = []

    def __enter__(self) -> RowEncoder:
        if self.nworker > 1:
            ctx = mp_context()
            try:
                with main_unreachable():
                    for _ in range(self.nworker):
                        proc, conn = start_worker(ctx, _encode_worker, self.spec, self.work)
                        self.procs.append(proc)
                        self.conns.append(conn)
            except BaseException:
                self._stop(clean=False)
                raise
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop(clean=exc_type is None)

    def _stop(self, clean: bool) -> None:
        """Ask the workers to finish (clean) or terminate them, then reap them."""
        for proc, conn in zip(self.procs, self.conns, strict=True):
            with contextlib.suppress(OSError, ValueError):
                if clean:
                    conn.send(None)
                else:
                    proc.terminate()
        for proc in self.procs:
            reap(proc)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []

    def run(self, refs: list[Any]) -> Iterator[list[Any]]:
        """Yield lists of results, chunk by chunk, in the order of `refs`."""
        # each worker's first chunk is small, so that results (and the writer) start early
        starts = list(range(0, min(len(refs), 2 * self.nworker), 2))
        starts += list(range(starts[-1] + 2 if starts else 0, len(refs), self.chunk))
        bounds = [*starts, len(refs)]
        chunks = [[(i, refs[i]) for i in range(a, b)] for a, b in itertools.pairwise(bounds) if b > a]
        if not self.procs:
            for chunk in chunks:
                yield self.work(chunk, self.spec)
            return
        from multiprocessing.connection import wait

        n = len(self.procs)
        window = 3 * n  # chunks sent and not yet yielded
        sent = 0
        owed: list[collections.deque[int]] = [collections.deque() for _ in range(n)]  # per worker, in order
        done: dict[int, list[Any]] = {}
        for k in range(len(chunks)):
            while sent < len(chunks) and sent < k + window:
                w = sent % n
                self._send(w, chunks[sent])
                owed[w].append(sent)
                sent += 1
            while k not in done:
                # read every worker with a result ready, so that none waits on a full pipe
                ready = wait([c for c, o in zip(self.conns, owed, strict=True) if o], timeout=0.5)
                for conn in ready:
                    w = self.conns.index(conn)
                    done[owed[w].popleft()] = self._recv(w)
                if not ready:
                    self._check_alive()
            yield done.pop(k)

    def _send(self, w: int, chunk: list[tuple[int, Any]]) -> None:
        try:
            self.conns[w].send(chunk)
        except OSError:
            self._check_alive()
            raise

    def _recv(self, w: int) -> list[Any]:
        try:
            return self.conns[w].recv()
        except (EOFError, OSError):
            self.procs[w].join(timeout=1)
            self._check_alive()
            raise RuntimeError(f"lost the connection to packing worker process {self.procs[w].pid}") from None

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.exitcode is not None:
                raise RuntimeError(
                    f"a packing worker process (pid {proc.pid}) died with exit code {proc.exitcode} "
                    "(killed, e.g. by the out-of-memory killer, or crashed in an image codec); nothing was written"
                )


def stand_in(error: RowError, table: Table, row: int, spec: EncodeSpec, on_error: str) -> Any:
    """What the writer gets in place of a row that failed: a stand-in that the file's rewrite drops again, or the
    row's error when skipping is off."""
    if on_error != "skip":
        raise ValueError(f"row {table.lines[row]} of {os.path.basename(table.path)}: {error.message}")
    shape = (spec.height, spec.width, spec.channel) if spec.encode == "RAW" else (0,)
    frame = np.zeros(shape, dtype=np.uint8)
    ref = table.columns[0].values[row]
    return [frame] * len(ref) if isinstance(ref, list) else frame


def check_shapes(results: list[Any], spec: EncodeSpec, lines: list[int], first: int, path: str) -> None:
    if spec.encode != "RAW":
        return
    want = (spec.height, spec.width, spec.channel)
    for k, item in enumerate(results):
        for frame in item if isinstance(item, list) else [item]:
            if frame.shape != want:
                raise ValueError(
                    f"row {lines[first + k]} of {os.path.basename(path)}: image shape {frame.shape} != {want}"
                )
