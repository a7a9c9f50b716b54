"""Choosing GPUs through NVML (kit's GPUtil) and leasing them, for Engine and Multiverse."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from . import _lease
from ._warnings import CockpitWarning

__all__ = ["GpuShortage", "list_gpus", "parse_ids", "select_gpus", "visible_filter"]


class GpuShortage(RuntimeError):
    """Fewer GPUs could be chosen than were asked for."""


def list_gpus() -> list[Any]:
    """Return every GPU NVML sees as ``GPUInfo(index, name, total, free, uuid)`` with fresh free memory.

    An empty list without a driver or GPU (kit's GPUtil degrades instead of raising).
    """
    from nebulae.kit import GPUtil

    return list(GPUtil().gpus)  # read at construction, so the free memory is current


def visible_filter(gpus: Sequence[Any], env: dict[str, str] | None = None) -> list[Any]:
    """Keep the GPUs that a user-set ``CUDA_VISIBLE_DEVICES`` allows (all when it is unset).

    Entries are NVML indices or UUID prefixes; ``''`` allows none.
    """
    value = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return list(gpus)
    allowed = [item.strip() for item in value.split(",") if item.strip()]
    kept = []
    for gpu in gpus:
        for item in allowed:
            if item == str(gpu.index) or (not item.isdigit() and str(gpu.uuid).startswith(item)):
                kept.append(gpu)
                break
    return kept


def parse_ids(available_gpus: Iterable[Any]) -> list[int]:
    """Turn ``available_gpus`` (ints, or tuples whose ``[0]`` is the id as in v0.6.9) into ids.

    Raises:
        TypeError: for an entry that is neither.
    """
    ids = []
    for entry in available_gpus:
        value = entry[0] if isinstance(entry, tuple | list) and entry else entry
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(
                f"'available_gpus' entries must be GPU ids (ints >= 0) or tuples whose first item is the id "
                f"(got {entry!r})"
            )
        ids.append(value)
    return ids


def _describe_held(held: list[tuple[Any, int | None]]) -> str:
    return ", ".join(f"GPU {gpu.index} (pid {pid if pid is not None else 'unknown'})" for gpu, pid in held)


def _lease_all(
    chosen: list[Any], lease: bool, fresh: list[Any]
) -> tuple[list[Any], list[tuple[Any, int | None]]]:
    """Lease each GPU in order; return the leased ones and the held ones (with holder pids).

    GPUs leased by this call (not held before) are appended to ``fresh`` so a failure can undo them.
    """
    got, held = [], []
    for gpu in chosen:
        if not lease:
            got.append(gpu)
            continue
        before = _lease.holds(str(gpu.uuid))
        ok, pid = _lease.try_lease(str(gpu.uuid))
        if ok:
            got.append(gpu)
            if not before:
                fresh.append(gpu)
        else:
            held.append((gpu, pid))
    return got, held


def _undo(fresh: list[Any]) -> None:
    for gpu in fresh:
        _lease.release(str(gpu.uuid))


def select_gpus(
    n: int,
    least_mem: float = 0,
    ids: Sequence[int] = (),
    lease: bool = True,
    gpus: Sequence[Any] | None = None,
) -> list[Any]:
    """Choose and lease ``n`` GPUs; return their ``GPUInfo`` sorted by index.

    With ``ids`` empty: the ``n`` GPUs with the most free memory among those with at least
    ``least_mem`` MiB free, that a user-set ``CUDA_VISIBLE_DEVICES`` allows and that no other
    process leases. Otherwise the first ``n`` given ids, without memory check; a held one is an error.

    Raises:
        GpuShortage: fewer than ``n`` GPUs qualify, or an explicit id is held by another process.
        ValueError: an explicit id that NVML does not know.
    """
    if lease and not _lease.AVAILABLE:
        warnings.warn(
            "GPU leases need fcntl.flock (Linux, macOS), which this platform lacks: the GPUs are used without "
            "a lease, so another job may pick the same GPU; pass lease=False to silence this warning",
            CockpitWarning,
            stacklevel=2,
        )
        lease = False
    seen = list_gpus() if gpus is None else list(gpus)
    if ids:
        by_index = {gpu.index: gpu for gpu in seen}
        unknown = [i for i in ids if i not in by_index]
        if unknown:
            raise ValueError(
                f"'available_gpus' names GPU ids {unknown} that NVML does not see "
                f"(present: {sorted(by_index) or 'none'})"
            )
        wanted = [by_index[i] for i in ids[:n]]
        if len(wanted) < n:
            raise GpuShortage(
                f"not enough available GPUs: need {n}, found {len(wanted)} in 'available_gpus' {list(ids)}"
            )
        fresh: list[Any] = []
        got, held = _lease_all(wanted, lease, fresh)
        if held:
            _undo(fresh)
            raise GpuShortage(
                f"GPU leased by another process: {_describe_held(held)}; choose other ids, wait for that job, "
                "or pass lease=False to share it"
            )
        return sorted(got, key=lambda g: g.index)

    allowed = visible_filter(seen)
    roomy = [gpu for gpu in allowed if gpu.free >= least_mem]
    roomy.sort(key=lambda g: (-g.free, g.index))
    chosen: list[Any] = []
    busy: list[tuple[Any, int | None]] = []
    leased: list[Any] = []
    for gpu in roomy:
        if len(chosen) == n:
            break
        ok, more_busy = _lease_all([gpu], lease, leased)
        chosen += ok
        busy += more_busy
    if len(chosen) < n:
        _undo(leased)
        detail = [f"NVML sees {len(seen)} GPU(s)" + ("" if seen else " (no driver or no device)")]
        if len(allowed) < len(seen):
            detail.append(f"CUDA_VISIBLE_DEVICES allows {len(allowed)}")
        small = [g for g in allowed if g.free < least_mem]
        if small:
            detail.append(
                f"below least_mem={least_mem} MiB free: "
                + ", ".join(f"GPU {g.index} ({g.free:.0f} MiB)" for g in small)
            )
        if busy:
            detail.append(f"held by other jobs: {_describe_held(busy)}")
        raise GpuShortage(f"not enough available GPUs: need {n}, found {len(chosen)} ({'; '.join(detail)})")
    return sorted(chosen, key=lambda g: g.index)
