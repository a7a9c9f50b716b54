"""What a crash inside log() leaves on disk, and what the next run does with it; log folders however spelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nebulae.aerolog import DashBoard

# Epoch 1 is logged, epoch 2 is trained, then log() runs with os.replace wrapped so that the process
# SIGKILLs itself at replace call number argv[2] (0: never), after the temp file of that call was written.
CHILD = """
import os, signal, sys
from nebulae.aerolog import DashBoard

folder, kill_at, gauge = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "png"
board = DashBoard(folder, refresh=1e9)
for e in range(2):
    for m in range(2):
        board.gauge({"loss": 10.0 * e + m, "acc": 0.5 + e / 4}, m, e, 2, "TRAIN", plot=False)
    if e == 0:
        board.log(gauge=False)
calls, replace = 0, os.replace

def dying_replace(src, dst):
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    replace(src, dst)

os.replace = dying_replace
board.log(gauge=gauge)
"""

OLD = {
    "acc_TRAIN_epoch.csv": ["epoch,TRAIN:acc", "1,0.5"],
    "acc_TRAIN_mile.csv": ["mile,TRAIN:acc", "1,0.5", "2,0.5"],
    "loss_TRAIN_epoch.csv": ["epoch,TRAIN:loss", "1,0.5"],
    "loss_TRAIN_mile.csv": ["mile,TRAIN:loss", "1,0.0", "2,1.0"],
}
ORDER = [
    "loss_TRAIN_mile.csv",
    "loss_TRAIN_epoch.csv",
    "acc_TRAIN_mile.csv",
    "acc_TRAIN_epoch.csv",
]  # written so
NEW = {
    "acc_TRAIN_epoch.csv": ["epoch,TRAIN:acc", "1,0.5", "2,0.75"],
    "acc_TRAIN_mile.csv": ["mile,TRAIN:acc", "1,0.5", "2,0.5", "3,0.75", "4,0.75"],
    "loss_TRAIN_epoch.csv": ["epoch,TRAIN:loss", "1,0.5", "2,10.5"],
    "loss_TRAIN_mile.csv": ["mile,TRAIN:loss", "1,0.0", "2,1.0", "3,10.0", "4,11.0"],
}


def run_child(tmp_path: Path, folder: Path, kill_at: int, gauge: str) -> int:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.run(
        [sys.executable, str(script), str(folder), str(kill_at), gauge], capture_output=True, timeout=120
    ).returncode


def csvs(folder: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text().splitlines() for p in sorted(folder.glob("*.csv"))}


@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_a_kill_inside_log_leaves_each_file_old_or_new_and_the_next_log_clears_its_temp(
    tmp_path: Path, kill_at: int, capsys
) -> None:
    folder = tmp_path / "logs"
    assert run_child(tmp_path, folder, kill_at, "csv") == -signal.SIGKILL
    # the files replaced before the kill are new, the others are as logged after epoch 1: none is cut short
    assert csvs(folder) == {n: (NEW if i < kill_at - 1 else OLD)[n] for i, n in enumerate(ORDER)}
    [temp] = folder.glob("*.tmp-*")
    assert temp.name.startswith(ORDER[kill_at - 1] + ".tmp-")
    DashBoard(folder).log(gauge=False)  # the next run in that folder removes the dead writer's temp file
    assert not list(folder.glob("*.tmp-*"))


def test_a_kill_at_the_first_png_leaves_every_csv_new(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    assert run_child(tmp_path, folder, 5, "png") == -signal.SIGKILL
    assert csvs(folder) == NEW
    assert not list(folder.glob("*.png"))


def test_a_live_writers_temp_file_is_left_alone(tmp_path: Path, capsys) -> None:
    (tmp_path / "loss_TRAIN_mile.csv.tmp-1").write_text("pid 1 is alive")
    (tmp_path / f"loss_TRAIN_mile.csv.tmp-{os.getpid()}x").write_text("not a temp file of ours")
    DashBoard(tmp_path).log()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "loss_TRAIN_mile.csv.tmp-1",
        f"loss_TRAIN_mile.csv.tmp-{os.getpid()}x",
    ]


@pytest.mark.parametrize("spelling", ["relative", "dot", "absolute", "symlink"])
def test_log_and_record_work_with_every_spelling_of_a_folder(
    tmp_path: Path, monkeypatch, capsys, spelling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    name = {"relative": "real/logs", "dot": "./real/logs", "absolute": str(tmp_path / "real/logs"),
            "symlink": "link/logs"}[spelling]  # fmt: skip
    first = DashBoard(name)
    first.gauge({"loss": 1.0}, 0, 0, 1, "TRAIN")
    first.log(gauge=False)
    second = DashBoard(name, window=1)
    second.gauge({"loss": 2.0}, 0, 0, 1, "TRAIN")
    second.log(gauge=False, subdir="next", record=name)  # the earlier run's folder, spelled the same way
    assert (tmp_path / "real/logs/loss_TRAIN_mile.csv").read_text() == "mile,TRAIN:loss\n1,1.0\n"
    assert (
        tmp_path / "real/logs/next/loss_TRAIN_epoch.csv"
    ).read_text() == "epoch,TRAIN:loss\n1,1.0\n2,2.0\n"
    assert not list((tmp_path / "real").rglob("*.tmp-*"))
