"""A diverged run (nan, inf, -inf, values near the float limit) is shown and logged, never raised."""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import warnings
from collections.abc import Iterator
from fractions import Fraction
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nebulae.aerolog import AerologWarning, DashBoard, _series, curve2str
from nebulae.aerolog._logfiles import read_record

INF, NAN, HUGE = math.inf, math.nan, sys.float_info.max

# every float, with the ones a diverged loss produces drawn often
FLOATS = st.one_of(
    st.floats(),
    st.sampled_from([INF, -INF, NAN, 1e308, -1e308, HUGE, -HUGE, 5e-324, 0.0, -0.0]),
    st.floats(min_value=-1e6, max_value=1e6),
)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def terminal() -> Iterator[FakeTerminal]:
    """stdout claims to be a terminal 200 columns wide, so that gauge() draws the ASCII curve."""
    screen, real = FakeTerminal(), sys.stdout
    sys.stdout = screen
    try:
        with mock.patch.dict(os.environ, {"COLUMNS": "200"}):
            yield screen
    finally:
        sys.stdout = real


def reference_mean(values: list[float]) -> float:
    if any(math.isnan(v) for v in values) or (INF in values and -INF in values):
        return NAN
    if INF in values or -INF in values:
        return INF if INF in values else -INF
    return float(sum(map(Fraction, values)) / len(values))


def same(got: float, want: float, scale: float) -> bool:
    """Equal as nan/inf, or within the rounding a running sum over values of size `scale` may add."""
    if math.isnan(want) or math.isinf(want):
        return repr(got) == repr(want)
    return math.isfinite(got) and abs(got - want) <= 1e-9 * scale + 1e-300


def test_inf_and_minus_inf_in_one_epoch_give_a_nan_average(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=2)
    for m, v in enumerate([INF, -INF, 1.0]):
        board.gauge({"loss": v}, m, 0, 3, "TRAIN")
    assert math.isnan(board.read("loss", "TRAIN"))
    assert [repr(v) for v in board._series["TRAIN:loss"].smoothed()] == ["inf", "nan", "-inf"]
    assert "| TRAIN | loss ➠ nan |" in capsys.readouterr().out


def test_values_near_the_float_limit_average_without_overflow(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=3)
    for m in range(3):
        board.gauge({"loss": 1e308}, m, 0, 3, "TRAIN")
    assert board.read("loss", "TRAIN") == pytest.approx(1e308)
    assert board._series["TRAIN:loss"].smoothed() == pytest.approx([1e308] * 3)


def test_a_moving_average_shows_inf_and_nan_then_recovers_after_the_window(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=2)
    for m, v in enumerate([1.0, INF, -INF, 2.0, 3.0, 5.0]):
        board.gauge({"loss": v}, m, 0, 10, "TRAIN")
    got = board._series["TRAIN:loss"].smoothed()
    assert [repr(v) for v in got] == ["1.0", "inf", "nan", "-inf", "2.5", "4.0"]


def test_the_terminal_curve_of_huge_values_has_aligned_exponent_labels(tmp_path) -> None:
    with terminal() as screen:
        board = DashBoard(tmp_path, divisor=3, refresh=0)
        for m, v in enumerate([1e308, -1e308, 1.0, INF]):
            board.gauge({"loss": v}, m, 0, 10, "TRAIN")
    frames = screen.getvalue().split("\x1b[J")
    assert [row[:12] for row in frames[-1].split("\n")[1:4]] == [
        " 1.00e+308 |",
        "  0.00e+00 |",
        "-1.00e+308 |",
    ]
    assert "| TRAIN | loss ➠ 1.0000e+308 |" in frames[1] and "| TRAIN | loss ➠ inf |" in frames[-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=12))
def test_mean_never_raises_and_matches_the_exact_mean(values: list[float]) -> None:
    want = reference_mean(values)
    assert same(_series.mean(values), want, max((abs(v) for v in values if math.isfinite(v)), default=0.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(FLOATS, min_size=1, max_size=40),
    st.integers(1, 10),
    st.integers(10, 40),
    st.booleans(),
    st.booleans(),
)
def test_curve2str_draws_any_floats_with_aligned_rows(
    values: list[float], divisor: int, span: int, is_global: bool, is_elastic: bool
) -> None:
    rows = curve2str(values, divisor, span, is_global, is_elastic).split("\n")
    body = [r for r in rows[1:] if r[11:12] == "|"]
    assert 1 <= len(body) <= divisor
    assert all(r[10:12] == " |" and "nan" not in r[:10] for r in body)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda mpe: st.lists(st.lists(FLOATS, min_size=mpe, max_size=mpe), min_size=1, max_size=3)
    ),
    st.integers(1, 4),
    st.booleans(),
    st.booleans(),
)
def test_gauge_never_raises_and_records_exact_means_on_any_floats(
    tmp_path_factory, values: list[list[float]], window: int, is_elastic: bool, percent: bool
) -> None:
    folder = tmp_path_factory.mktemp("logs")
    with terminal():
        board = DashBoard(folder, window=window, divisor=4, refresh=0,
                          format={"loss": (".3f", "percent" if percent else "raw")})  # fmt: skip
        for e, epoch in enumerate(values):
            for m, v in enumerate(epoch):
                board.gauge({"loss": v}, m, e, len(epoch), "TRAIN", is_elastic=is_elastic)
        board.log(gauge=False)
    flat = [v for epoch in values for v in epoch]
    scale = max((abs(v) for v in flat if math.isfinite(v)), default=0.0)
    for e, epoch in enumerate(values, start=1):
        assert same(board.read("loss", "TRAIN", e), reference_mean(epoch), scale)
    smoothed = board._series["TRAIN:loss"].smoothed()
    for g in range(1, len(flat) + 1):
        assert same(smoothed[g - 1], reference_mean(flat[max(0, g - window) : g]), scale)
    # the CSVs hold every value as recorded, nan and inf included
    [(_, _, _, epoch_ys), (_, _, _, mile_ys)], problems = read_record(folder)
    assert not problems
    assert [repr(v) for v in mile_ys] == [repr(v) for v in smoothed]
    assert [repr(v) for v in epoch_ys] == [
        repr(board.read("loss", "TRAIN", e)) for e in range(1, len(values) + 1)
    ]


@settings(max_examples=12, deadline=None)
@given(st.lists(FLOATS, min_size=2, max_size=10))
def test_png_curves_of_any_floats_are_written_without_nan_or_inf_in_their_names(
    tmp_path_factory, values
) -> None:
    folder = tmp_path_factory.mktemp("png")
    board = DashBoard(folder, refresh=1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AerologWarning)
        for i, v in enumerate(values):
            board.gauge({"loss": v}, i % 2, i // 2, 2, "TRAIN", plot=False)
        board.log(tachograph=False)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["loss_TRAIN.png", "loss_epoch.png"]
    assert not any("nan" in n or "inf" in n for n in names)
    for name in names:
        with Image.open(folder / name) as img:
            assert img.format == "PNG"


def test_a_diverged_last_value_stays_out_of_the_png_name(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for m, v in enumerate([0.5, 0.25, NAN]):
        board.gauge({"loss": v, "acc": 0.5}, m, 0, 3, "TRAIN")
    board.log(tachograph=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "acc_TRAIN.png",
        "acc_epoch.png",
        "loss_TRAIN.png",
        "loss_epoch.png",
    ]
