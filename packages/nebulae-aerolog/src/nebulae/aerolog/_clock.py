"""The board's clock: step rates, the time left in an epoch and in the run, and epoch durations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._track import Step

__all__ = ["RunClock"]


class RunClock:
    """Times of one board: when each stage's epoch began and how long each stage's last epoch took.

    The run's time left is the epoch's, plus the stages still to come in this epoch, plus every stage's
    last epoch duration for each epoch left (`epochs`, when known).
    """

    __slots__ = ("epochs", "spans", "starts", "t_epoch")

    def __init__(self, epochs: int | None) -> None:
        self.epochs = epochs
        self.t_epoch = 0.0  # when the last epoch of any stage ended (or the first gauge call)
        self.starts: dict[str, tuple[float, int]] = {}  # stage -> (time, mile) its epoch was first seen
        self.spans: dict[str, float] = {}  # stage -> seconds its last epoch took

    def rate(self, stage: str, m: int, now: float, step: Step | None) -> float | None:
        """Miles per second in the current epoch of `stage` (None until it can be told)."""
        if step is not None and step.stage == stage:
            return m / (now - step.t_start) if now > step.t_start else None
        start = self.starts.get(stage)
        if start is None:
            self.starts[stage] = (now, m)
            return None
        t0, m0 = start
        return (m - m0) / (now - t0) if m > m0 and now > t0 else None

    def run_left(
        self, stage: str, e: int, m: int, mpe: int, rate: float, stages: Sequence[str]
    ) -> float | None:
        """Seconds left in the run, or None when the number of epochs is unknown."""
        if self.epochs is None:
            return None
        spans = {**self.spans, stage: mpe / rate}
        later = stages[stages.index(stage) + 1 :] if stage in stages else []
        left = (mpe - m) / rate + sum(spans.get(s, 0.0) for s in later)
        return left + max(0, self.epochs - e) * sum(spans.get(s, 0.0) for s in stages)

    def epoch_done(self, stage: str, now: float) -> float:
        """Seconds since the last epoch end of any stage, kept as `stage`'s epoch duration."""
        secs = self.spans[stage] = now - self.t_epoch
        self.t_epoch = now
        return secs
