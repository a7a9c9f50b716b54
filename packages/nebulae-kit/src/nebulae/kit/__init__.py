"""nebulae-kit: GPU monitoring through NVML, shared constants, rank helpers and small utilities."""

from __future__ import annotations

from .__about__ import __version__
from ._engine import EngineLike, current_engine, set_current_engine
from ._gpu import GPUInfo, GPUtil
from ._law import Constant, Law
from ._rank import get_local_rank, get_local_world_size, get_rank, get_world_size
from ._warnings import KitWarning

__all__ = [
    "Constant",
    "EngineLike",
    "GPUInfo",
    "GPUtil",
    "KitWarning",
    "Law",
    "__version__",
    "current_engine",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "set_current_engine",
]
