"""ASCII line charts for the terminal: the live curve drawn by DashBoard."""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Sequence

from ._validate import check_int

__all__ = ["curve2str", "short_count"]

_LABEL = 10  # width of the y labels, '%10.3f'
_FLOAT_MAX = sys.float_info.max


def short_count(x: int) -> str:
    """Write a count compactly: 999 -> '999', 1500 -> '1.5K', 2_000_000 -> '2M'."""
    if x < 1000:
        return str(x)
    if x < 1_000_000:
        return f"{x / 1e3:.3g}K"
    return f"{x / 1e6:.3g}M"


def _sample(n: int, span: int, is_global: bool) -> list[int]:
    """Indices of the points shown: all of them, `span` spread evenly, or the last `span`."""
    if n <= span:
        return list(range(n))
    if is_global:
        return [round(i * (n - 1) / (span - 1)) for i in range(span)]
    return list(range(n - span, n))


def _even_bands(ys: list[float], rows: int) -> tuple[list[int | None], list[float]]:
    finite = [y for y in ys if math.isfinite(y)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    if hi == lo:  # a flat curve sits in the middle of a small range around it
        half = abs(lo) * 0.1 or 1.0
        lo, hi = max(lo - half, -_FLOAT_MAX), min(hi + half, _FLOAT_MAX)
    steps = max(rows - 1, 1)
    if hi - lo < math.inf:
        labels = [lo + b * (hi - lo) / steps for b in range(rows)]
        scale, lo_s, hi_s = 1.0, lo, hi
    else:  # bounds more than the float range apart (a diverged run): work on halves, which cannot overflow
        labels = [lo * (1 - b / steps) + hi * (b / steps) for b in range(rows)]
        scale, lo_s, hi_s = 0.5, lo * 0.5, hi * 0.5
    bands: list[int | None] = [
        min(rows - 1, round((y * scale - lo_s) / (hi_s - lo_s) * steps)) if math.isfinite(y) else None
        for y in ys
    ]
    return bands, labels


def _elastic_bands(ys: list[float], rows: int) -> tuple[list[int | None], list[float]]:
    """Rows bounded by quantiles of the distinct values, so that busy ranges get more rows; each row is
    labelled with its lower bound."""
    distinct = sorted({y for y in ys if math.isfinite(y)})
    if len(distinct) < 2:
        return _even_bands(ys, rows)
    last = len(distinct) - 1
    edges = sorted({distinct[round(k * last / rows)] for k in range(rows + 1)})
    inner = edges[1:-1]
    bands: list[int | None] = [bisect_right(inner, y) if math.isfinite(y) else None for y in ys]
    return bands, edges[:-1]


def curve2str(
    curve: Sequence[float],
    divisor: int = 10,
    span: int = 30,
    is_global: bool = True,
    is_elastic: bool = False,
    x_title: str = "x",
    y_title: str = "y",
) -> str:
    """Draw a series as an ASCII chart.

    The chart has `divisor` rows (y labels ``%10.3f``, or all ``%10.2e`` when one would not fit; the bottom
    row is the minimum shown, the top row the maximum) and at most `span` columns, one per point. Strokes:
    ``/`` rising, ``\\`` falling, ``|`` vertical fill, ``_`` flat. x ticks every 5 columns (labels
    right-aligned under them) give the 1-based index of the point, with K/M suffixes. Non-finite values
    leave a gap; any float, however large, is drawn without error.

    Args:
        curve: the y values, the first one at x = 1.
        divisor: number of rows (y bands), >= 1.
        span: maximum number of columns, >= 10.
        is_global: when the series is longer than `span`, sample `span` points evenly over the whole
            history (True) or show the last `span` points (False).
        is_elastic: bound the rows by quantiles of the values shown, merging sparsely visited bands
            so that busy ranges get more rows.
        x_title: label written at the end of the x axis.
        y_title: label written above the y axis.

    Returns:
        The chart, lines joined with newlines and no trailing newline.

    Raises:
        TypeError: `curve` holds a non-number, or `divisor`/`span` is not an int.
        ValueError: `curve` is empty, or `divisor`/`span` is out of range.

    Example:
        >>> print(curve2str([1, 2, 3, 2], divisor=3, span=10))
                 y ^
             3.000 |  /
             2.000 | / \\
             1.000 |_
                   +----> x
    """
    divisor = check_int("divisor", divisor, 1)
    span = check_int("span", span, 10)
    if len(curve) == 0:
        raise ValueError("'curve' must hold at least one value (got an empty sequence)")
    idxs = _sample(len(curve), span, is_global)
    try:
        ys = [float(curve[i]) for i in idxs]
    except (TypeError, ValueError) as exc:  # text or an object float() refuses: the wrong type
        raise TypeError(f"'curve' must hold numbers ({exc})") from None
    except OverflowError as exc:  # an int past the float range
        raise ValueError(f"'curve' must hold numbers within the float range ({exc})") from None
    bands, labels = (_elastic_bands if is_elastic else _even_bands)(ys, divisor)
    rows = len(labels)
    grid = [[" "] * len(ys) for _ in range(rows)]
    prev: int | None = None
    for j, b in enumerate(bands):
        if b is None:
            prev = None
            continue
        if prev is None or b == prev:
            grid[b][j] = "_"
        elif b > prev:
            for r in range(prev + 1, b):
                grid[r][j] = "|"
            grid[b][j] = "/"
        else:
            for r in range(b + 1, prev):
                grid[r][j] = "|"
            grid[b][j] = "\\"
        prev = b
    pad = " " * _LABEL
    lines = [f"{y_title[-_LABEL:]:>{_LABEL}} ^"]
    texts = [f"{y:{_LABEL}.3f}" for y in labels]
    if max(map(len, texts)) > _LABEL:  # huge values: exponents keep the rows aligned and readable
        texts = [f"{y:{_LABEL}.2e}" for y in labels]
    for r in range(rows - 1, -1, -1):
        lines.append(f"{texts[r]} |{''.join(grid[r])}".rstrip())
    ticks = "".join("+" if (j + 1) % 5 == 0 else "-" for j in range(len(ys)))
    lines.append(f"{pad} +{ticks}> {x_title}")
    tick_line = ""
    for j in range(4, len(ys), 5):
        text = short_count(idxs[j] + 1)
        start = _LABEL + 3 + j - len(text)  # right-aligned under its '+'
        if start > len(tick_line):
            tick_line += " " * (start - len(tick_line)) + text
    if tick_line:
        lines.append(tick_line)
    return "\n".join(lines)
