"""A short training loop seen in a real terminal (tmux) and piped to a file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

LOOP = """
import sys, time
from pathlib import Path
from nebulae.aerolog import DashBoard

pause_file = Path(sys.argv[2]) if len(sys.argv) > 2 else None
board = DashBoard(sys.argv[1], divisor=5, refresh=0 if pause_file else None)
for e in range(2):
    for m in range(20):
        board.gauge({"loss": 1.0 / (m + 1 + 20 * e), "acc": m / 20}, m, e, 20, "TRAIN", duration=0.01)
        if e == 0 and m == 5:
            with board.redirect():
                print("checkpoint saved at mile", m + 1)
        if pause_file and e == 1 and m == 10:
            pause_file.write_text("paused")
            deadline = time.time() + 30
            while pause_file.read_text() == "paused" and time.time() < deadline:
                time.sleep(0.05)
print("DONE")
"""

ESCAPES = re.compile(r"\x1b|\[\d*[ABJK]|\[\d+;?\d*m")


def wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the loop under test did not get there in time")
        time.sleep(0.05)


@pytest.fixture
def loop_script(tmp_path: Path) -> Path:
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    return script


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_terminal_shows_bar_curve_and_summaries_without_stray_codes(
    tmp_path: Path, loop_script: Path
) -> None:
    socket = f"aerolog-test-{os.getpid()}"
    pause, done = tmp_path / "pause", tmp_path / "done"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    command = f"{sys.executable} {loop_script} {tmp_path / 'logs'} {pause}; touch {done}; sleep 60"
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    for name in ("TMUX", "COLUMNS", "LINES"):  # COLUMNS would override the pane's width
        env.pop(name, None)

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "board"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    subprocess.run([*tmux, "-u", "new-session", "-d", "-s", "board", "-x", "150", "-y", "40", command],
                   env=env, check=True, timeout=10)  # fmt: skip
    try:
        wait_for(lambda: pause.exists() and pause.read_text() == "paused")
        middle = screen()
        pause.write_text("go")
        wait_for(done.exists)
        end = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
    assert not ESCAPES.search(middle) and not ESCAPES.search(end)
    # mid-run: the first epoch's summary, then the live curve and the bar of the second epoch
    assert "| 1st Epoch ✇ 20 Miles ⧲ " in middle
    assert middle.splitlines()[0] == "checkpoint saved at mile 6"  # printed above the board, not over it
    assert "TRAIN:loss ^" in middle
    assert "| 2nd Epoch ✇ 11/20 Miles ⊰⟦" in middle and "| TRAIN | loss ➠ 0.0323 | acc ➠ 0.5000 |" in middle
    curve = middle[middle.index("TRAIN:loss ^") :].splitlines()
    assert re.match(r" +\d+\.\d{3} \|[_/\\| ]+$", curve[1])
    assert curve[6].startswith("           +----+")
    assert middle.count("Miles ⊰⟦") == 1  # redrawn in place, not scrolled
    # at the end: both summaries, then the user's output below them
    lines = [x for x in end.splitlines() if x.strip()]
    assert lines[-1] == "DONE"
    assert lines[-3].startswith("| 2nd Epoch ✇ 40 Miles ⧲ ")
    assert "Miles ⊰⟦" not in end


def test_piped_output_is_plain_lines(tmp_path: Path, loop_script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(loop_script), str(tmp_path / "logs")],
        capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )  # fmt: skip
    out = result.stdout
    assert not ESCAPES.search(out) and "\r" not in out
    lines = out.splitlines()
    assert lines[0].startswith("| 1st Epoch ✇ 1/20 Miles ⊰⟦--------------------⟧⊱ ⧲ 0.010s/mile | TRAIN |")
    assert [x for x in lines if "Miles ⊰⟦" in x] == [lines[0]]  # throttled to one line per 10 s
    assert [x.split(" ⧲")[0] for x in lines if "s/epoch" in x] == [
        "| 1st Epoch ✇ 20 Miles",
        "| 2nd Epoch ✇ 40 Miles",
    ]
    assert lines[1] == "checkpoint saved at mile 6"
    assert lines[-1] == "DONE"
