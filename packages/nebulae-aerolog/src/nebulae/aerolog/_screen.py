"""The screen side of DashBoard: drawing in place on a terminal, plain lines elsewhere, write() and redirect()."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from ._warnings import AerologWarning

if TYPE_CHECKING:
    from ._notebook import NotebookArea

__all__ = ["HIGHLIGHT", "RESET", "LineRelay", "Screen", "clip", "up", "visible_len"]

CLEAR_DOWN = "\x1b[J"  # erase from the cursor to the end of the screen
HIGHLIGHT = "\x1b[43m"  # yellow background
RESET = "\x1b[0m"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DEFAULT_COLUMNS = 80  # what shutil.get_terminal_size() assumes when a terminal reports no width
# A console that cannot encode the board's symbols (cp1252, ascii) gets ASCII ones of the same length,
# so that widths, clipping and the summary's box stay as computed.
_GLYPHS = "✇⊰⟦⟧⊱⧲➠"
_ASCII_GLYPHS = str.maketrans(_GLYPHS, "*<[]>@=")


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


def _encodable(text: str, encoding: object) -> str:
    """`text` with what `encoding` cannot encode replaced by ``?``, so that drawing never stops training."""
    try:
        return text.encode(encoding, "replace").decode(encoding)  # type: ignore[arg-type]
    except (TypeError, LookupError):  # no usable encoding name: keep to ASCII, which every console takes
        return text.encode("ascii", "replace").decode("ascii")


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


class Screen:
    """Where the board is drawn, and what of it is on screen now.

    On a terminal the board is drawn in place: the cursor is left at its top, `drawn` lines above the
    bottom, so the next frame (or a summary, or a written line) starts by erasing it. In wipe mode a
    single line is rewritten after ``\\r``. Elsewhere lines are only appended.
    """

    def __init__(self) -> None:
        self.real_out: TextIO | None = None  # the real stdout while redirect() is active
        self._stream_seen: object = None
        self._tty = False
        self._ascii = False  # the stream cannot encode _GLYPHS
        self._frame = ""  # the board as last drawn, to restore it after write()
        self._drawn = 0  # lines of that board below the cursor (0: nothing drawn in place)
        self._wiped = 0  # visible length of the line drawn in wipe mode (0: none)
        self._width_warned = False
        self.notebook: NotebookArea | None = None  # the board's output area inside a Jupyter kernel

    def stream(self) -> TextIO:
        return self.real_out if self.real_out is not None else sys.stdout

    def _probe(self, stream: TextIO) -> None:
        """Learn once per stream whether it is a terminal and whether it can encode the board's symbols."""
        self._stream_seen = stream
        if self.notebook is None and "IPython" in sys.modules:  # no kernel without IPython: skip the import
            from ._notebook import NotebookArea, kernel_shell

            shell = kernel_shell()
            self.notebook = None if shell is None else NotebookArea(shell)
        try:
            self._tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self._tty = False
        encoding = getattr(stream, "encoding", None)  # None for in-memory streams, which take any text
        self._ascii = False
        if isinstance(encoding, str):
            try:
                _GLYPHS.encode(encoding)
            except (UnicodeError, LookupError):
                self._ascii = True

    def is_tty(self, stream: TextIO) -> bool:
        if stream is not self._stream_seen:
            self._probe(stream)
        return self._tty

    def width(self, stream: TextIO, nmetrics: int) -> int:
        """Usable columns: the terminal's minus one (writing the last column wraps on some terminals).

        As in ``shutil.get_terminal_size()``, a positive ``COLUMNS`` in the environment wins, and a terminal
        that reports 0 columns (some containers and CI ptys) counts as 80.
        """
        if self.notebook is not None:  # a notebook wraps long lines, nothing needs clipping
            return 1 << 30
        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
        if columns > 0:
            return columns - 1
        try:
            return (os.get_terminal_size(stream.fileno()).columns or _DEFAULT_COLUMNS) - 1
        except (AttributeError, ValueError, OSError):
            if not self._width_warned:
                self._width_warned = True
                warnings.warn(
                    "terminal width unknown; assuming 46 + 12 per metric", AerologWarning, stacklevel=5
                )
            return 46 + 12 * nmetrics - 1

    def _clear(self) -> str:
        """Text that erases the board drawn in place (or the wipe line), leaving the cursor where it began."""
        text = ""
        if self._drawn:
            text = CLEAR_DOWN
        elif self._wiped:
            text = "\r" + " " * self._wiped + "\r"
        self._drawn = self._wiped = 0
        self._frame = ""
        return text

    def _emit(self, stream: TextIO | None, text: str) -> None:
        if stream is None:  # pythonw and some daemons run without a stdout
            return
        if stream is not self._stream_seen:
            self._probe(stream)
        if self._ascii:
            text = text.translate(_ASCII_GLYPHS)
        try:
            stream.write(text)
        except UnicodeEncodeError:  # a metric name or a printed line the console cannot show
            try:
                stream.write(_encodable(text, getattr(stream, "encoding", None)))
            except UnicodeEncodeError:  # the stream does not take the encoding it names
                stream.write(_encodable(text, "ascii"))
        stream.flush()

    def frame(self, stream: TextIO, lines: list[str], width: int, flush: int) -> None:
        """Draw `lines` in place on a terminal, clipped to `width` (or in the notebook's output area)."""
        if self.notebook is not None:
            self.notebook.board(lines)
            return
        self._frame = "\n".join(clip(x, width) for x in lines) + "\n"
        self._drawn = len(lines)
        self._emit(stream, CLEAR_DOWN + self._frame + up(self._drawn + max(0, flush)))

    def wipe(self, stream: TextIO, line: str) -> None:
        """Rewrite the single board line after a carriage return."""
        if self.notebook is not None:
            self.notebook.board([line])
            return
        shown = visible_len(line)
        self._emit(stream, "\r" + line + " " * max(0, self._wiped - shown))
        self._frame, self._wiped = line, shown

    def lines(self, stream: TextIO, text: str) -> None:
        """Erase the board, then print `text` (ending with a newline); the board returns at the next redraw."""
        if self.notebook is not None and stream is not None:
            self.notebook.above(text, keep_board=False)
            return
        self._emit(stream, self._clear() + text)

    def write(self, text: object) -> None:
        """Print `text` above the board and draw the board again below it."""
        stream = self.stream()
        out = str(text)
        if stream is not self._stream_seen:
            self._probe(stream)
        if self.notebook is not None:
            self.notebook.above(out, keep_board=True)
            return
        if not out.endswith("\n"):
            out += "\n"
        if self._drawn:
            out = CLEAR_DOWN + out + self._frame + up(self._drawn)
        elif self._wiped:
            out = "\r" + " " * self._wiped + "\r" + out + self._frame
        self._emit(stream, out)

    def settle(self) -> None:
        """Leave the board on screen and move the cursor below it, so that later output does not overwrite it."""
        if self._drawn or self._wiped:
            self._emit(self.stream(), "\n" * max(1, self._drawn))
            self._drawn = self._wiped = 0
            self._frame = ""

    @contextlib.contextmanager
    def redirect(self) -> Iterator[None]:
        """Route sys.stdout, sys.stderr and root-logger stream handlers on them through write()."""
        import logging  # here only: it costs more to import than all of aerolog

        real_out, real_err, outer = sys.stdout, sys.stderr, self.real_out
        relay_out, relay_err = LineRelay(self.write, real_out), LineRelay(self.write, real_err)
        swaps = {id(real_out): relay_out, id(real_err): relay_err}
        handlers = [
            (h, h.stream)
            for h in logging.getLogger().handlers
            if type(h) is logging.StreamHandler and id(h.stream) in swaps
        ]
        self.real_out = outer if outer is not None else real_out
        sys.stdout, sys.stderr = relay_out, relay_err
        for handler, stream in handlers:
            handler.setStream(swaps[id(stream)])
        try:
            yield
        finally:
            relay_out.drain()
            relay_err.drain()
            sys.stdout, sys.stderr = real_out, real_err
            for handler, stream in handlers:
                handler.setStream(stream)
            self.real_out = outer
