"""DashBoard.track(): an iterable wrapper that splits each step into waiting for data and the loop body."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import Any, TypeVar

__all__ = ["AUTO", "UNSIZED", "Step", "StepSlot", "steps_of", "tracked"]

T = TypeVar("T")

AUTO: dict[str, Any] = {}  # the entry of the gauge call made for a step whose body did not gauge
_BUDGET = 100e-6  # seconds of loop work between two timed steps when steps are tiny
_MAX_STRIDE = 1024
# the miles per epoch of an iterable of unknown length: so large that no mile ends the epoch, which
# ends when the iterable is exhausted
UNSIZED = 1 << 62


def steps_of(iterable: object) -> int | None:
    """The steps one pass over `iterable` takes: its ``MPE`` (a Tank's batches per epoch, not its samples),
    else its ``len()``, else None (unknown)."""
    mpe = getattr(iterable, "MPE", None)
    if mpe is not None:
        return mpe
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


class Step:
    """What track() knows about the current step; gauge() reads it to fill in omitted arguments."""

    __slots__ = (
        "base",
        "epoch",
        "gauged",
        "interval",
        "mile",
        "mpe",
        "stage",
        "t0",
        "t_start",
        "timed",
        "user",
        "wait",
    )

    def __init__(self, stage: str, epoch: int, mpe: int, interval: int, base: int = -1) -> None:
        self.stage, self.epoch, self.mpe, self.interval = stage, epoch, mpe, interval
        self.base = base  # miles of the stage before this epoch when `mpe` is UNSIZED, else -1
        self.mile = -1
        self.t0 = self.t_start = perf_counter()
        self.wait = 0.0
        self.timed = True  # False while the step is not timed (see the stride below)
        self.gauged = False
        self.user = False  # the loop body calls gauge() itself


class StepSlot:
    """The step of the track() loop running now (None outside one), shared by a board and its loops.

    Loops nest: entering one keeps the outer step, leaving it restores that step and calls `settle`, which
    moves the cursor below a board drawn in place.
    """

    __slots__ = ("_settle", "current", "finish")

    def __init__(self, settle: Callable[[], None], finish: Callable[[Step, int], None]) -> None:
        self.current: Step | None = None
        self._settle = settle
        self.finish = finish  # ends the epoch of an UNSIZED step after that many miles

    def enter(self, step: Step) -> Step | None:
        outer, self.current = self.current, step
        return outer

    def leave(self, outer: Step | None) -> None:
        self.current = outer
        self._settle()


def tracked(
    slot: StepSlot, gauge: Callable[[dict[str, Any]], None], iterable: Iterable[T], step: Step
) -> Iterator[T]:
    """Yield the items of `iterable`, timing each step and gauging it when the body did not.

    When steps take only a few microseconds and the body does not gauge, timing every one of them
    would cost more than the loop: only one step in `stride` is then timed and gauged, `stride` chosen
    so that about 100 us of work passes between two timed steps. The last mile of each epoch is always
    timed, so epoch summaries are never skipped.
    """
    outer = slot.enter(step)
    it = iter(iterable)
    nxt = it.__next__
    pc = perf_counter
    mile, mpe, stride = 0, step.mpe, 1
    mark_t, mark_mile = pc(), 0
    try:
        while True:
            t0 = pc()
            try:
                item = nxt()
            except StopIteration:
                if step.mpe == UNSIZED and mile:
                    slot.finish(step, mile)
                return
            step.wait = pc() - t0
            step.t0, step.mile, step.timed, step.gauged = t0, mile, True, False
            yield item
            if not step.gauged:
                gauge(AUTO)
            mile += 1
            if step.user:
                continue
            now = pc()
            per_step = (now - mark_t) / (mile - mark_mile)
            mark_t, mark_mile = now, mile
            stride = min(_MAX_STRIDE, max(1, int(_BUDGET / per_step))) if per_step > 0 else _MAX_STRIDE
            todo = min(stride - 1, (mpe - 1 - mile) % mpe)
            if todo > 0:
                step.timed = False
                step.mile = mile - 1
                for step.mile, item in zip(range(mile, mile + todo), it, strict=False):
                    yield item
                mile = step.mile + 1
    finally:
        slot.leave(outer)
