"""One validation style everywhere: a wrong type is a TypeError, a wrong value a ValueError."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.aerolog import DashBoard, curve2str


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"window": "3"}, TypeError, r"'window' must be an int >= 1 \(got str '3'\)"),
        ({"window": 2.0}, TypeError, r"'window' must be an int >= 1 \(got float 2.0\)"),
        ({"window": 0}, ValueError, r"'window' must be an int >= 1 \(got 0\)"),
        ({"span": True}, TypeError, "'span' must be an int >= 10"),
        ({"refresh": "fast"}, TypeError, "'refresh' must be a number of seconds >= 0 or None"),
        ({"refresh": -1}, ValueError, "'refresh' must be a number of seconds >= 0 or None"),
        ({"epochs": 0}, ValueError, r"'epochs' must be an int >= 1 \(got 0\)"),
        ({"epochs": 2.5}, TypeError, "'epochs' must be an int >= 1"),
        ({"sinks": print}, TypeError, "'sinks' must be a list of sinks or callables"),
        ({"sinks": [3]}, TypeError, r"sinks\[0\] must be a callable"),
    ],
)
def test_board_settings_raise_type_and_value_errors_apart(tmp_path, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        DashBoard(tmp_path, **kwargs)


def test_config_values_are_checked_like_arguments(tmp_path) -> None:
    with pytest.raises(TypeError, match="'window' must be an int"):
        DashBoard(config={"log_path": tmp_path, "window": "3"})


def test_numpy_integers_are_ints_for_the_board_and_the_curve(tmp_path) -> None:
    board = DashBoard(tmp_path, window=np.int64(3), span=np.int32(12))
    assert (board.window, board.span) == (3, 12)
    assert curve2str([1, 2, 3], divisor=np.int64(3), span=np.int64(10)) == curve2str([1, 2, 3], 3, 10)


def test_read_takes_an_int_epoch(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    board.gauge({"loss": 1.0}, 0, 0, 1, "TRAIN")
    with pytest.raises(TypeError, match=r"'epoch' must be an int \(got str '1'\)"):
        board.read("loss", "TRAIN", "1")
    assert board.read("loss", "TRAIN", np.int64(1)) == 1.0
