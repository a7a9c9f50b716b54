"""Parallel, ordered, bounded-memory encoding of image rows in packing worker processes."""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing as mp
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ._image import EncodeSpec, ImageError, encode_image


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: only the parent decides how to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def encode_rows(rows: list[tuple[int, Any]], spec: EncodeSpec) -> list[Any]:
    """Encode a chunk of rows; a failure comes back as ('error', row_position, message)."""
    out: list[Any] = []
    for pos, ref in rows:
        try:
            if isinstance(ref, list):
                out.append([encode_image(p, spec) for p in ref])
            else:
                out.append(encode_image(ref, spec))
        except ImageError as exc:
            return [("error", pos, str(exc))]
        except Exception as exc:
            # anything else a codec raises must still name the row and file, and must not end the worker (whose
            # death the parent could only report as "a worker died")
            shown = ", ".join(map(str, ref)) if isinstance(ref, list) else str(ref)
            return [("error", pos, f"{shown!r} could not be processed ({type(exc).__name__}: {exc})")]
    return out


@contextlib.contextmanager
def main_unreachable(hide: bool = True) -> Iterator[None]:
    """Start children without re-running the user's main script.

    spawn and forkserver children import `__main__` from its path, which re-runs a script that lacks an
    `if __name__ == "__main__":` guard (as the brochure's examples do) and makes its Tank or generate() start
    processes again. Our workers need nothing from `__main__` unless the user's callables live there, so while
    children start, `__main__` shows neither `__file__` nor `__spec__`.
    """
    main = sys.modules.get("__main__")
    if not hide or main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    with _MAIN_LOCK:
        try:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


_MAIN_LOCK = threading.Lock()


def uses_main(*fns: Any) -> bool:
    """Whether any of these callables is defined in `__main__` (children then need the main script)."""
    main = sys.modules.get("__main__")
    for fn in fns:
        name = getattr(fn, "__module__", None) if fn is not None else None
        # in a spawned child the script runs as __mp_main__ (aliased to __main__)
        if name in ("__main__", "__mp_main__") or (name is not None and sys.modules.get(name) is main):
            return True
    import pickle

    try:
        blob = pickle.dumps(fns)  # catches partials and objects that refer to main-defined functions
    except Exception:
        return False
    return b"__main__" in blob or b"__mp_main__" in blob


# imported once by the fork server, so that each worker forked from it starts with them loaded (~0.2 s of imports
# per worker otherwise, paid again by every generate() and Tank)
FORKSERVER_PRELOAD = (
    f"{__package__}._pack",
    f"{__package__}._workers",
    "PIL.Image",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
)


def mp_context() -> Any:
    """forkserver where available (never plain fork with open HDF5 handles), else spawn.

    Adds fuel's worker modules to the fork server's preload list, keeping whatever the program set; it takes
    effect only if the fork server has not started yet.
    """
    methods = mp.get_all_start_methods()
    if "forkserver" not in methods:
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    current = list(getattr(server, "_preload_modules", ["__main__"]))
    missing = [m for m in FORKSERVER_PRELOAD if m not in current]
    if missing:
        ctx.set_forkserver_preload(current + missing)
    return ctx


def start_forkserver() -> None:
    """Start the fork server now, if it is the start method: it imports the preloaded modules in the background
    while the caller goes on (parsing the CSV), instead of while the first workers are awaited."""
    ctx = mp_context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    with main_unreachable():
        forkserver.ensure_running()


def start_worker(ctx: Any, target: Any, *args: Any) -> tuple[Any, Any]:
    """Start daemon process `target(conn, *args)`; return (process, the parent's end of its pipe)."""
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    child.close()  # the child's end lives in the child only: its death closes the pipe
    return proc, parent


def reap(proc: Any, grace: float = 5.0) -> None:
    """Wait `grace` seconds for a worker to exit, then terminate it, then kill it."""
    proc.join(timeout=grace)
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=grace)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _encode_worker(conn: Any, spec: EncodeSpec) -> None:
    """A packing worker: encode each chunk received on its own pipe and send the results back, in order."""
    _ignore_sigint()
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        if chunk is None:
            break
        try:
            conn.send(encode_rows(chunk, spec))
        except OSError:
            break  # the parent is gone (BrokenPipeError): nobody to report to


class RowEncoder:
    """Yield encoded rows in order, with `nworker` processes each fed through a pipe of its own.

    Not `multiprocessing.Pool`: its workers share one task queue whose lock an idle worker holds while it waits,
    so a worker killed there (the out-of-memory killer) leaves `terminate()` and every other worker blocked
    forever, and a killed busy worker's chunk is never finished either; its maintenance thread also wakes on
    every result until the result thread reads it (~0.2 ms of parent CPU per image, measured). Here a dead
    worker is a RuntimeError naming it, and stopping never waits on a lock a worker holds.
    """

    def __init__(self, nworker: int, spec: EncodeSpec, chunk: int = 8) -> None:
        self.nworker = nworker
        self.spec = spec
        self.chunk = chunk
        self.procs: list[Any] = []
        self.conns: list[Any] = []

    def __enter__(self) -> RowEncoder:
        if self.nworker > 1:
            ctx = mp_context()
            try:
                with main_unreachable():
                    for _ in range(self.nworker):
                        proc, conn = start_worker(ctx, _encode_worker, self.spec)
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
                yield encode_rows(chunk, self.spec)
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
