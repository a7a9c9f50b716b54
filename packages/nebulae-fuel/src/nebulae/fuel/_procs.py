"""Process plumbing shared by the packer's and Tank's workers: start method, fork server, starting and reaping
children, and whether callables can be sent to them."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import pickle
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ._compat import forkserver_preload

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
    current = forkserver_preload()
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


_MAIN_LOCK = threading.Lock()


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


def _reach(fns: tuple[Any, ...]) -> str:
    """How callables travel to a child: 'ok', 'main' (they need the main script), or 'unpicklable'."""
    main = sys.modules.get("__main__")
    for fn in fns:
        name = getattr(fn, "__module__", None) if fn is not None else None
        # in a spawned child the script runs as __mp_main__ (aliased to __main__)
        if name in ("__main__", "__mp_main__") or (name is not None and sys.modules.get(name) is main):
            return "main"
    try:
        blob = pickle.dumps(fns)  # catches partials and objects that refer to main-defined functions
    except Exception:
        return "unpicklable"  # lambdas, local functions
    return "main" if b"__main__" in blob or b"__mp_main__" in blob else "ok"


def uses_main(*fns: Any) -> bool:
    """Whether any of these callables is defined in `__main__` (children then need the main script)."""
    return _reach(fns) == "main"


def process_safe(*fns: Any) -> bool:
    """Whether process workers can take these callables without re-running the main script.

    Callables defined in `__main__` would make every worker re-import the script, which re-runs scripts
    without an `if __name__ == "__main__":` guard; lambdas and local functions do not pickle at all.
    """
    return _reach(fns) == "ok"


def ignore_sigint() -> None:
    """In a worker: Ctrl-C reaches the whole process group, and only the parent decides how to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
