"""Ctrl-C and SIGTERM while generate() writes: stop cleanly, or, while the output is being placed, after it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler installed during generate()."""


_TERM_SEEN = threading.Event()
_INT_SEEN = threading.Event()
_DEFER_SIGNALS = threading.Event()


def check_terminated() -> None:
    """Re-raise a signal whose exception was swallowed (e.g. it landed inside a __del__)."""
    if _TERM_SEEN.is_set():
        raise Terminated()
    if _INT_SEEN.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """A signal arriving inside is only recorded; `check_terminated()` acts on it afterwards."""
    _DEFER_SIGNALS.set()
    try:
        yield
    finally:
        _DEFER_SIGNALS.clear()


def install_handlers() -> Any:
    """Turn SIGTERM into `Terminated` and SIGINT into KeyboardInterrupt (main thread only); returns what to
    give `restore_handlers`."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(signum: int, frame: Any) -> None:
        _TERM_SEEN.set()  # in case the exception lands somewhere that swallows it (a __del__)
        if not _DEFER_SIGNALS.is_set():
            raise Terminated()

    def on_int(signum: int, frame: Any) -> None:
        _INT_SEEN.set()
        if not _DEFER_SIGNALS.is_set():
            raise KeyboardInterrupt

    _TERM_SEEN.clear()
    _INT_SEEN.clear()

    old = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    return old


def restore_handlers(old: Any) -> None:
    if old is None:
        return
    signal.signal(signal.SIGINT, old[0])
    signal.signal(signal.SIGTERM, old[1])
