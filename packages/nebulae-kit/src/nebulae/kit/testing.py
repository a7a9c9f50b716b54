"""A scripted NVML for tests on machines without a GPU, and a recorder of the real one.

``fake_nvml`` replaces the ``pynvml`` functions that Nebulae calls with ones that answer
like the real library: memory in bytes (``c_nvmlMemory_t``), names and UUIDs as ``str``,
utilisation as ``c_nvmlUtilization_t``, temperatures as int °C, and failures as the real
``pynvml.NVMLError`` subclasses with their codes. ``record_nvml`` writes what the real NVML
returns as JSON, which ``load_record`` turns back into ``FakeGPU`` objects to replay.

Example:
    >>> from nebulae.kit import GPUtil
    >>> from nebulae.kit.testing import FakeGPU, fake_nvml
    >>> with fake_nvml([FakeGPU(free_mib=30000), FakeGPU(free_mib=1000)]):
    ...     [g.index for g in GPUtil().available(ngpus=2, least_mem=2048)]
    [0]
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeGPU", "fake_nvml", "load_record", "record_nvml"]

_MIB = 1024 * 1024

# every pynvml function Nebulae may call; all are replaced while a fake is active
_PATCHED = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPciInfo",
)


@dataclass
class FakeGPU:
    """One scripted GPU.

    Args:
        name: product name as NVML returns it.
        uuid: NVML UUID; a distinct one is made from the index when empty.
        total_mib: total memory (MiB); reported in bytes like NVML.
        free_mib: free memory (MiB).
        utilization: GPU utilisation in %.
        temperature: °C.
        pci_bus_id: bus id string.
        fail: query name → NVML error code, e.g. ``{"temperature": pynvml.NVML_ERROR_UNKNOWN}``;
            names are ``handle``, ``name``, ``uuid``, ``memory``, ``utilization``, ``temperature``, ``pci``.
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = ""
    total_mib: float = 81559.0
    free_mib: float = 81000.0
    utilization: int = 0
    temperature: int = 30
    pci_bus_id: str = ""
    fail: dict[str, int] = field(default_factory=dict)

    @property
    def used_mib(self) -> float:
        return self.total_mib - self.free_mib


class _Handle:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}>"


class _FakeLibrary:
    """The replacement functions, bound to one scripted machine."""

    def __init__(self, nvml: Any, gpus: Sequence[FakeGPU], driver: bool, driver_version: str) -> None:
        self.nvml = nvml
        self.gpus = list(gpus)
        self.driver = driver
        self.driver_version = driver_version
        self.init_count = 0
        self.lock = threading.Lock()
        for k, gpu in enumerate(self.gpus):
            if not gpu.uuid:
                gpu.uuid = f"GPU-00000000-0000-4000-8000-{k:012d}"
            if not gpu.pci_bus_id:
                gpu.pci_bus_id = f"00000000:{0x18 + k:02X}:00.0"

    def _error(self, code: int) -> Exception:
        return self.nvml.NVMLError(code)

    def _require_init(self) -> None:
        if self.init_count <= 0:
            raise self._error(self.nvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: Any, query: str) -> FakeGPU:
        self._require_init()
        gpu = self.gpus[handle.index]
        if query in gpu.fail:
            raise self._error(gpu.fail[query])
        return gpu

    # -- the pynvml surface ------------------------------------------------------------
    def nvmlInit(self) -> None:
        if not self.driver:
            # what nvidia-ml-py raises when libnvidia-ml.so cannot be loaded
            raise self._error(self.nvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        with self.lock:
            self.init_count += 1

    def nvmlShutdown(self) -> None:
        with self.lock:
            self._require_init()
            self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._require_init()
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._require_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._require_init()
        if not 0 <= index < len(self.gpus):
            raise self._error(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        handle = _Handle(index)
        self._gpu(handle, "handle")
        return handle

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: Any = None) -> Any:
        gpu = self._gpu(handle, "memory")
        memory = self.nvml.c_nvmlMemory_t()
        memory.total = int(gpu.total_mib * _MIB)
        memory.free = int(gpu.free_mib * _MIB)
        memory.used = int(gpu.used_mib * _MIB)
        return memory

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Any:
        gpu = self._gpu(handle, "utilization")
        rates = self.nvml.c_nvmlUtilization_t()
        rates.gpu = int(gpu.utilization)
        rates.memory = 0
        return rates

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu(handle, "temperature")
        if sensor != self.nvml.NVML_TEMPERATURE_GPU:
            raise self._error(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(gpu.temperature)

    def nvmlDeviceGetPciInfo(self, handle: _Handle) -> Any:
        gpu = self._gpu(handle, "pci")
        info = self.nvml.c_nvmlPciInfo_t()
        info.busId = gpu.pci_bus_id.encode()
        return info


@contextmanager
def fake_nvml(
    gpus: Sequence[FakeGPU] = (),
    *,
    driver: bool = True,
    driver_version: str = "550.54.15",
) -> Iterator[_FakeLibrary]:
    """Replace pynvml's functions with a scripted machine for the duration of the block.

    Args:
        gpus: the GPUs, in NVML index order (empty: a driver without devices).
        driver: False makes ``nvmlInit`` fail as on a machine without the NVIDIA driver.
        driver_version: what ``nvmlSystemGetDriverVersion`` returns.

    Yields:
        The fake library; its ``gpus`` list may be edited inside the block (e.g. to free memory).
    """
    import pynvml

    fake = _FakeLibrary(pynvml, gpus, driver, driver_version)
    saved = {name: getattr(pynvml, name) for name in _PATCHED}
    try:
        for name in _PATCHED:
            setattr(pynvml, name, getattr(fake, name))
        yield fake
    finally:
        for name, function in saved.items():
            setattr(pynvml, name, function)


def record_nvml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Query the real NVML and write what it returned as JSON (for ``load_record``).

    Returns:
        The record that was written.
    """
    import pynvml

    pynvml.nvmlInit()
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "uuid": pynvml.nvmlDeviceGetUUID(handle),
                    "memory_bytes": {"total": memory.total, "free": memory.free, "used": memory.used},
                    "utilization_percent": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                    "temperature_celsius": pynvml.nvmlDeviceGetTemperature(
                        handle, pynvml.NVML_TEMPERATURE_GPU
                    ),
                    "pci_bus_id": pynvml.nvmlDeviceGetPciInfo(handle).busId,
                }
            )
        record = {"driver_version": pynvml.nvmlSystemGetDriverVersion(), "devices": devices}
    finally:
        pynvml.nvmlShutdown()
    record = json.loads(json.dumps(record, default=lambda v: v.decode() if isinstance(v, bytes) else str(v)))
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle_out:
        json.dump(record, handle_out, indent=2)
        handle_out.flush()
        os.fsync(handle_out.fileno())
    os.replace(tmp, path)
    return record


def load_record(path: str | os.PathLike[str]) -> tuple[list[FakeGPU], str]:
    """Turn a ``record_nvml`` JSON file into ``(gpus, driver_version)`` for ``fake_nvml``."""
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    gpus = [
        FakeGPU(
            name=d["name"],
            uuid=d["uuid"],
            total_mib=d["memory_bytes"]["total"] / _MIB,
            free_mib=d["memory_bytes"]["free"] / _MIB,
            utilization=d["utilization_percent"],
            temperature=d["temperature_celsius"],
            pci_bus_id=d["pci_bus_id"],
        )
        for d in sorted(record["devices"], key=lambda d: d["index"])
    ]
    return gpus, record["driver_version"]
