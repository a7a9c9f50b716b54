"""PNG curves written by DashBoard.log(); the only module that imports matplotlib, and only when called."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._atomic import atomic_write
from ._format import show

__all__ = ["plot_epochs", "plot_miles"]

_DRAWABLE = 1e300


def _figure() -> Any:
    # The object-oriented API draws on an Agg canvas without touching pyplot's global backend,
    # so logging from a notebook or GUI session changes nothing for the user.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def _drawable(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], int]:
    """`ys` with nan (a gap) where a point cannot be drawn, and how many such points there are.

    nan, inf and values beyond +-1e300 (a diverged run) cannot: matplotlib's margin and tick arithmetic
    overflows near the float limit.
    """
    shown = [
        y if abs(y) <= _DRAWABLE and abs(x) <= _DRAWABLE else math.nan for x, y in zip(xs, ys, strict=True)
    ]
    return shown, sum(1 for y in shown if y != y)


def _left_out(count: int, total: int) -> str:
    return f"\n{count} of {total} values not drawn (nan, inf or beyond 1e300)" if count else ""


def plot_miles(path: Path, title: str, xs: Sequence[float], ys: Sequence[float], fmt: Any, mode: str) -> None:
    """Plot a smoothed per-mile series, annotating its minimum and maximum with the metric's format.

    The title gives the last value and its mile; points that cannot be drawn leave gaps, counted there.
    """
    fig = _figure()
    ax = fig.add_subplot()
    shown, missing = _drawable(xs, ys)
    ax.plot(xs, shown, linewidth=1.2)
    drawn = [i for i, y in enumerate(shown) if y == y]
    if drawn:
        lo = min(drawn, key=shown.__getitem__)
        hi = max(drawn, key=shown.__getitem__)
        for i, va in ((lo, "top"), (hi, "bottom")):
            ax.plot([xs[i]], [ys[i]], "o", markersize=4, color="tab:red")
            ax.annotate(show(fmt, mode, ys[i]).strip(), (xs[i], ys[i]), ha="center", va=va, fontsize=9)
    title += f": {show(fmt, mode, ys[-1]).strip()} at mile {xs[-1]:g}{_left_out(missing, len(ys))}"
    ax.set(title=title, xlabel="mile")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_epochs(
    path: Path,
    metric: str,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    fmt: Any,
    mode: str,
) -> None:
    """Plot the per-epoch averages of one metric, one line with markers per stage (gaps where undrawable);
    the title gives each stage's last epoch and average."""
    fig = _figure()
    ax = fig.add_subplot()
    missing = total = 0
    lasts = []
    for stage, (xs, ys) in curves.items():
        shown, count = _drawable(xs, ys)
        missing, total = missing + count, total + len(ys)
        ax.plot(xs, shown, marker="o", label=stage)
        lasts.append(f"{stage} {show(fmt, mode, ys[-1]).strip()} (epoch {xs[-1]:g})")
    ax.set(title=f"{metric}: {', '.join(lasts)}{_left_out(missing, total)}", xlabel="epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
