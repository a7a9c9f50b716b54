"""Consoles that report 0 columns or cannot encode the board's symbols: the board still shows, never raises."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from nebulae.aerolog import AerologWarning, DashBoard
from nebulae.aerolog._screen import Screen

LOOP = """
import sys
from nebulae.aerolog import DashBoard

board = DashBoard(sys.argv[1], divisor=4, refresh=0)
for e in range(2):
    for m in range(10):
        board.gauge({"loss": 1.0 / (m + 1 + 10 * e), "λ": 0.5}, m, e, 10, "TRAIN", duration=0.01)
        if m == 3:
            with board.redirect():
                print("saved ✓ checkpoint")
board.write("done ✓")
print("DONE")
"""

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "PYTHONIOENCODING")}
    return {**env, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color", **extra}


def run_in_pty(args: list[str], env: dict[str, str], columns: int) -> tuple[int, bytes]:
    """Run `args` with stdout and stderr on a new pty of `columns` columns; return its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = bytearray()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: the child closed its side of the pty
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=30), bytes(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.fixture
def loop_script(tmp_path: Path) -> Path:
    script = tmp_path / "loop.py"
    script.write_text(LOOP, encoding="utf-8")
    return script


def visible_lines(text: str) -> list[str]:
    """What the screen shows, line by line, without escape codes and carriage returns."""
    return [line for line in ANSI.sub("", text).replace("\r", "").split("\n") if line.strip()]


# ------------------------------------------------------------------ width


def test_a_pty_of_zero_columns_gets_the_80_column_board(tmp_path: Path, loop_script: Path) -> None:
    code, out = run_in_pty([sys.executable, str(loop_script), str(tmp_path / "logs")], child_env(), 0)
    text = out.decode("utf-8")
    assert code == 0, text
    lines = visible_lines(text)
    assert any(x.startswith("| 1st Epoch ✇ 10 Miles ⧲ ") and x.endswith("| λ ➠ 0.5000 |") for x in lines)
    assert any(x.startswith("| 2nd Epoch ✇ 5/10 Miles ⊰⟦") for x in lines)
    assert "TRAIN:loss ^" in text
    assert max(len(x) for x in lines) <= 79


def test_columns_in_the_environment_sets_the_width_of_a_pty(tmp_path: Path, loop_script: Path) -> None:
    env = child_env(COLUMNS="50")
    code, out = run_in_pty([sys.executable, str(loop_script), str(tmp_path / "logs")], env, 120)
    assert code == 0
    lines = visible_lines(out.decode("utf-8"))
    assert max(len(x) for x in lines) == 49
    assert any(x.startswith("| 1st Epoch ✇ 10 Miles ⧲ ") for x in lines)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("reported", "columns", "width"),
    [(0, None, 79), (0, "100", 99), (132, None, 131), (132, "90", 90 - 1), (132, "0", 131), (132, "x", 131)],
)
def test_width_follows_columns_then_the_terminal_then_80(
    monkeypatch, reported: int, columns: str | None, width: int
) -> None:
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((reported, 24)))
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a width that is known (80 included) is not worth a warning
        assert Screen().width(Tty(), 2) == width


def test_columns_in_the_environment_spares_a_stream_without_a_terminal_the_warning(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Screen().width(stream, 1) == 69


# ------------------------------------------------------------------ encoding


@contextlib.contextmanager
def console(encoding: str, errors: str = "strict") -> Iterator[io.BytesIO]:
    """stdout is a console with `encoding`, as Python sets it up for PYTHONIOENCODING."""
    raw, real = io.BytesIO(), sys.stdout
    sys.stdout = wrapper = io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)
    try:
        yield raw
    finally:
        sys.stdout = real
        wrapper.detach()  # keeps `raw` open for the test to read


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "latin-1"])
def test_a_console_without_the_symbols_gets_ascii_ones_and_question_marks(tmp_path, encoding: str) -> None:
    with console(encoding) as raw:
        board = DashBoard(tmp_path)
        for m in range(3):
            board.gauge({"loss": 0.5, "λ": 0.25}, m, 0, 3, "TRAIN", duration=0.01)
        board.write("saved ✓")
    lines = raw.getvalue().decode(encoding).splitlines()
    assert (
        lines[0]
        == "| 1st Epoch * 1/3 Miles <[--------------------]> @ 0.010s/mile | TRAIN | loss = 0.5000 | ? = 0.2500 |"
    )
    assert lines[2].startswith("| 1st Epoch * 3 Miles @ ") and lines[2].endswith(
        "| loss = 0.5000 | ? = 0.2500 |"
    )
    assert lines[1] == "+" + "-" * (len(lines[2]) - 2) + "+"  # the box still fits
    assert lines[-1] == "saved ?"


def test_a_utf8_console_keeps_the_symbols(tmp_path) -> None:
    with console("utf-8") as raw:
        DashBoard(tmp_path).gauge({"λ": 0.25}, 0, 0, 2, "TRAIN")
    text = raw.getvalue().decode("utf-8")
    assert text.startswith("| 1st Epoch ✇ 1/2 Miles ⊰⟦") and "| λ ➠ 0.2500 |" in text


class LyingStream(io.StringIO):
    """Claims UTF-8 but takes only ASCII, as some wrappers of consoles do."""

    encoding = "utf-8"  # type: ignore[assignment]

    def write(self, text: str) -> int:
        text.encode("ascii")
        return super().write(text)


def test_a_stream_that_refuses_text_in_its_own_encoding_gets_ascii(tmp_path, monkeypatch) -> None:
    stream = LyingStream()
    monkeypatch.setattr(sys, "stdout", stream)
    DashBoard(tmp_path).gauge({"loss": 1.0}, 0, 0, 2, "TRAIN")
    assert stream.getvalue().startswith("| 1st Epoch ? 1/2 Miles ??-----")


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_a_child_with_pythonioencoding_trains_to_the_end_on_a_pipe(tmp_path, loop_script, encoding) -> None:
    result = subprocess.run(
        [sys.executable, str(loop_script), str(tmp_path / "logs")],
        capture_output=True, timeout=60, env=child_env(PYTHONIOENCODING=encoding),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(encoding, "replace")
    lines = result.stdout.decode(encoding).splitlines()
    assert lines[0].startswith("| 1st Epoch * 1/10 Miles <[--------------------]> @ 0.010s/mile | TRAIN |")
    assert "saved ? checkpoint" in lines
    assert lines[-3:] == [lines[-3], "done ?", "DONE"] and lines[-3].startswith("+---")
    assert (tmp_path / "logs").is_dir()


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_a_child_with_pythonioencoding_trains_to_the_end_on_a_pty(tmp_path, loop_script, encoding) -> None:
    env = child_env(PYTHONIOENCODING=encoding)
    code, out = run_in_pty([sys.executable, str(loop_script), str(tmp_path / "logs")], env, 120)
    text = out.decode(encoding)
    assert code == 0, text
    lines = visible_lines(text)
    assert any(x.startswith("| 2nd Epoch * 20 Miles @ ") and x.endswith("| ? = 0.5000 |") for x in lines)
    assert any(x.startswith("| 2nd Epoch * 5/10 Miles <[") for x in lines)
    assert "TRAIN:loss ^" in text and lines[-1] == "DONE"
    assert not any(x in text for x in ("✇", "⟦", "➠", "Traceback"))


def test_in_memory_streams_without_an_encoding_keep_the_symbols(tmp_path, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AerologWarning)
        DashBoard(tmp_path).gauge({"loss": 1.0}, 0, 0, 2, "TRAIN")
    assert "✇" in capsys.readouterr().out
