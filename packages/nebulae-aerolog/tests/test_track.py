"""track(): miles, epochs, the data-wait split and items/s."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator

import pytest

from nebulae.aerolog import DashBoard
from nebulae.aerolog._lines import clock, speed


def slow_source(n: int, pause: float) -> Iterator[int]:
    for i in range(n):
        time.sleep(pause)
        yield i


def test_items_pass_through_and_gauge_needs_only_the_entry(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    seen = []
    for epoch in range(2):
        for item in board.track([10, 20, 30], stage="TRAIN", epoch=epoch):
            seen.append(item)
            board.gauge({"loss": float(item)})
    assert seen == [10, 20, 30] * 2
    rec = board._series["TRAIN:loss"]
    assert rec.xs == [1, 2, 3, 4, 5, 6]
    assert board.read("loss", "TRAIN", 1) == pytest.approx(20.0)
    out = capsys.readouterr().out
    assert out.count("s/epoch") == 2 and " it/s | TRAIN |" in out


def test_waiting_for_data_is_measured_apart_from_the_body(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for _ in board.track(slow_source(4, 0.02), stage="LOAD", epoch=0, mpe=4):
        pass
    for _ in board.track(range(4), stage="WORK", epoch=0):
        time.sleep(0.02)
    assert board.read("data_wait", "LOAD") > 0.5
    assert board.read("data_wait", "WORK") < 0.5
    assert "data_wait ➠ " in capsys.readouterr().out


def test_steps_without_a_gauge_call_are_gauged_and_the_epoch_summary_is_kept(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for _ in board.track(range(50_000), stage="FAST", epoch=0):
        pass
    rec = board._series["FAST:data_wait"]
    assert 1 <= len(rec.vals) <= 50_000
    assert rec.xs[-1] == 50_000  # the last mile is always timed
    assert rec.epoch_xs == [1]
    assert "| 1st Epoch ✇ 50000 Miles" in capsys.readouterr().out


def test_a_body_that_gauges_is_timed_on_every_step(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for i in board.track(range(2_000), stage="TRAIN", epoch=0):
        board.gauge({"loss": float(i)})
    assert len(board._series["TRAIN:loss"].vals) == 2_000
    assert len(board._series["TRAIN:data_wait"].vals) == 2_000


def test_explicit_arguments_inside_track_gauge_another_stage(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for i in board.track(range(4), stage="TRAIN", epoch=0):
        board.gauge({"loss": 1.0})
        if i == 3:
            board.gauge({"loss": 5.0}, 0, 0, 1, "DEV")
    assert board.read("loss", "DEV") == 5.0
    assert "DEV:data_wait" not in board._series


def test_breaking_out_of_a_tracked_loop_restores_plain_gauge(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for i in board.track(range(10), stage="TRAIN", epoch=0):
        if i == 2:
            break
    with pytest.raises(TypeError, match="missing"):
        board.gauge({"loss": 1.0})


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (([1], "TRAIN", 0), {"mpe": 1.5}, TypeError, "'mpe' must be an int >= 1"),
        (([], "TRAIN", 0), {}, ValueError, "'mpe' must be an int >= 1"),
        (([1], "TRAIN", -1), {}, ValueError, "'epoch' must be an int >= 0"),
        (([1], "TRAIN", 0), {"interval": 0}, ValueError, "'interval' must be an int >= 1"),
    ],
)
def test_bad_track_arguments_are_named(tmp_path, args, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        DashBoard(tmp_path).track(*args, **kwargs)


class Batches:
    """A Tank-like loader: len() counts samples, MPE counts the batches of one epoch."""

    MPE = 3

    def __len__(self) -> int:
        return 96

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.MPE))


def test_the_steps_come_from_mpe_before_len(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0)
    for _ in board.track(Batches(), stage="TRAIN", epoch=0):
        board.gauge({"loss": 1.0})
    out = capsys.readouterr().out
    assert "| 1st Epoch ✇ 1/3 Miles ⊰⟦" in out and "| 1st Epoch ✇ 3 Miles ⧲ " in out
    assert board._series["TRAIN:loss"].xs == [1, 2, 3]


def test_a_sized_iterable_gives_its_len(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0)
    for _ in board.track([1, 2, 3, 4], stage="TRAIN", epoch=0):
        board.gauge({"loss": 1.0})
    assert "| 1st Epoch ✇ 2/4 Miles ⊰⟦" in capsys.readouterr().out


def test_an_iterable_of_unknown_length_has_no_total_no_eta_and_ends_its_epoch_when_exhausted(
    tmp_path, capsys
) -> None:
    board = DashBoard(tmp_path, refresh=0, epochs=2)
    for epoch in range(2):
        for i in board.track((x for x in range(3 + epoch)), stage="TRAIN", epoch=epoch):
            time.sleep(0.002)
            board.gauge({"loss": float(i)})
    out = capsys.readouterr().out
    progress = [x for x in out.splitlines() if "Miles ⊰⟦" in x]
    assert progress and all("/" not in x.split(" Miles")[0] and "ETA" not in x for x in progress)
    assert "| 1st Epoch ✇ 3 Miles ⧲ " in out and "| 2nd Epoch ✇ 7 Miles ⧲ " in out
    assert board._series["TRAIN:loss"].xs == [1, 2, 3, 4, 5, 6, 7]
    assert board.read("loss", "TRAIN", 1) == 1.0 and board.read("loss", "TRAIN", 2) == 1.5


def test_eta_of_the_epoch_and_of_the_run_when_the_epochs_are_known(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0, epochs=4)
    for _ in board.track(range(10), stage="TRAIN", epoch=0):
        time.sleep(0.01)
        board.gauge({"loss": 1.0})
    lines = [x for x in capsys.readouterr().out.splitlines() if "Miles ⊰⟦" in x]
    assert re.search(r"✇ 5/10 Miles .* \d+\.\d+ it/s ETA 00:0\d \(run 00:0\d\) \| TRAIN \|", lines[4])


def test_without_epochs_only_the_epoch_eta_is_shown(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, refresh=0)
    for m in range(4):
        time.sleep(0.01)
        board.gauge({"loss": 1.0}, m, 0, 5, "TRAIN")
    lines = [x for x in capsys.readouterr().out.splitlines() if "Miles ⊰⟦" in x]
    assert "ETA" not in lines[0]  # one mile gives no rate yet
    assert re.search(r"✇ 4/5 Miles .* it/s ETA 00:00 \| TRAIN \|", lines[-1]) and "run" not in lines[-1]


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (None, ""),
        (0.4, " 2.50 s/it"),
        (3.14159, " 3.14 it/s"),
        (31.4159, " 31.4 it/s"),
        (3141.6, " 3142 it/s"),
    ],
)
def test_rates_read_like_tqdm(rate, text) -> None:
    assert speed(rate) == text


@pytest.mark.parametrize(
    ("secs", "text"), [(0, "00:00"), (61.4, "01:01"), (3725, "1:02:05"), (math.inf, "--:--")]
)
def test_times_read_like_tqdm(secs, text) -> None:
    assert clock(secs) == text
