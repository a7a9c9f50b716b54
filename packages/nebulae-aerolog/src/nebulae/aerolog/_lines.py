"""The text of the board: the progress line, the epoch summary and the choice of the curve shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._format import ordinal, show
from ._screen import HIGHLIGHT, RESET
from ._series import Series

__all__ = ["WAIT", "clock", "fragments", "pick_curve", "progress_line", "speed", "summary_line"]

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


def clock(seconds: float) -> str:
    """Seconds as tqdm writes them: ``MM:SS``, or ``H:MM:SS`` past an hour (``--:--`` when unknown)."""
    if not 0 <= seconds < 1e9:  # nan, negative, or no meaningful estimate yet
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def speed(rate: float | None) -> str:
    """`` 12.3 it/s``, or `` 2.50 s/it`` below one step per second, as tqdm shows it ('' when unknown)."""
    if rate is None or not rate > 0:
        return ""
    if rate < 1:
        return f" {1 / rate:.2f} s/it"
    return f" {rate:.{2 if rate < 10 else 1 if rate < 100 else 0}f} it/s"  # about 3 significant digits


def progress_line(
    e: int,
    m: int,
    mpe: int | None,
    duration: float | None,
    rate: float | None,
    stage: str,
    frags: str,
    color: bool,
    run_eta: float | None = None,
) -> str:
    """``| 1st Epoch ✇ 5/100 Miles ⊰⟦bar⟧⊱ ⧲ 0.123s/mile 8.13 it/s ETA 00:12 | TRAIN | loss ➠ 0.5 |``.

    `mpe` None (an iterable of unknown length) shows the miles alone and no ETA; `run_eta` (seconds left
    in the run, when the number of epochs is known) follows the epoch's ETA; `color` highlights the bar.
    """
    cells = 0 if mpe is None else min(BAR, max(0, int((m - 1) / mpe * BAR + 0.4)))
    if color:
        bar = HIGHLIGHT + " " * cells + RESET + " " * (BAR - cells)
    else:
        bar = "#" * cells + "-" * (BAR - cells)
    dur = "--:--" if duration is None else f"{float(duration):.3f}"
    miles = f"{m}" if mpe is None else f"{m}/{mpe}"
    eta = ""
    if mpe is not None and rate is not None and rate > 0:
        eta = f" ETA {clock((mpe - m) / rate)}"
        if run_eta is not None:
            eta += f" (run {clock(run_eta)})"
    return (
        f"| {ordinal(e)} Epoch ✇ {miles} Miles ⊰⟦{bar}⟧⊱ ⧲ {dur}s/mile{speed(rate)}{eta} | {stage} |{frags}"
    )


def summary_line(e: int, miles: int, secs: float, rate: float | None, stage: str, frags: str) -> str:
    """``| 1st Epoch ✇ 100 Miles ⧲ 12.34s/epoch | TRAIN | loss ➠ 0.5 |`` with epoch averages; `miles`
    counts the stage's miles since the start."""
    return f"| {ordinal(e)} Epoch ✇ {miles} Miles ⧲ {secs:.2f}s/epoch{speed(rate)} | {stage} |{frags}"


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
