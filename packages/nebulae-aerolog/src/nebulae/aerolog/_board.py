"""DashBoard: records metrics on every step and draws a progress line and a live curve in the terminal."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from time import perf_counter
from typing import Any, TypeVar

from ._clock import RunClock
from ._curve import curve2str
from ._format import call_inviz
from ._history import History
from ._lines import WAIT, fragments, pick_curve, progress_line, summary_line
from ._log import BoardLog
from ._rank import get_rank
from ._screen import Screen, clip, visible_len
from ._series import Series, to_number
from ._settings import DEFAULTS, one_of, resolve_settings
from ._sinks import Sink, close_sinks, flush_sinks, send
from ._track import AUTO, UNSIZED, Step, StepSlot, steps_of, tracked
from ._validate import check_counters, check_int, check_str

__all__ = ["DashBoard"]

T = TypeVar("T")

_TTY_REFRESH = 0.1  # default seconds between redraws on a terminal (and in wipe mode)
_PLAIN_REFRESH = 10.0  # ... and between plain lines when stdout is not a terminal


class DashBoard(BoardLog):
    """A terminal dashboard for training loops, as light as a progress bar.

    Every :meth:`gauge` call is recorded (per-mile moving averages and per-epoch means of each raw or
    percent metric) and handed to the `sinks`. Drawing is throttled by time: on a terminal the board
    redraws in place a progress line (done/total, rate, ETA) and an ASCII curve of one metric; in a
    Jupyter kernel it does the same in one output area per cell; elsewhere (a file, a pipe, CI logs) it
    prints plain lines, at most one per `refresh` seconds. Epoch summaries are always printed. Only
    rank 0 (env ``NEB_RANK``, else ``RANK``) does anything; on other ranks every method is a no-op.

    Args:
        log_path: directory for :meth:`log` output, created on demand (alias ``log_dir``).
        window: moving-average window of the per-mile curves, >= 1.
        divisor: rows of the ASCII curve, >= 1.
        span: columns of the ASCII curve, >= 10.
        format: ``{metric: (fmt, mode)}``; unlisted metrics use ``('.4f', 'raw')``. Modes: ``'raw'``
            (fmt is a %-spec without '%', e.g. ``'.3f'``), ``'percent'`` (value x 100 with '%'),
            ``'tailor'`` (fmt is ``value -> str``; not recorded) and ``'inviz'`` (fmt is
            ``(stage, epoch, mile, mpe, value) -> None``, called on every gauge call and with
            ``mile=-1`` at epoch end; shows nothing, not recorded).
        refresh: minimum seconds between redraws; None means 0.1 on a terminal, 10 otherwise.
        config: a dict of the arguments above, instead of passing them.
        epochs: the number of epochs of the run, when known: the progress line then shows its ETA too.
        sinks: where every recorded value goes as well: :class:`TensorBoardSink`, :class:`MLflowSink`,
            or any callable ``(stage, {metric: value}, global_mile) -> None`` (W&B, a database).

    Raises:
        ValueError: an argument is out of range, or `format` holds an unknown mode or a bad %-spec.
        TypeError: an argument has a wrong type, both `log_path` and `log_dir`, or `config` together
            with explicit arguments.

    Example:
        >>> board = DashBoard("./aerolog", window=10, format={"acc": (".2f", "percent")})
        >>> for epoch in range(2):  # doctest: +SKIP
        ...     for mile, batch in enumerate(board.track(loader, stage="TRAIN", epoch=epoch)):
        ...         board.gauge({"loss": step(batch), "acc": accuracy})
        >>> board.log()  # doctest: +SKIP
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str] = "./aerolog",
        window: int = 1,
        divisor: int = 10,
        span: int = 30,
        format: Mapping[str, Any] | None = None,
        *,
        refresh: float | None = None,
        config: Mapping[str, Any] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        epochs: int | None = None,
        sinks: Iterable[Sink] | None = None,
    ) -> None:
        log_path = one_of("log_path", log_path, DEFAULTS["log_path"], "log_dir", log_dir)
        given: dict[str, Any] = dict(log_path=log_path, window=window, divisor=divisor, span=span)
        given.update(format=format, refresh=refresh, epochs=epochs, sinks=sinks)
        settings = resolve_settings(given, config)
        self.log_path = settings.log_path
        self.window, self.divisor, self.span = settings.window, settings.divisor, settings.span
        self.refresh, self.epochs = settings.refresh, settings.epochs
        self._sinks = settings.sinks
        self._active = get_rank() <= 0
        if self._active:
            os.makedirs(self.log_path, exist_ok=True)
        self._history = History(settings.formats, self.window)
        self._plans = self._history.plans  # read on every gauge call: one lookup less
        self._series = self._history.series
        self._reported: set[str] = set()  # record files already warned about
        self._min_refresh = _TTY_REFRESH if self.refresh is None else self.refresh
        self._last_draw = -math.inf
        self._t_first: float | None = None
        self._clock = RunClock(self.epochs)
        self._screen = Screen()
        self._steps = StepSlot(
            self._screen.settle, self._end_unsized
        )  # the step of the track() loop running now

    def gauge(
        self,
        entry: Mapping[str, Any],
        mile: int | None = None,
        epoch: int | None = None,
        mpe: int | None = None,
        stage: str | None = None,
        interval: int | None = None,
        duration: float | None = None,
        *,
        plot: bool = True,
        wipe: bool = False,
        flush: int = 0,
        is_global: bool = True,
        is_elastic: bool = False,
        in_loop: Sequence[int] = (-1,),
        last_for: int = 1,
    ) -> None:
        """Record one step and, when due, redraw the board; print the summary at each epoch end.

        Args:
            entry: ``{metric: number}`` (0-d arrays and 1-element tensors are accepted); tailor and
                inviz metrics may hold anything their callable accepts.
            mile: 0-based step within the epoch.
            epoch: 0-based epoch.
            mpe: miles per epoch, >= 1.
            stage: a label such as ``'TRAIN'`` or ``'DEV'``.
            interval: redraw at most every `interval` miles (default 1).
            duration: seconds per step, shown as ``%.3f`` (``--:--`` when None).
            plot: draw the ASCII curve above the progress line (terminal only).
            wipe: redraw a single line with ``\\r`` (notebooks); requires ``plot=False``.
            flush: extra lines to move up when redrawing in place.
            is_global: the curve samples the whole history (True) or shows the last `span` miles.
            is_elastic: the curve gives more rows to busy value ranges.
            in_loop: indices of `entry` metrics whose curves are shown in turn (-1: the first recorded).
            last_for: how many redraw intervals each curve of `in_loop` stays.

        Inside :meth:`track`, every argument but `entry` may be omitted (then `duration` is the step
        time and the step's data-wait share is recorded as the percent metric ``data_wait``).

        Raises:
            TypeError: `entry` is not a dict, a recorded value is not a number, or `mile`, `epoch`,
                `mpe` or `stage` is omitted outside track().
            ValueError: a counter is out of range, or `plot` and `wipe` are both true.
        """
        if not self._active:
            return
        step = self._steps.current
        base = -1  # miles of the stage before this epoch, when track() cannot tell the epoch's length
        if mile is None and step is not None:
            now = perf_counter()
            mile = step.mile
            epoch = step.epoch if epoch is None else epoch
            if mpe is None:
                mpe, base = step.mpe, step.base
            stage = step.stage if stage is None else stage
            interval = step.interval if interval is None else interval
            step.gauged = True
            if entry is not AUTO:
                step.user = True
            if step.timed:
                spent = now - step.t0
                if duration is None:
                    duration = spent
                wait = step.wait / spent if spent > 0 else 0.0
                entry = {**entry, WAIT: wait} if entry else {WAIT: wait}
        else:
            now = perf_counter()
        if interval is None:
            interval = 1
        if not (
            type(entry) is dict
            and type(mile) is int
            and type(epoch) is int
            and type(mpe) is int
            and type(interval) is int
            and type(stage) is str
            and mile >= 0
            and epoch >= 0
            and mpe >= 1
            and interval >= 1
        ):
            entry, mile, epoch, mpe, stage, interval = check_counters(
                entry, mile, epoch, mpe, stage, interval
            )
        if wipe and plot:
            raise ValueError(
                "'wipe' redraws a single line and cannot draw the curve: pass plot=False with wipe=True"
            )
        m, e = mile + 1, epoch + 1
        g = epoch * mpe + m if base < 0 else base + m
        if self._t_first is None:
            self._t_first = self._clock.t_epoch = now
        plan = self._plans.get(stage)
        if plan is None:
            plan = self._plans[stage] = {}
        new_epoch = m == 1
        if new_epoch:
            self._clock.starts[stage] = (now, 1)
        for name, value in entry.items():
            rec = plan.get(name)
            if rec is None:
                rec = self._history.add(plan, stage, name)
            if rec.recorded:
                if type(value) is not float:
                    value = to_number(name, value)
                if new_epoch or rec.epoch != e:
                    rec.start, rec.epoch = len(rec.vals), e
                rec.vals.append(value)
                rec.xs.append(g)
            elif rec.mode == "inviz":
                call_inviz(rec.fmt, name, stage, e, m, mpe, value)
            rec.last = value
        if self._sinks:
            send(self._sinks, plan, entry, stage, g)
        if m % mpe == 0:
            self._epoch_end(plan, entry, stage, e, mpe, e * mpe, now)
        elif m % interval == 0 and now - self._last_draw >= self._min_refresh:
            self._redraw(plan, entry, stage, e, m, mpe, duration, now, plot, wipe, flush, is_global, is_elastic,
                         in_loop, last_for, interval)  # fmt: skip

    def read(self, entry: str, stage: str | None = None, epoch: int = -1) -> float | None:
        """Return the epoch average of `entry` in `stage` for a 1-based `epoch` (-1: the latest).

        `entry` may also name the series as recorded, ``"STAGE:metric"`` (the CSV header), with no stage.
        Epochs of a recorded run merged by :meth:`log` come first. Returns None on ranks > 0.

        Raises:
            ValueError: `epoch` is 0 or beyond the epochs recorded.
            KeyError: nothing was recorded per epoch under that name; the message lists what was, as
                ``read('loss', 'TRAIN')`` calls.

        Example:
            >>> board.read("loss", "TRAIN") == board.read("TRAIN:loss")  # doctest: +SKIP
            True
        """
        if not self._active:
            return None
        check_str("entry", entry, "loss")
        if stage is not None:
            check_str("stage", stage, "TRAIN")
        epoch = check_int("epoch", epoch, None)
        if epoch == 0:
            raise ValueError("'epoch' is 1-based (-1 for the latest); got 0")
        return self._history.epoch_average(entry, stage, epoch)

    def record(self, entry: str, stage: str, value: Sequence[float] | float) -> None:
        """Store a per-epoch series computed elsewhere under ``"{stage}:{entry}"`` (logged and readable).

        Raises:
            KeyError: that key already holds a series.
            TypeError: a value is not a number.
        """
        if not self._active:
            return
        self._history.store(stage, entry, value)

    def state_dict(self) -> dict[str, Any]:
        """The recorded curves and counters, for a checkpoint: resumed with :meth:`load_state_dict`, a run
        killed mid-epoch continues its curves, epoch averages and CSVs as if never stopped.

        The dict holds only str, int, float, list and dict (lists copied), so it loads with
        ``torch.load(weights_only=True)`` and goes through ``json.dumps`` (nan and inf values included,
        with the default ``allow_nan=True``). It keeps every recorded value with its global mile, the
        epoch averages, where the current epoch began, the series of a run merged by ``log(record=)``,
        the order of stages and metrics, and each stage's last epoch duration (the run's ETA). Settings
        (``window``, ``format``, sinks) are not part of it: they come from the board that loads it. On
        ranks > 0 it holds no series, as those boards record nothing.

        Example:
            >>> tm.drop(craft, ..., state={"board": board})  # doctest: +SKIP
        """
        from ._state import dump_state  # imported when first needed: checkpoints are rare, imports are not

        return dump_state(self._history, self._clock.spans)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace what this board recorded with a :meth:`state_dict`: later gauge() calls continue from it.

        Gauge the run from the mile after the one saved (the same `mile`, `epoch` and `mpe` as the run
        would have used); the epoch in progress then averages the values from before and after the
        stop. `state` is checked whole before anything changes. On ranks > 0 it is checked and dropped.

        Raises:
            TypeError: `state`, or an entry of it, has a wrong type (the message names the key).
            ValueError: `state` is of another format or version, lacks a key or does not fit together.

        Example:
            >>> board.load_state_dict(torch.load(path, weights_only=True)["board"])  # doctest: +SKIP
        """
        from ._state import load_state

        load_state(state, self._history, self._clock.spans, apply=self._active)

    def track(
        self, iterable: Iterable[T], stage: str, epoch: int, mpe: int | None = None, *, interval: int = 1
    ) -> Iterator[T]:
        """Yield the items of `iterable` as the miles of one epoch, measuring where each step's time goes.

        Each step is split into the wait inside ``next()`` (data loading) and the loop body. Inside the
        loop, ``gauge(entry)`` needs no other argument; a step whose body does not gauge is gauged with
        ``{}``. Progress lines show items/s, and the wait share is recorded as the percent metric
        ``data_wait``. For steps of a few microseconds, only one step in many is timed and gauged, so
        that tracking stays cheaper than the loop.

        Args:
            iterable: the data, e.g. a Tank or a DataLoader.
            stage: a label such as ``'TRAIN'``.
            epoch: the 0-based epoch.
            mpe: miles per epoch; by default the iterable's ``MPE`` (a Tank's batches per epoch), else
                its ``len()``, else unknown: no total and no ETA, and the epoch ends with the iterable.
            interval: redraw at most every `interval` miles.

        Raises:
            TypeError: an argument has a wrong type.
            ValueError: `mpe` < 1 (e.g. an empty iterable), `epoch` < 0 or `interval` < 1.
        """
        check_str("stage", stage, "TRAIN")
        epoch = check_int("epoch", epoch, 0)
        interval = check_int("interval", interval, 1)
        if mpe is None:
            mpe = steps_of(iterable)
        if mpe is not None:
            mpe = check_int("mpe", mpe, 1)
        if not self._active:
            return iter(iterable)
        if mpe is not None:
            return tracked(self._steps, self.gauge, iterable, Step(stage, epoch, mpe, interval))
        done = [rec.xs[-1] for rec in self._plans.get(stage, {}).values() if rec.recorded and rec.xs]
        step = Step(stage, epoch, UNSIZED, interval, base=max(done, default=0))
        return tracked(self._steps, self.gauge, iterable, step)

    def close(self) -> None:
        """Move the cursor below a board drawn in place (drawing resumes below at the next gauge) and close
        the sinks that can be closed, which sends what they hold."""
        if self._active:
            self._screen.settle()
            close_sinks(self._sinks)

    def __enter__(self) -> DashBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _redraw(
        self,
        plan: dict[str, Series],
        entry: Mapping[str, Any],
        stage: str,
        e: int,
        m: int,
        mpe: int,
        duration: float | None,
        now: float,
        plot: bool,
        wipe: bool,
        flush: int,
        is_global: bool,
        is_elastic: bool,
        in_loop: Sequence[int],
        last_for: int,
        interval: int,
    ) -> None:
        screen = self._screen
        stream = screen.stream()
        tty = screen.is_tty(stream)
        live = tty or screen.notebook is not None
        if not live and not wipe and self.refresh is None and now - self._last_draw < _PLAIN_REFRESH:
            return
        self._last_draw = now
        rate = self._clock.rate(stage, m, now, self._steps.current)
        total = None if mpe == UNSIZED else mpe
        left = None
        if rate is not None and total is not None:
            left = self._clock.run_left(stage, e, m, total, rate, list(self._plans))
        line = progress_line(e, m, total, duration, rate, stage, fragments(plan, entry), tty, left)
        if wipe:
            screen.wipe(stream, line)
        elif not live:
            screen.lines(stream, line + "\n")
        else:
            rec = pick_curve(plan, list(entry), m, in_loop, interval * max(1, last_for)) if plot else None
            lines = []
            if rec is not None:
                chart = curve2str(
                    rec.smoothed(), self.divisor, self.span, is_global, is_elastic, "mile", rec.key
                )
                lines = chart.split("\n")
            lines.append(line)
            screen.frame(stream, lines, screen.width(stream, len(entry)), int(flush))

    def _epoch_end(
        self,
        plan: dict[str, Series],
        entry: Mapping[str, Any],
        stage: str,
        e: int,
        mpe: int,
        miles: int,
        now: float,
    ) -> None:
        averages: dict[str, float] = {}
        for name, rec in plan.items():
            if rec.recorded:
                mean = rec.close_epoch(e)
                if mean is not None:
                    averages[name] = mean
            elif rec.mode == "inviz" and name in entry:
                call_inviz(rec.fmt, name, stage, e, -1, mpe, rec.last)
        secs = self._clock.epoch_done(stage, now)
        shown = dict.fromkeys([*entry, *averages])
        rate = mpe / secs if self._steps.current is not None and secs > 0 else None
        body = summary_line(e, miles, secs, rate, stage, fragments(plan, shown, averages))
        screen = self._screen
        stream = screen.stream()
        if screen.is_tty(stream):
            body = clip(body, screen.width(stream, len(entry)))
        rule = "+" + "-" * (visible_len(body) - 2) + "+"
        screen.lines(stream, f"{rule}\n{body}\n{rule}\n")
        flush_sinks(self._sinks)

    def _end_unsized(self, step: Step, miles: int) -> None:
        """End the epoch of a track() loop over an iterable of unknown length, after its last item."""
        plan = self._plans.get(step.stage)
        if plan is not None:
            self._epoch_end(plan, {}, step.stage, step.epoch + 1, miles, step.base + miles, perf_counter())

    def write(self, text: object) -> None:
        """Print `text` above the board without garbling it; the board is drawn again below it.

        Example:
            >>> board.write(f"saved checkpoint {path}")  # doctest: +SKIP
        """
        if self._active:
            self._screen.write(text)

    @contextlib.contextmanager
    def redirect(self) -> Iterator[DashBoard]:
        """Route ``sys.stdout``, ``sys.stderr`` and root-logger stream handlers on them through :meth:`write`.

        Prints and log records then appear above the board, line by line; everything is restored on exit.

        Example:
            >>> with board.redirect():  # doctest: +SKIP
            ...     for batch in board.track(loader, stage="TRAIN", epoch=0):
            ...         print("this line stays above the board")
        """
        if not self._active:
            yield self
            return
        with self._screen.redirect():
            yield self
