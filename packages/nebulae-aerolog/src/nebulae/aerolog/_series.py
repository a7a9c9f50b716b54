"""The recorded history of one metric of one stage, kept cheap to append to."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Series", "mean", "to_number"]


def to_number(name: str, value: object) -> float:
    """Convert a gauge entry to float, naming the metric when it is not a number.

    Raises:
        TypeError: `value` is text, or does not convert with ``float()``.
    """
    if isinstance(value, str | bytes):
        raise TypeError(
            f"entry[{name!r}] must be a number (got {type(value).__name__} {value!r}); "
            "give text a ('tailor') format to display it"
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"entry[{name!r}] must be a number, a 0-d array or a 1-element tensor (got {type(value).__name__})"
        ) from None


def mean(values: list[float]) -> float:
    """The mean of `values` (not empty), exact as ``math.fsum`` gives it, and never an exception.

    A diverged run feeds ``inf`` and ``-inf`` (fsum refuses to add them) or finite values whose running sum
    leaves the float range (fsum reports an intermediate overflow although the mean is finite): those few
    cases take a plain sum of the values divided first, giving ``nan``, ``inf`` or the finite mean.
    """
    try:
        return math.fsum(values) / len(values)
    except (ValueError, OverflowError):
        n = len(values)
        average = sum(v / n for v in values)
        if math.isinf(average) and all(map(math.isfinite, values)):
            # the divided values, rounded up, can still sum past the float limit: the mean of finite
            # values lies between the smallest and the largest
            average = min(max(average, min(values)), max(values))
        return average


class Series:
    """History of ``"{stage}:{name}"``.

    Raw values and their global miles are appended on every gauge call; the moving average over
    `window` is computed lazily (only when shown or logged), so recording stays two list appends.
    Series that are displayed but not recorded (tailor, inviz) keep only their last value.
    """

    __slots__ = (
        "_done",
        "_ring",
        "_smooth",
        "_total",
        "closed",
        "epoch",
        "epoch_vals",
        "epoch_xs",
        "fmt",
        "key",
        "last",
        "mode",
        "name",
        "prior_epoch",
        "prior_mile",
        "recorded",
        "stage",
        "start",
        "vals",
        "window",
        "xs",
    )

    def __init__(self, stage: str, name: str, fmt: Any, mode: str, window: int) -> None:
        self.stage, self.name, self.key = stage, name, f"{stage}:{name}"
        self.fmt, self.mode = fmt, mode
        self.recorded = mode in ("raw", "percent")
        self.window = window
        self.vals: list[float] = []  # raw values, one per gauge call
        self.xs: list[int] = []  # global mile of each value
        self.epoch_vals: list[float] = []
        self.epoch_xs: list[int] = []
        self.start = 0  # index in `vals` where the current epoch began
        self.epoch = 0  # 1-based epoch of the values since `start`
        self.closed = 0  # last epoch whose average was taken
        self.last: object = None
        self.prior_mile: tuple[list[float], list[float]] = ([], [])  # from a recorded run
        self.prior_epoch: tuple[list[float], list[float]] = ([], [])
        self._smooth: list[float] = []
        self._ring = [0.0] * window
        self._total = 0.0
        self._done = 0

    def close_epoch(self, e: int) -> float | None:
        """Append the mean of the values received during epoch `e`; return it (None if there were none)."""
        if self.closed == e or self.epoch != e:
            return None
        self.closed = e
        seg = self.vals[self.start :]
        if not seg:
            return None
        average = mean(seg)
        self.epoch_vals.append(average)
        self.epoch_xs.append(e)
        return average

    def smoothed(self) -> list[float]:
        """The moving average at every recorded mile (a ring of `window` slots indexed by global mile)."""
        if self.window == 1:
            return self.vals
        ring, w, total, out = self._ring, self.window, self._total, self._smooth
        vals, xs = self.vals, self.xs
        inf = math.inf
        for i in range(self._done, len(vals)):
            g, v = xs[i], vals[i]
            slot = (g - 1) % w
            total += v - ring[slot]
            ring[slot] = v
            if slot == w - 1:  # refresh the running sum once per lap, so rounding never accumulates
                try:
                    total = math.fsum(ring)
                except (ValueError, OverflowError):  # inf and -inf, or past the float range: see below
                    total = math.nan
            if g < w:
                out.append(mean(ring[:g]))
            elif -inf < total < inf:
                out.append(total / w)
            else:  # nan or inf in the window, or a sum past the float range: average the window itself
                out.append(mean(ring))
        self._total, self._done = total, len(vals)
        return out

    def mile_curve(self) -> tuple[list[float], list[float]]:
        """Recorded-run rows followed by this run's smoothed values, x offset by the last recorded mile."""
        px, py = self.prior_mile
        off = px[-1] if px else 0
        return px + [x + off for x in self.xs], py + list(self.smoothed())

    def epoch_curve(self) -> tuple[list[float], list[float]]:
        """Recorded-run epochs followed by this run's epoch averages, x offset by the last recorded epoch."""
        px, py = self.prior_epoch
        off = px[-1] if px else 0
        return px + [x + off for x in self.epoch_xs], py + self.epoch_vals
