"""PNG curves written by DashBoard.log(); the only module that imports matplotlib, and only when called."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._format import show
from ._logfiles import atomic_write

__all__ = ["plot_epochs", "plot_miles"]


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


def plot_miles(path: Path, title: str, xs: Sequence[float], ys: Sequence[float], fmt: Any, mode: str) -> None:
    """Plot a smoothed per-mile series, annotating its minimum and maximum with the metric's format."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(xs, ys, linewidth=1.2)
    lo = min(range(len(ys)), key=ys.__getitem__)
    hi = max(range(len(ys)), key=ys.__getitem__)
    for i, va in ((lo, "top"), (hi, "bottom")):
        ax.plot([xs[i]], [ys[i]], "o", markersize=4, color="tab:red")
        ax.annotate(show(fmt, mode, ys[i]).strip(), (xs[i], ys[i]), ha="center", va=va, fontsize=9)
    ax.set(title=title, xlabel="mile")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_epochs(
    path: Path, metric: str, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]
) -> None:
    """Plot the per-epoch averages of one metric, one line with markers per stage."""
    fig = _figure()
    ax = fig.add_subplot()
    for stage, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", label=stage)
    ax.set(title=metric, xlabel="epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
