"""Engine: choose and lease the devices of this process, set the CUDA variables, register with kit."""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Iterable
from typing import Any

import torch

from nebulae.kit import (
    Law,
    coat_to,
    get_local_rank,
    get_local_world_size,
    get_rank,
    set_current_engine,
    shell_from,
    target_device,
)

from ._compat import default_store
from ._constants import CPU, DYNAMIC, GPU, Gearbox, normalize_device, normalize_gearbox
from ._gpus import GpuShortage, list_gpus, parse_ids, select_gpus
from ._warnings import CockpitWarning

__all__ = ["Engine"]

# Distributed engines publish their node's GPUs under one store key per Engine created, in order.
_engine_serial = itertools.count()


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int (got {value!r})")
    if value < 1:
        raise ValueError(f"'{name}' must be an int >= 1 (got {value})")
    return value


class Engine:
    """The devices this process computes on: the CPU, or GPUs chosen by free memory and leased.

    Args:
        device: ``GPU``/``CPU`` (any case) or 1/0.
        ngpus: GPUs to take (default 1). Distributed runs take one per local rank instead. Alias ``ngpu``.
        least_mem: MiB of free memory a GPU needs to be chosen automatically (default 2048).
        available_gpus: explicit GPU ids (ints, or tuples whose ``[0]`` is the id); the first ``ngpus``
            are taken without memory check. Alias ``avail_gpus``.
        multi_piston: ``Craft.gear`` wraps the model in ``DataParallel`` when not distributed.
        gearbox: ``DYNAMIC`` (eager), ``STATIC`` (``torch.compile(dynamic=True)``) or ``FIXED``
            (``torch.compile``).
        lease: hold an exclusive lock per chosen GPU until this process exits, so concurrent jobs on the
            machine never pick the same GPU; ``False`` takes none and ignores others'.
        verbose: print the device table (rank <= 0 only).

    Attributes:
        device: ``'CPU'`` or ``'GPU'``. chip: the ``torch.device`` list. rank, local_rank: from the
        environment (-1 when not distributed). gearbox, multi_piston: as given. gpus: the chosen ``GPUInfo``.

    Raises:
        ValueError: a bad ``device``/``gearbox``/count, or ``Law.CORE`` other than pytorch.
        TypeError: an alias given together with its canonical name, or a count or ``least_mem`` that is
            not a number.
        RuntimeError: not enough available GPUs (the message says what was found and what holds them).

    Example:
        >>> from nebulae.cockpit import Engine, GPU
        >>> ng = Engine(device=GPU, ngpus=2, least_mem=4096)  # doctest: +SKIP
        >>> ng.chip  # doctest: +SKIP
        [device(type='cuda', index=0), device(type='cuda', index=1)]
    """

    def __init__(
        self,
        device: str | int = GPU,
        ngpus: int | None = None,
        least_mem: float = 2048,
        available_gpus: Iterable[Any] = (),
        *,
        ngpu: int | None = None,
        avail_gpus: Iterable[Any] | None = None,
        multi_piston: bool = False,
        gearbox: int = DYNAMIC,
        lease: bool = True,
        verbose: bool = True,
    ) -> None:
        if ngpu is not None:
            if ngpus is not None:
                raise TypeError("pass either 'ngpus' or its alias 'ngpu', not both")
            ngpus = ngpu
        if avail_gpus is not None:
            if tuple(available_gpus):
                raise TypeError("pass either 'available_gpus' or its alias 'avail_gpus', not both")
            available_gpus = avail_gpus
        if str(Law.CORE).lower() != "pytorch":
            raise ValueError(f"nebulae.Law.CORE must be 'pytorch', the only backend (got {Law.CORE!r})")
        self.device = normalize_device(device)
        self.gearbox: Gearbox = normalize_gearbox(gearbox)
        self.multi_piston = bool(multi_piston)
        self.lease = bool(lease)
        self.rank = get_rank()
        self.local_rank = get_local_rank() if self.rank >= 0 else -1
        self.gpus: list[Any] = []
        if ngpus is not None:
            _positive_int(ngpus, "ngpus")
        if isinstance(least_mem, bool) or not isinstance(least_mem, int | float):
            raise TypeError(
                f"'least_mem' must be a number of MiB (got {type(least_mem).__name__} {least_mem!r})"
            )
        if least_mem < 0:
            raise ValueError(f"'least_mem' must be a number of MiB >= 0 (got {least_mem!r})")
        ids = parse_ids(available_gpus)
        verbose = verbose and self.rank <= 0

        if self.device == CPU:
            self.chip = [torch.device("cpu")]
            if verbose:
                print("CPU", flush=True)
        else:
            self._start_gpus(ngpus, least_mem, ids)
            if verbose:
                print(self._table(), flush=True)
        if self.gearbox != DYNAMIC:
            torch.set_float32_matmul_precision("high")
        set_current_engine(self)

    # ---------------------------------------------------------------- GPU path
    def _start_gpus(self, ngpus: int | None, least_mem: float, ids: list[int]) -> None:
        n = 1 if ngpus is None else ngpus
        if self.rank >= 0:
            n = get_local_world_size()
            if ngpus is not None and ngpus != n:
                warnings.warn(
                    f"Engine(ngpus={ngpus}) in a distributed run takes one GPU per local rank: using {n} "
                    "(LOCAL_WORLD_SIZE)",
                    CockpitWarning,
                    stacklevel=3,
                )
        assigned = os.environ.get("NEB_GPUS", "").strip()
        try:
            if assigned:  # a Multiverse rank: its parent chose and leased these GPUs
                self.gpus = self._known(int(i) for i in assigned.split(","))
            elif self.rank >= 0:
                self.gpus = self._select_for_node(n, least_mem, ids)
            else:
                self.gpus = select_gpus(n, least_mem, ids, self.lease)
        except GpuShortage as exc:
            raise RuntimeError(f"Engine(device=GPU): {exc}") from None
        n = len(self.gpus)

        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # NVML and CUDA indices then agree
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu.index) for gpu in self.gpus)
        visible = torch.cuda.device_count()
        if visible == n:
            self.chip = [torch.device("cuda", k) for k in range(n)]
        else:
            warnings.warn(
                f"CUDA sees {visible} device(s) but Engine chose {n} (GPU ids "
                f"{[gpu.index for gpu in self.gpus]}): CUDA read CUDA_VISIBLE_DEVICES before the Engine set "
                "it. Create the Engine before any torch.cuda call; indexing the physical ids meanwhile",
                CockpitWarning,
                stacklevel=3,
            )
            self.chip = [torch.device("cuda", gpu.index) for gpu in self.gpus]
        if self.rank >= 0:
            torch.backends.cudnn.benchmark = True
            if torch.cuda.is_available() and self.local_rank < len(self.chip):
                torch.cuda.set_device(self.chip[self.local_rank])

    @staticmethod
    def _known(ids: Iterable[int]) -> list[Any]:
        by_index = {gpu.index: gpu for gpu in list_gpus()}
        wanted = list(ids)
        missing = [i for i in wanted if i not in by_index]
        if missing:
            raise GpuShortage(f"NEB_GPUS names GPU ids {missing} that NVML does not see")
        return [by_index[i] for i in wanted]

    def _select_for_node(self, n: int, least_mem: float, ids: list[int]) -> list[Any]:
        """Local rank 0 chooses and leases the node's GPUs and publishes them through the store."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "Engine(device=GPU) in a distributed run needs the process group to share its GPU choice: "
                "call mv.init() before creating the Engine"
            )
        store = default_store()
        node = os.environ.get("GROUP_RANK") or str(max(self.rank, 0) // max(n, 1))
        key = f"nebulae/gpus/{node}/{next(_engine_serial)}"
        if self.local_rank == 0:
            try:
                gpus = select_gpus(n, least_mem, ids, self.lease)
            except (GpuShortage, ValueError) as exc:
                store.set(key, json.dumps({"error": str(exc)}))
                raise
            store.set(key, json.dumps([gpu.index for gpu in gpus]))
            return gpus
        published = json.loads(store.get(key).decode("utf-8"))
        if isinstance(published, dict):
            raise GpuShortage(f"local rank 0 could not choose GPUs for this node: {published['error']}")
        return self._known(published)

    def _table(self) -> str:
        rows = [
            f"{gpu.index} | {gpu.name} | {gpu.free:.0f} MiB free out of {gpu.total:.0f} MiB"
            for gpu in self.gpus
        ]
        return "\n".join(["GPU id | name | free MiB out of total MiB", *rows])

    # ---------------------------------------------------------------- data
    def coat(self, datum: Any, as_const: bool = True, sync: bool = True) -> torch.Tensor:
        """Put ``datum`` (number, list, numeric NumPy array or tensor) on this engine's device as a tensor.

        The device is the CPU, ``chip[local_rank]`` in a distributed run, else CUDA's current device
        (where ``Craft.gear`` puts the model). A tensor is detached; NumPy data keeps its dtype.

        Args:
            datum: the data.
            as_const: False makes the result a leaf that requires grad (floating dtypes only).
            sync: False copies with ``non_blocking=True``.

        Raises:
            TypeError: an unsupported type (non-numeric arrays included), or ``as_const=False`` on a
                non-floating dtype.
        """
        return coat_to(datum, target_device(self), as_const, sync)

    def shell(self, datum: Any, as_np: bool = True, sync: bool = False) -> Any:
        """Detach a tensor; with ``as_np`` return it as NumPy (a scalar for 0-d). ``sync`` waits for the GPU."""
        return shell_from(datum, as_np, sync)

    def __repr__(self) -> str:
        return (
            f"Engine(device={self.device!r}, chip={self.chip}, rank={self.rank}, gearbox={self.gearbox.name})"
        )
