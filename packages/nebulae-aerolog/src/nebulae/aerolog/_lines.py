"""The text of the board: the progress line, the epoch summary and the choice of the curve shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._format import ordinal, show
from ._screen import HIGHLIGHT, RESET
from ._series import Series

__all__ = ["WAIT", "fragments", "pick_curve", "progress_line", "summary_line"]

BAR = 20  # cells of the progress bar
WAIT = "data_wait"  # the metric track() records


def fragments(
    plan: Mapping[str, Series], names: Iterable[str], averages: Mapping[str, float] | None = None
) -> str:
    """`` {name} ➠ {value} |`` per shown metric: the latest smoothed value, or the epoch average."""
    parts = []
    for name in names:
        rec = plan[name]
        if rec.mode == "inviz":
            continue
        if averages is not None and rec.recorded:
            if name not in averages:
                continue
            value: object = averages[name]
        else:
            value = rec.smoothed()[-1] if rec.recorded else rec.last
        parts.append(f" {name} ➠ {show(rec.fmt, rec.mode, value)} |")
    return "".join(parts)


def progress_line(
    e: int, m: int, mpe: int, duration: float | None, rate: float | None, stage: str, frags: str, color: bool
) -> str:
    """``| 1st Epoch ✇ 5 Miles ⊰⟦bar⟧⊱ ⧲ 0.123s/mile | TRAIN | loss ➠ 0.5 |``; `color` highlights the bar."""
    cells = min(BAR, max(0, int((m - 1) / mpe * BAR + 0.4)))
    if color:
        bar = HIGHLIGHT + " " * cells + RESET + " " * (BAR - cells)
    else:
        bar = "#" * cells + "-" * (BAR - cells)
    dur = "--:--" if duration is None else f"{float(duration):.3f}"
    speed = "" if rate is None else f" {rate:.1f} it/s"
    return f"| {ordinal(e)} Epoch ✇ {m} Miles ⊰⟦{bar}⟧⊱ ⧲ {dur}s/mile{speed} | {stage} |{frags}"


def summary_line(e: int, mpe: int, secs: float, rate: float | None, stage: str, frags: str) -> str:
    """``| 1st Epoch ✇ 100 Miles ⧲ 12.34s/epoch | TRAIN | loss ➠ 0.5 |`` with epoch averages."""
    speed = "" if rate is None else f" {rate:.1f} it/s"
    return f"| {ordinal(e)} Epoch ✇ {e * mpe} Miles ⧲ {secs:.2f}s/epoch{speed} | {stage} |{frags}"


def pick_curve(
    plan: Mapping[str, Series], names: Sequence[str], m: int, in_loop: Sequence[int], cycle: int
) -> Series | None:
    """The series whose curve is drawn: the first recorded metric of the entry, or, with `in_loop`, the
    entry index whose turn it is (each lasting `cycle` miles)."""
    recorded = sorted((n for n in names if plan[n].recorded), key=lambda n: n == WAIT)  # data_wait last
    if not recorded:
        return None
    if in_loop and tuple(in_loop) != (-1,):
        idx = in_loop[((m - 1) // cycle) % len(in_loop)]
        if -len(names) <= idx < len(names) and plan[names[idx]].recorded:
            return plan[names[idx]]
    return plan[recorded[0]]
