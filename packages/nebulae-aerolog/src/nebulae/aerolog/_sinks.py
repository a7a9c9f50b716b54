"""Sinks: where a board sends every recorded value besides its own files (TensorBoard, MLflow, a callable).

A sink is called once per gauge call as ``sink(stage, values, step)``, `values` holding the step's
recorded metrics as floats and `step` the stage's global mile; it may have ``flush()`` (called at
every epoch end and by ``log()``) and ``close()`` (called by ``DashBoard.close()``). The writer
libraries are imported on the first value, so that building a sink costs nothing on ranks > 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._validate import check_callable

__all__ = [
    "MLflowSink",
    "Sink",
    "TensorBoardSink",
    "check_sinks",
    "close_sinks",
    "flush_sinks",
    "send",
    "tag",
]

Sink = Callable[[str, Mapping[str, float], int], object]


def tag(stage: str, name: str) -> str:
    """The name a metric takes outside: ``loss/TRAIN``, so that dashboards group a metric's stages."""
    return f"{name}/{stage}"


def _missing(extra: str, module: str) -> ImportError:
    return ImportError(
        f"{module} is needed for this sink; install it with: pip install 'nebulae-aerolog[{extra}]'"
    )


def check_sinks(sinks: Iterable[object] | None) -> list[Sink]:
    """`sinks` as a list of callables.

    Raises:
        TypeError: `sinks` is not a list of callables.
    """
    if sinks is None:
        return []
    if isinstance(sinks, str | bytes) or not isinstance(sinks, Iterable):
        raise TypeError(f"'sinks' must be a list of sinks or callables (got {type(sinks).__name__})")
    return [check_callable(f"sinks[{i}]", s, "(stage, values, step) -> None") for i, s in enumerate(sinks)]


def send(sinks: list[Sink], plan: Mapping[str, Any], entry: Mapping[str, Any], stage: str, step: int) -> None:
    """Hand the values that one gauge call recorded to every sink."""
    values = {name: plan[name].vals[-1] for name in entry if plan[name].recorded}
    if values:
        for sink in sinks:
            sink(stage, values, step)


def flush_sinks(sinks: list[Sink]) -> None:
    for sink in sinks:
        flush = getattr(sink, "flush", None)
        if flush is not None:
            flush()


def close_sinks(sinks: list[Sink]) -> None:
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is not None:
            close()


class TensorBoardSink:
    """Write every recorded value into TensorBoard event files under `logdir` (tags ``metric/STAGE``).

    Uses the ``tensorboard`` package's own event writer (no torch, no TensorFlow): install the extra
    ``nebulae-aerolog[tensorboard]``. One event per gauge call carries all of its values.

    Args:
        logdir: the directory TensorBoard reads (``tensorboard --logdir``), created on the first value.
        flush_secs: at most this many seconds pass before written values reach the disk.

    Raises:
        ImportError: on the first value, when tensorboard is not installed (naming the extra).

    Example:
        >>> board = DashBoard("./aerolog", sinks=[TensorBoardSink("./runs/exp1")])  # doctest: +SKIP
    """

    def __init__(self, logdir: str | os.PathLike[str], *, flush_secs: float = 10.0) -> None:
        self.logdir = os.fspath(logdir)
        self.flush_secs = flush_secs
        self._writer: Any = None
        self._event: Any = None
        self._summary: Any = None
        self._value: Any = None

    def _open(self) -> None:
        try:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise _missing("tensorboard", "tensorboard") from None
        import weakref

        os.makedirs(self.logdir, exist_ok=True)
        self._writer = EventFileWriter(self.logdir, flush_secs=self.flush_secs)
        self._event, self._summary, self._value = Event, Summary, Summary.Value
        # values written but not flushed reach the disk when the program exits without close()
        weakref.finalize(self, self._writer.close)

    def __call__(self, stage: str, values: Mapping[str, float], step: int) -> None:
        if self._writer is None:
            self._open()
        value = self._value
        summary = self._summary(value=[value(tag=tag(stage, k), simple_value=v) for k, v in values.items()])
        self._writer.add_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Write what waits and close the event file; a later value opens a new one in `logdir`."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


_MLFLOW_KEY = r"[^\w\-. /]"  # characters MLflow refuses in a metric name
_MLFLOW_BATCH = 1000  # the most metrics one MLflow log_batch call takes


def _send_batch(client: Any, run_id: str, pending: list[Any]) -> None:
    while pending:
        batch, pending[:] = pending[:_MLFLOW_BATCH], pending[_MLFLOW_BATCH:]
        client.log_batch(run_id, metrics=batch)


class MLflowSink:
    """Log every recorded value as an MLflow metric (``metric/STAGE``, with the global mile as its step).

    Uses MLflow's tracking client: install the extra ``nebulae-aerolog[mlflow]`` (``mlflow-skinny``).
    Values are sent in batches, at every epoch end, ``log()`` and ``close()``, and when 1000 are waiting.

    Args:
        experiment: the experiment to create the run in (made if missing); unused with `run_id`.
        run_id: log into this existing run (e.g. ``mlflow.active_run().info.run_id``) instead of a new one.
        run_name: the name of the run created.
        tracking_uri: where MLflow stores runs (a server URL, ``sqlite:///mlflow.db``, a folder); None
            uses MLflow's default (``MLFLOW_TRACKING_URI``).

    Raises:
        ImportError: on the first value, when MLflow is not installed (naming the extra).

    Example:
        >>> board = DashBoard(sinks=[MLflowSink("digits", tracking_uri="sqlite:///mlflow.db")])  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str = "nebulae",
        *,
        run_id: str | None = None,
        run_name: str | None = None,
        tracking_uri: str | os.PathLike[str] | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_id = run_id
        self.run_name = run_name
        self.tracking_uri = None if tracking_uri is None else os.fspath(tracking_uri)
        self._client: Any = None
        self._metric: Any = None
        self._own_run = False
        self._pending: list[Any] = []
        self._key: Any = None

    def _open(self) -> None:
        try:
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow (or mlflow-skinny)") from None
        import re
        import weakref

        client = MlflowClient(tracking_uri=self.tracking_uri)
        if self.run_id is None:
            found = client.get_experiment_by_name(self.experiment)
            exp_id = found.experiment_id if found is not None else client.create_experiment(self.experiment)
            self.run_id = client.create_run(exp_id, run_name=self.run_name).info.run_id
            self._own_run = True
        self._client, self._metric, self._key = client, Metric, re.compile(_MLFLOW_KEY)
        # values still waiting are sent when the program exits without close()
        weakref.finalize(self, _send_batch, client, self.run_id, self._pending)

    def __call__(self, stage: str, values: Mapping[str, float], step: int) -> None:
        if self._client is None:
            self._open()
        ms = int(time.time() * 1000)
        metric = self._metric
        self._pending.extend(
            metric(self._key.sub("_", tag(stage, k)), v, ms, step) for k, v in values.items()
        )
        if len(self._pending) >= _MLFLOW_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._client is not None:
            _send_batch(self._client, self.run_id, self._pending)  # type: ignore[arg-type]

    def close(self) -> None:
        """Send what waits and end the run this sink created (a run passed as `run_id` stays open)."""
        if self._client is not None:
            self.flush()
            if self._own_run:
                self._client.set_terminated(self.run_id)
                self._own_run = False
