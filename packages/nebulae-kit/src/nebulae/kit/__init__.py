"""nebulae-kit: GPU monitoring through NVML, shared constants, rank helpers, the current engine and small utilities."""

from __future__ import annotations

from .__about__ import __version__
from ._datum import coat_to, shell_from
from ._engine import EngineLike, current_engine, set_current_engine, target_device
from ._gpu import GPUInfo, GPUtil
from ._image import byte2arr, join_imgs, plot_in_one, rgb2y
from ._law import Constant, Law
from ._rank import get_local_rank, get_local_world_size, get_rank, get_world_size
from ._utility import (
    SPST,
    Timer,
    den2spa,
    destine,
    hotvec2mtx,
    mtx2hotvec,
    parse_cfg,
    rand_trunc_norm,
    record_cfg,
    spa2den,
    sprawl,
    ver2num,
)
from ._warnings import KitWarning

__all__ = [
    "SPST",
    "Constant",
    "EngineLike",
    "GPUInfo",
    "GPUtil",
    "KitWarning",
    "Law",
    "Timer",
    "__version__",
    "byte2arr",
    "coat_to",
    "current_engine",
    "den2spa",
    "destine",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "hotvec2mtx",
    "join_imgs",
    "mtx2hotvec",
    "parse_cfg",
    "plot_in_one",
    "rand_trunc_norm",
    "record_cfg",
    "rgb2y",
    "set_current_engine",
    "shell_from",
    "spa2den",
    "sprawl",
    "target_device",
    "ver2num",
]
