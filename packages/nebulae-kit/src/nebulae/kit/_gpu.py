"""GPU discovery and monitoring through NVML (nvidia-ml-py), degrading to an empty tool without a driver."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

from ._rank import get_rank
from ._validate import positive_int
from ._warnings import KitWarning

__all__ = ["GPUInfo", "GPUtil", "format_table", "query_gpus"]

_MIB = 1024 * 1024
_MAX_MONITOR_SECONDS = 12 * 3600


class GPUInfo(NamedTuple):
    """One GPU as NVML reports it; indexes like the original's ``(id, name, total_MiB, free_MiB)``.

    Attributes:
        index: NVML index (PCI bus order; equal to CUDA's with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``).
        name: product name, e.g. ``'NVIDIA H100 80GB HBM3'``.
        total: total memory in MiB.
        free: free memory in MiB at the time of the query.
        uuid: the NVML UUID, e.g. ``'GPU-5f1c...'``.
    """

    index: int  # type: ignore[assignment]  # the public field name (README's GPUInfo) shadows tuple.index
    name: str
    total: float
    free: float
    uuid: str


class GPUReading(NamedTuple):
    """A live reading used by ``python -m nebulae.kit gpus`` and by the monitor."""

    info: GPUInfo
    utilization: float | None
    temperature: float | None


def _pynvml() -> Any:
    import pynvml  # imported here: NVML is never touched at import time

    return pynvml


@contextmanager
def _nvml_session() -> Iterator[Any]:
    """Initialise NVML for the duration of a block; raises OSError-like errors to the caller."""
    nvml = _pynvml()
    nvml.nvmlInit()
    try:
        yield nvml
    finally:
        with suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def _as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_info(nvml: Any, index: int) -> tuple[Any, GPUInfo]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    info = GPUInfo(
        index=index,
        name=_as_text(nvml.nvmlDeviceGetName(handle)),
        total=memory.total / _MIB,
        free=memory.free / _MIB,
        uuid=_as_text(nvml.nvmlDeviceGetUUID(handle)),
    )
    return handle, info


def _start_nvml() -> tuple[Any, str | None]:
    """Initialise NVML: ``(pynvml, None)``, or ``(None, why NVML cannot be used here)``."""
    try:
        nvml = _pynvml()
    except ImportError as exc:  # nvidia-ml-py missing (a vendored copy without its dependency)
        return None, f"nvidia-ml-py is not installed ({exc})"
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        return None, f"NVML could not start: {exc}"
    return nvml, None


def query_gpus(*, with_usage: bool = False) -> tuple[list[GPUReading], str | None]:
    """Read every GPU once.

    Args:
        with_usage: also read utilisation (%) and temperature (°C); a failing read gives None.

    Returns:
        ``(readings, reason)``: the readings in NVML index order, and why NVML is unusable
        (None when it worked). A GPU whose basic query fails is left out with a warning.
    """
    nvml, reason = _start_nvml()
    if nvml is None:
        return [], reason
    readings: list[GPUReading] = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle, info = _read_info(nvml, index)
            except nvml.NVMLError as exc:
                warnings.warn(
                    f"GPU {index} left out: NVML could not read it ({exc})", KitWarning, stacklevel=3
                )
                continue
            utilization = temperature = None
            if with_usage:
                with suppress(nvml.NVMLError):
                    utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                with suppress(nvml.NVMLError):
                    temperature = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            readings.append(GPUReading(info, utilization, temperature))
    finally:
        with suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    return readings, None


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Render a bordered text table (``| a | b |`` rows between ``+---+`` rules)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)) + "|"

    return "\n".join([rule, line(headers), rule, *(line(r) for r in rows), rule])


def _time_weighted_mean(times: list[float], values: list[float]) -> float:
    """Trapezoid integral over the sample timestamps divided by the span; one sample is used as is."""
    if len(values) == 1 or times[-1] == times[0]:
        return sum(values) / len(values)
    area = 0.0
    for k in range(1, len(values)):
        area += (times[k] - times[k - 1]) * (values[k] + values[k - 1]) / 2.0
    return area / (times[-1] - times[0])


class GPUtil:
    """Find free GPUs and monitor temperature, utilisation and memory through NVML.

    Works without a driver or GPU: it then has ``gpus == []``, ``available()`` returns
    ``[]``, ``monitor()`` warns once and does nothing, and ``status()`` reports "no GPU".

    Attributes:
        gpus: the GPUs found at construction (``GPUInfo`` in index order).
        reason: why NVML could not be used (None when it could).
        stat: the last summary table returned by ``status()``.
        summary: ``{index: {'temperature': °C, 'utilization': %, 'memory': MiB}}`` from ``status()``.

    Example:
        >>> gt = GPUtil()
        >>> gt.available(ngpus=2, least_mem=4096)  # [] on a machine without GPUs
        []
    """

    def __init__(self) -> None:
        readings, self.reason = query_gpus()
        self.gpus: list[GPUInfo] = [r.info for r in readings]
        self.stat = ""
        self.summary: dict[int, dict[str, float]] = {}
        self._samples: dict[int, list[tuple[float, float, float, float]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned_no_gpu = False
        self._warned_sample = False

    def available(
        self,
        ngpus: int | None = None,
        least_mem: float = 2048,
        *,
        ngpu: int | None = None,
        exclude: Iterable[int | str] = (),
    ) -> list[GPUInfo]:
        """Choose GPUs with enough free memory.

        Among GPUs with at least ``least_mem`` MiB free, take the ``ngpus`` with the most free
        memory and return them sorted by index. Fewer qualifying GPUs → all that qualify
        (possibly ``[]``).

        Args:
            ngpus: how many GPUs to select (default 1). Alias: ``ngpu``.
            least_mem: the least free memory (MiB) a GPU must have.
            exclude: indices or UUIDs to leave out (e.g. GPUs leased by another job).

        Returns:
            A list of ``GPUInfo`` read now (free memory is live).

        Raises:
            TypeError: if both ``ngpus`` and ``ngpu`` are given, or a value has the wrong type.
            ValueError: if ``ngpus < 1`` or ``least_mem < 0``.
        """
        if ngpu is not None and ngpus is not None:
            raise TypeError("give 'ngpus' or its alias 'ngpu', not both")
        count = positive_int("ngpus", ngpus if ngpus is not None else (ngpu if ngpu is not None else 1))
        if isinstance(least_mem, bool) or not isinstance(least_mem, int | float):
            raise TypeError(f"'least_mem' must be a number of MiB (got {type(least_mem).__name__})")
        if least_mem < 0:
            raise ValueError(f"'least_mem' must be >= 0 MiB (got {least_mem})")
        if not self.gpus:
            return []
        excluded = set(exclude)
        readings, _ = query_gpus()
        candidates = [
            r.info
            for r in readings
            if r.info.free >= least_mem and r.info.index not in excluded and r.info.uuid not in excluded
        ]
        chosen = sorted(candidates, key=lambda g: (-g.free, g.index))[:count]
        return sorted(chosen, key=lambda g: g.index)

    @property
    def monitoring(self) -> bool:
        """Whether this instance's sampling thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def monitor(self, sec: int = 5) -> None:
        """Start sampling temperature, utilisation and used memory every ``sec`` seconds.

        A daemon thread of this instance polls NVML (no files, no child processes) until
        ``status()`` is called or 12 hours have passed. No-op on rank > 0.

        Args:
            sec: the sampling period in seconds, an int >= 1; below 5 a warning is given.

        Raises:
            TypeError: ``sec`` is not an int.
            ValueError: ``sec < 1``.
            RuntimeError: this instance is already monitoring.
        """
        positive_int("sec", sec)
        if get_rank() > 0:
            return
        if self.monitoring:
            raise RuntimeError(
                "GPUtil is already monitoring: call status() to stop it before monitor() again"
            )
        if not self.gpus:
            if not self._warned_no_gpu:
                self._warned_no_gpu = True
                warnings.warn(
                    f"no GPU to monitor ({self.reason or 'NVML found no device'}); monitor() does nothing",
                    KitWarning,
                    stacklevel=2,
                )
            return
        if sec < 5:
            warnings.warn(
                f"monitor(sec={sec}): sampling more often than every 5 s can disturb the statistics; "
                "use a larger period on machines with many GPUs",
                KitWarning,
                stacklevel=2,
            )
        self._samples = {g.index: [] for g in self.gpus}
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._sample_loop, args=(sec,), name="nebulae-gputil", daemon=True
        )
        self._thread.start()

    def _sample_loop(self, sec: int) -> None:
        nvml = _pynvml()
        try:
            with _nvml_session() as nvml:
                self._sample_until_stopped(nvml, sec)
        except (nvml.NVMLError, OSError) as exc:  # the driver went away after construction
            self._warn_sample(f"GPU monitoring stopped: NVML failed ({exc})")

    def _sample_until_stopped(self, nvml: Any, sec: int) -> None:
        deadline = time.monotonic() + _MAX_MONITOR_SECONDS
        while True:
            now = time.monotonic()
            for gpu in self.gpus:
                try:
                    handle = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
                    temp = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
                    util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                    used = nvml.nvmlDeviceGetMemoryInfo(handle).used / _MIB
                except nvml.NVMLError as exc:
                    self._warn_sample(
                        f"a sample of GPU {gpu.index} was skipped: NVML could not read it ({exc})"
                    )
                    continue
                self._samples[gpu.index].append((now, temp, util, used))
            if self._stop.wait(sec) or time.monotonic() >= deadline:
                return

    def _warn_sample(self, message: str) -> None:
        if not self._warned_sample:
            self._warned_sample = True
            warnings.warn(message, KitWarning, stacklevel=2)

    def status(self) -> str:
        """Stop this instance's monitoring and return the summary table.

        Each quantity is the time-weighted mean over the samples (trapezoid rule over their
        timestamps, divided by the span). The table is also kept in ``.stat`` (and returned by
        ``str(gputil)``) and the numbers in ``.summary``.

        Returns:
            The table ``GPU | Name | T.Celsius | V-Util | Memory``, or a "no GPU" line.

        Raises:
            RuntimeError: there are GPUs but ``monitor()`` was never called.
        """
        if not self.gpus:
            self.summary = {}
            self.stat = f"no GPU: nothing was monitored ({self.reason or 'NVML found no device'})"
            return self.stat
        if self._thread is None:
            raise RuntimeError("status() summarises a monitoring run: call monitor() first")
        self._stop.set()
        self._thread.join()
        self._thread = None
        summary: dict[int, dict[str, float]] = {}
        rows = []
        for gpu in self.gpus:
            samples = self._samples.get(gpu.index, [])
            if not samples:
                continue
            times = [s[0] for s in samples]
            temp, util, mem = (_time_weighted_mean(times, [s[k] for s in samples]) for k in (1, 2, 3))
            summary[gpu.index] = {"temperature": temp, "utilization": util, "memory": mem}
            rows.append([str(gpu.index), gpu.name, f"{temp:.1f}ºC", f"{util:.1f}%", f"{mem:.1f}MiB"])
        self.summary = summary
        self.stat = format_table(["GPU", "Name", "T.Celsius", "V-Util", "Memory"], rows)
        return self.stat

    def __str__(self) -> str:
        return self.stat

    def __repr__(self) -> str:
        return f"GPUtil(gpus={len(self.gpus)}, monitoring={self.monitoring})"
