"""curve2str: known series give known charts."""

from __future__ import annotations

import math

import pytest

from nebulae.aerolog import curve2str
from nebulae.aerolog._curve import short_count


def test_rising_and_falling_series_draws_known_strokes() -> None:
    chart = curve2str([1, 2, 3, 2], divisor=3, span=10)
    assert chart == "\n".join(
        [
            "         y ^",
            "     3.000 |  /",
            "     2.000 | / \\",
            "     1.000 |_",
            "           +----> x",
        ]
    )


def test_jump_over_rows_fills_with_vertical_strokes() -> None:
    chart = curve2str([0, 4, 0], divisor=5, span=10, x_title="mile", y_title="loss")
    assert chart == "\n".join(
        [
            "      loss ^",
            "     4.000 | /",
            "     3.000 | ||",
            "     2.000 | ||",
            "     1.000 | ||",
            "     0.000 |_ \\",
            "           +---> mile",
        ]
    )


def test_flat_series_sits_on_one_row_with_flat_strokes() -> None:
    rows = curve2str([5.0] * 12, divisor=4, span=10).split("\n")[1:5]
    drawn = [r for r in rows if "_" in r]
    assert len(drawn) == 1
    assert drawn[0].endswith("_" * 10)


def test_x_ticks_every_five_columns_use_k_suffix_when_sampling_globally() -> None:
    chart = curve2str(list(range(20_000)), divisor=2, span=10, is_global=True).split("\n")
    axis, ticks = chart[-2], chart[-1]
    assert axis == "           +----+----+> x"
    assert ticks == "            8.89K  20K"


def test_last_span_points_are_shown_when_not_global() -> None:
    chart = curve2str(list(range(100)), divisor=2, span=10, is_global=False).split("\n")
    assert chart[-1] == "               95  100"
    assert chart[1].startswith("    99.000 |")
    assert chart[2].startswith("    90.000 |")


def test_elastic_rows_follow_quantiles_so_busy_ranges_get_more_rows() -> None:
    values = [0.0] * 5 + [0.1, 0.2, 0.3, 0.4] + [10.0]
    even = curve2str(values, divisor=4, span=10).split("\n")[1:5]
    elastic = curve2str(values, divisor=4, span=10, is_elastic=True).split("\n")[1:5]
    assert [float(r[:10]) for r in even] == pytest.approx([10.0, 6.667, 3.333, 0.0], abs=1e-3)
    assert [float(r[:10]) for r in elastic] == [0.4, 0.2, 0.1, 0.0]
    assert elastic[0].endswith("/_")  # 0.4 and 10 share the top row


def test_non_finite_values_leave_a_gap() -> None:
    chart = curve2str([1.0, math.nan, 2.0, 3.0], divisor=3, span=10).split("\n")
    assert chart[3][12:] == "_"
    assert chart[2][12:] == "  _"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"curve": []}, ValueError, "'curve' must hold at least one value"),
        ({"curve": [1], "divisor": 0}, ValueError, "'divisor' must be an int >= 1"),
        ({"curve": [1], "span": 9}, ValueError, "'span' must be an int >= 10"),
        ({"curve": ["a"]}, TypeError, "'curve' must hold numbers"),
        ({"curve": [1], "divisor": 2.0}, TypeError, r"'divisor' must be an int >= 1 \(got float 2.0\)"),
        ({"curve": [1], "span": "30"}, TypeError, "'span' must be an int >= 10"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        curve2str(**kwargs)


@pytest.mark.parametrize(
    ("n", "text"), [(7, "7"), (999, "999"), (1500, "1.5K"), (123_456, "123K"), (2_000_000, "2M")]
)
def test_counts_are_written_with_k_and_m_suffixes(n: int, text: str) -> None:
    assert short_count(n) == text
