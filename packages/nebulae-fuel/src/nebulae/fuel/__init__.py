"""Nebulae fuel: pack image datasets into HDF5/NPZ and stream augmented batches, without torch."""

from __future__ import annotations

from .__about__ import __version__

__all__ = ["__version__"]
