"""Checkpoint writes off the training loop: a host copy of the state, then one background writer thread."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["BackgroundWriter", "host_copy"]


def host_copy(obj: Any) -> Any:
    """``obj`` with every tensor copied to CPU memory, so training may change the originals meanwhile."""
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach()
        return tensor.clone() if tensor.device.type == "cpu" else tensor.to("cpu")
    if isinstance(obj, dict):
        return type(obj)((key, host_copy(value)) for key, value in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(host_copy(value) for value in obj)
    return obj


class BackgroundWriter:
    """Runs one write at a time in a thread; a failure is raised by the next :meth:`submit` or :meth:`wait`."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._registered = False

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Callable[[], None]) -> None:
        """Wait for the previous write (raising its error), then start ``job`` in a new thread."""
        self.wait()
        if not self._registered:
            # The thread is not a daemon, so the interpreter waits for it anyway; this surfaces its error.
            atexit.register(self.wait)
            self._registered = True

        def run() -> None:
            try:
                job()
            except BaseException as exc:  # handed to the training thread, which re-raises it
                self._error = exc

        self._thread = threading.Thread(target=run, name="nebulae-checkpoint-writer")
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise the exception it ended with, once."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush, and stop flushing at interpreter exit."""
        try:
            self.wait()
        finally:
            if self._registered:
                atexit.unregister(self.wait)
                self._registered = False
