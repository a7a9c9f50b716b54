"""Every series a board records, by stage and metric: made on first sight, stored from outside, continued."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from ._format import DEFAULT_FORMAT, RECORDED, Format
from ._lines import WAIT
from ._series import Series, to_number

__all__ = ["History"]

_WAIT_FORMAT = (".1f", "percent")


class History:
    """The series of one board: `plans` maps stage -> metric -> Series (in first-seen order, shown or not),
    `series` maps ``"stage:metric"`` -> Series for the recorded ones only."""

    __slots__ = ("formats", "merged", "plans", "series", "window")

    def __init__(self, formats: dict[str, Format], window: int) -> None:
        self.formats = formats
        self.window = window
        self.plans: dict[str, dict[str, Series]] = {}
        self.series: dict[str, Series] = {}
        self.merged: set[tuple[str, str]] = set()  # (unit, key) of the recorded runs merged so far

    def add(self, plan: dict[str, Series], stage: str, name: str) -> Series:
        """The series of a metric first seen in `stage` (one merged from a recorded run, if any)."""
        fmt, mode = self._gauged_format(name)
        rec = self.series.get(f"{stage}:{name}") or Series(stage, name, fmt, mode, self.window)
        plan[name] = rec
        if rec.recorded:
            self.series[rec.key] = rec
        return rec

    def _gauged_format(self, name: str) -> Format:
        return self.formats.get(name, _WAIT_FORMAT if name == WAIT else DEFAULT_FORMAT)

    def outside(self, stage: str, name: str, *, gauged: bool = False) -> Series:
        """A recorded series for values that come from outside gauge() (record(), a recorded run, a saved
        state; `gauged`: values gauge() recorded, so ``data_wait`` keeps its percent format)."""
        fmt, mode = self._gauged_format(name) if gauged else self.formats.get(name, DEFAULT_FORMAT)
        if mode not in RECORDED:
            fmt, mode = DEFAULT_FORMAT
        rec = self.series[f"{stage}:{name}"] = Series(stage, name, fmt, mode, self.window)
        return rec

    def store(self, stage: str, name: str, value: Sequence[float] | float) -> None:
        """Keep a per-epoch series computed elsewhere.

        Raises:
            KeyError: that key already holds a series.
            TypeError: a value is not a number.
        """
        key = f"{stage}:{name}"
        if key in self.series:
            raise KeyError(f"{key!r} is already recorded; pick another metric name or stage")
        values = list(value) if isinstance(value, Iterable) else [value]
        numbers = [to_number(name, v) for v in values]
        rec = self.outside(stage, name)
        rec.epoch_vals = numbers
        rec.epoch_xs = list(range(1, len(values) + 1))

    def epoch_average(self, entry: str, stage: str | None, epoch: int) -> float:
        """The average of a 1-based `epoch` (negative: counted from the end) of ``stage:entry``, or of
        `entry` written ``"STAGE:metric"`` when `stage` is None.

        Raises:
            KeyError: no epoch average under that name; the message lists the names that have one.
            ValueError: `epoch` is beyond the epochs recorded.
        """
        key = entry if stage is None else f"{stage}:{entry}"
        rec = self.series.get(key)
        values = rec.epoch_curve()[1] if rec else []
        if not values:
            known = [r for r in self.series.values() if r.epoch_curve()[1]]
            names = ", ".join(f"read({r.name!r}, {r.stage!r})" for r in known) or "none yet"
            hint = (
                "" if stage is not None or ":" in entry else "; pass the stage too, or write 'STAGE:metric'"
            )
            raise KeyError(f"no epoch average recorded for {key!r}{hint}; recorded: {names}")
        if epoch > len(values) or epoch < -len(values):
            raise ValueError(f"'epoch' {epoch} is out of range: {key!r} has {len(values)} epochs")
        return values[epoch - 1] if epoch > 0 else values[epoch]

    def merge_record(self, record: str | os.PathLike[str]) -> list[str]:
        """Put the series of a recorded run before this run's, once per key; return what was wrong with the
        files that were skipped.

        Raises:
            FileNotFoundError, ValueError: `record` names nothing usable (see ``DashBoard.log()``).
        """
        from ._logfiles import read_record

        found, problems = read_record(record)
        if not found:
            raise ValueError(
                f"'record': nothing in {os.fspath(record)} can be continued from: " + "; ".join(problems)
            )
        for unit, key, xs, ys in found:
            if (unit, key) in self.merged:
                continue
            self.merged.add((unit, key))
            rec = self.series.get(key)
            if rec is None:
                stage, _, name = key.partition(":")
                rec = self.outside(stage, name)
            if unit == "mile":
                rec.prior_mile = (xs, ys)
            else:
                rec.prior_epoch = (xs, ys)
        return problems
