"""Nebulae cockpit: device Engine, atomic TimeMachine checkpoints and Multiverse data parallelism."""

from __future__ import annotations

from .__about__ import __version__

__all__ = ["__version__"]
