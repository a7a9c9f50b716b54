"""What the board prints: plain lines off a terminal, in-place redraws on one, wipe, write() and redirect()."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator

import pytest

from nebulae.aerolog import AerologWarning, DashBoard

UP = re.compile(r"\x1b\[(\d+)A")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def fake_terminal() -> Iterator[FakeTerminal]:
    """stdout claims to be a terminal of unknown width (the width warning is tested on its own)."""
    screen, real = FakeTerminal(), sys.stdout
    sys.stdout = screen
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AerologWarning)
            yield screen
    finally:
        sys.stdout = real


def test_plain_output_has_no_ansi_codes_one_line_then_every_summary(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)  # off a terminal: at most one line per 10 s
    for e in range(2):
        for m in range(50):
            board.gauge({"loss": 1.0 / (m + 1)}, m, e, 50, "TRAIN", duration=0.25)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    lines = out.splitlines()
    progress = [x for x in lines if "Miles ⊰⟦" in x]
    assert progress == [
        "| 1st Epoch ✇ 1/50 Miles ⊰⟦--------------------⟧⊱ ⧲ 0.250s/mile | TRAIN | loss ➠ 1.0000 |"
    ]
    summaries = [x for x in lines if "s/epoch" in x]
    assert len(summaries) == 2
    assert summaries[1].startswith("| 2nd Epoch ✇ 100 Miles ⧲ ")
    assert summaries[1].endswith("| TRAIN | loss ➠ 0.0900 |")
    assert lines[lines.index(summaries[0]) - 1] == "+" + "-" * (len(summaries[0]) - 2) + "+"


def test_refresh_zero_prints_every_interval(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0)
    for m in range(9):
        board.gauge({"loss": 1.0}, m, 0, 10, "TRAIN", interval=3)
    progress = [x for x in capsys.readouterr().out.splitlines() if "Miles ⊰⟦" in x]
    assert [x.split(" Miles")[0] for x in progress] == [
        "| 1st Epoch ✇ 3/10",
        "| 1st Epoch ✇ 6/10",
        "| 1st Epoch ✇ 9/10",
    ]
    assert "⊰⟦##########----------⟧⊱" in progress[1]  # int(5 / 10 * 20 + 0.4) cells


def test_terminal_redraw_moves_the_cursor_back_over_chart_and_line(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a COLUMNS of the environment would set the width
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", screen)
    board = DashBoard(tmp_path, divisor=4, refresh=0)
    with pytest.warns(AerologWarning, match="terminal width unknown"):
        for m in range(3):
            board.gauge({"loss": float(m), "acc": 0.5}, m, 0, 10, "TRAIN")
    frames = screen.getvalue().split("\x1b[J")[1:]
    assert len(frames) == 3
    last = frames[-1]
    body, moves = last.rsplit("\n", 1)[0], UP.findall(last)
    assert moves == [str(len(body.split("\n")))]
    assert "TRAIN:loss ^" in body and "\x1b[43m" in body  # chart of the first metric; highlighted bar
    assert (
        len(body.split("\n")) == 1 + 4 + 1 + 1
    )  # title, rows, axis, progress line (no ticks under 5 points)


def test_terminal_lines_are_clipped_to_the_fallback_width(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", screen)
    board = DashBoard(tmp_path, refresh=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for m in range(3):
            board.gauge({"a_long_metric_name": 1.0}, m, 0, 10, "TRAIN", plot=False)
    assert len([w for w in caught if issubclass(w.category, AerologWarning)]) == 1
    visible = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\r", "", screen.getvalue())
    assert max(len(x) for x in visible.split("\n")) <= 46 + 12 - 1


def test_wipe_mode_rewrites_one_line_with_carriage_returns(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0)
    for m in range(3):
        board.gauge({"loss": 1.0}, m, 0, 3, "TRAIN", plot=False, wipe=True)
    out = capsys.readouterr().out
    assert out.count("\r| 1st Epoch") == 2
    assert "\x1b" not in out and "s/epoch" in out


def test_write_prints_above_a_terminal_board_and_draws_it_again(tmp_path) -> None:
    with fake_terminal() as screen:
        board = DashBoard(tmp_path, refresh=0)
        board.gauge({"loss": 1.0}, 0, 0, 10, "TRAIN", plot=False)
        before = screen.getvalue()
        board.write("checkpoint saved")
    added = screen.getvalue()[len(before) :]
    assert added.startswith("\x1b[Jcheckpoint saved\n| 1st Epoch ✇ 1/10 Miles")
    assert added.endswith("\x1b[1A\r")


def test_redirect_routes_prints_and_logging_through_write(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    real_out = sys.stdout
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with board.redirect():
            print("hello", end="")
            print(" world")
            logging.getLogger("nebulae-test").warning("careful")
            sys.stderr.write("partial")
            assert handler.stream is sys.stderr
        assert sys.stdout is real_out
        assert handler.stream is sys.stderr
    finally:
        root.removeHandler(handler)
    captured = capsys.readouterr()
    assert captured.out == "hello world\ncareful\npartial\n"
    assert captured.err == ""


def test_track_loop_closes_its_board_so_later_output_starts_below(tmp_path) -> None:
    with fake_terminal() as screen:
        board = DashBoard(tmp_path, refresh=0)
        for _ in board.track(range(5), stage="TRAIN", epoch=0, mpe=10):
            board.gauge({"loss": 1.0}, plot=False)
    assert screen.getvalue().endswith("\x1b[1A\r\n")


def test_in_loop_rotates_the_curve_through_entry_metrics(tmp_path) -> None:
    with fake_terminal() as screen:
        board = DashBoard(tmp_path, refresh=0)
        for m in range(4):
            board.gauge({"loss": 1.0, "acc": 0.5}, m, 0, 10, "TRAIN", in_loop=(0, 1), last_for=2)
    titles = [frame.split(" ^")[0].strip() for frame in screen.getvalue().split("\x1b[J")[1:]]
    assert titles == ["TRAIN:loss", "TRAIN:loss", "TRAIN:acc", "TRAIN:acc"]


def test_a_missing_stdout_is_tolerated(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    board = DashBoard(tmp_path)
    for m in range(2):
        board.gauge({"loss": 1.0}, m, 0, 2, "TRAIN")
    board.write("nowhere to go")
    assert board.read("loss", "TRAIN") == 1.0
