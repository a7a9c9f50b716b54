"""A small text progress bar with rate and ETA (no tqdm dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Count/total, a bar, items per second and ETA, redrawn at most every 0.2 s on stderr."""

    def __init__(self, total: int, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.count = 0
        self.skipped = 0  # rows left out (on_error='skip'), shown once there are any
        self.start = time.perf_counter()
        self._last = 0.0
        self._drawn = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.perf_counter()
        interval = 0.2 if self._tty else 5.0
        if now - self._last >= interval or self.count >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = self.count
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        left = (self.total - self.count) / rate if rate > 0 else float("inf")
        frac = self.count / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        eta = f"{left:5.0f}s" if left != float("inf") else "    ?"
        line = f"{self.label} {self.count}/{self.total} [{bar:<24}] {rate:8.1f}/s ETA {eta}"
        if self.skipped:
            line += f" skipped {self.skipped}"
        self.stream.write(("\r" + line) if self._tty else (line + "\n"))
        self.stream.flush()

    def close(self, message: str | None = None) -> None:
        if not self.enabled:
            return
        if self._drawn != self.count:
            self._draw(time.perf_counter())
        if self._tty:
            self.stream.write("\n")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()
