"""Nebulae astro: Craft modules, dock layers, gradient contexts and optimizer crafts on PyTorch."""

from __future__ import annotations

from . import dock
from .__about__ import __version__
from ._craft import Craft
from ._formula import fn
from ._warnings import AstroWarning

__all__ = ["AstroWarning", "Craft", "__version__", "dock", "fn"]
