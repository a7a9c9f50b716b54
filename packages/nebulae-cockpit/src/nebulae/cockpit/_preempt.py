"""Signals a scheduler sends before it kills a job, turned into a flag the training loop reads."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

__all__ = ["DEFAULT_SIGNALS", "Preempted", "Preemption", "checked_signals"]

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # SIGUSR1: what SLURM's --signal sends by default


def checked_signals(signals: Any) -> tuple[signal.Signals, ...]:
    if isinstance(signals, int):
        signals = (signals,)
    if not isinstance(signals, Iterable) or isinstance(signals, str):
        raise TypeError(f"'signals' must be a signal or a tuple of signals (got {signals!r})")
    chosen = []
    for value in signals:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"'signals' must hold signal numbers such as signal.SIGTERM (got {value!r})")
        try:
            chosen.append(signal.Signals(value))
        except ValueError:
            raise ValueError(f"'signals': {value} is not a signal of this platform") from None
    if not chosen:
        raise ValueError("'signals' must name at least one signal, e.g. (signal.SIGTERM,)")
    return tuple(dict.fromkeys(chosen))


class Preempted(SystemExit):
    """The run stopped for a preemption signal after writing its checkpoint; ``code`` is the exit status.

    A Multiverse whose ranks all end this way exits with that status instead of reporting a failure.
    """


class Preemption:
    """Installs flag-setting handlers for ``signals`` and restores the previous ones on :meth:`restore`.

    The handler only records the signal: the loop finishes its step, checkpoints and exits by itself.
    """

    def __init__(self, signals: Any, exit_code: int | None) -> None:
        if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
            raise TypeError(f"'exit_code' must be an int or None (128 + the signal) (got {exit_code!r})")
        if exit_code is not None and not 0 <= exit_code <= 255:
            raise ValueError(f"'exit_code' must be in 0..255, an exit status (got {exit_code})")
        self.signals = checked_signals(signals)
        self.exit_code = exit_code
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "preemption handling installs signal handlers, which only the main thread may do; "
                "enter tm.preemptible() in the main thread of the process"
            )
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def restore(self) -> None:
        while self._previous:
            sig, handler = self._previous.popitem()
            signal.signal(sig, handler)

    @property
    def status(self) -> int:
        """The exit status to end with: the chosen one, else 128 + the signal, as a shell reports a kill."""
        if self.exit_code is not None:
            return self.exit_code
        return 128 + int(self.received or signal.SIGTERM)
