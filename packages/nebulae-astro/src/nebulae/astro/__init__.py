"""Nebulae astro: Craft modules, dock layers, gradient contexts and optimizer crafts on PyTorch."""

from __future__ import annotations

from . import dock, hangar
from .__about__ import __version__
from ._contexts import Nozzle, Prober, Rudder
from ._craft import Craft
from ._device import coat, shell
from ._formula import fn
from ._padding import autoPad, autopad
from ._warnings import AstroWarning

__all__ = [
    "AstroWarning",
    "Craft",
    "Nozzle",
    "Prober",
    "Rudder",
    "__version__",
    "autoPad",
    "autopad",
    "coat",
    "dock",
    "fn",
    "hangar",
    "shell",
]
