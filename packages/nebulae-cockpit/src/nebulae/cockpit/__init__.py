"""Nebulae cockpit: device Engine, atomic TimeMachine checkpoints and Multiverse data parallelism."""

from __future__ import annotations

from .__about__ import __version__
from ._constants import CPU, DYNAMIC, FIXED, GPU, STATIC, Gearbox
from ._engine import Engine
from ._multiverse import Multiverse
from ._timemachine import TimeMachine
from ._warnings import CockpitWarning

__all__ = [
    "CPU",
    "DYNAMIC",
    "FIXED",
    "GPU",
    "STATIC",
    "CockpitWarning",
    "Engine",
    "Gearbox",
    "Multiverse",
    "TimeMachine",
    "__version__",
]
