"""Terminal helpers: ANSI codes, width-aware clipping and a line relay for redirected output."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TextIO

__all__ = ["CLEAR_DOWN", "HIGHLIGHT", "RESET", "LineRelay", "clip", "up", "visible_len"]

CLEAR_DOWN = "\x1b[J"  # erase from the cursor to the end of the screen
HIGHLIGHT = "\x1b[43m"  # yellow background
RESET = "\x1b[0m"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def up(n: int) -> str:
    """ANSI cursor-up by `n` lines, back to column 0."""
    return f"\x1b[{n}A\r" if n > 0 else "\r"


def visible_len(text: str) -> int:
    """Length of `text` as shown, ANSI sequences excluded."""
    return len(_ANSI.sub("", text))


def clip(text: str, width: int) -> str:
    """Cut `text` to `width` visible characters, keeping ANSI sequences intact (a terminal wraps longer lines,
    which would break redrawing in place)."""
    if len(text) <= width or visible_len(text) <= width:
        return text
    out, shown, pos = [], 0, 0
    for match in _ANSI.finditer(text):
        chunk = text[pos : match.start()]
        take = chunk[: max(0, width - shown)]
        out.append(take)
        shown += len(take)
        out.append(match.group())
        pos = match.end()
    out.append(text[pos:][: max(0, width - shown)])
    return "".join(out) + RESET


class LineRelay(io.TextIOBase):
    """A text stream that hands each complete line to `sink`, so that prints go above the board."""

    def __init__(self, sink: Callable[[str], None], original: TextIO) -> None:
        super().__init__()
        self._sink = sink
        self._original = original
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            self._sink(line)
        return len(text)

    def drain(self) -> None:
        """Pass on a last line that has no newline."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._sink(line)
