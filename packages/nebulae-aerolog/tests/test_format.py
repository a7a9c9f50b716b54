"""Display formats and ordinals."""

from __future__ import annotations

import pytest

from nebulae.aerolog import DashBoard
from nebulae.aerolog._format import ordinal, parse_format, show


@pytest.mark.parametrize(
    ("n", "text"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"),
     (22, "22nd"), (101, "101st"), (111, "111th"), (112, "112th"), (1000, "1000th")],
)  # fmt: skip
def test_ordinals_use_th_for_eleven_to_thirteen(n: int, text: str) -> None:
    assert ordinal(n) == text


def test_raw_and_percent_values_are_left_justified_with_the_given_spec() -> None:
    assert show("6.3f", "raw", 1.5) == "1.500 "
    assert show(".1f", "percent", 0.257) == "25.7%"
    assert show(lambda v: f"<{v}>", "tailor", 3) == "<3>"
    assert show(print, "inviz", 3) == ""


def test_unlisted_metrics_default_to_four_decimals_raw() -> None:
    assert parse_format(None) == {}
    assert parse_format({"acc": [".2f", "percent"]}) == {"acc": (".2f", "percent")}


@pytest.mark.parametrize(
    ("format", "error", "message"),
    [
        (
            {"loss": (".3f", "fancy")},
            ValueError,
            r"format\['loss'\]: mode must be one of raw, percent, tailor, inviz",
        ),
        ({"loss": ".3f"}, TypeError, r"format\['loss'\] must be a \(fmt, mode\) pair"),
        ({"loss": (".3f", "raw", 1)}, ValueError, r"format\['loss'\] must be a \(fmt, mode\) pair"),
        ({"loss": ("%q", "raw")}, ValueError, r"format\['loss'\]: '%q' is not a valid %-spec"),
        ({"loss": (3, "percent")}, TypeError, r"format\['loss'\]: a percent fmt must be a %-spec"),
        ({"img": (".3f", "inviz")}, TypeError, r"format\['img'\]: a inviz fmt must be a callable"),
        ([("loss", ".3f")], TypeError, r"'format' must be a dict"),
    ],
)
def test_bad_formats_are_rejected_at_construction(
    tmp_path, format: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        DashBoard(tmp_path, format=format)
