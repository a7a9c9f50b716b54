"""Nebulae aerolog: a terminal dashboard for training runs, with live ASCII curves and CSV/PNG logs."""

from __future__ import annotations

from .__about__ import __version__

__all__ = ["__version__"]
