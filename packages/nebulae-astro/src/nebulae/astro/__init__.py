"""Nebulae astro: Craft modules, dock layers, gradient contexts and optimizer crafts on PyTorch."""

from __future__ import annotations

from .__about__ import __version__

__all__ = ["__version__"]
