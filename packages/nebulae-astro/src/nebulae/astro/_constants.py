"""dock's integer constants (kept at the original values), as IntEnums."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["AREA", "CONSTANT", "CUBIC", "LINEAR", "NEAREST", "REFLECT", "REPLICATE", "Interp", "PadMode"]


class Interp(IntEnum):
    """Interpolation modes of ``Zoom``."""

    NEAREST = 0
    LINEAR = 1
    CUBIC = 2
    AREA = 3


class PadMode(IntEnum):
    """Padding modes of ``Pad``."""

    CONSTANT = 10
    REFLECT = 11
    REPLICATE = 12


NEAREST, LINEAR, CUBIC, AREA = Interp.NEAREST, Interp.LINEAR, Interp.CUBIC, Interp.AREA
CONSTANT, REFLECT, REPLICATE = PadMode.CONSTANT, PadMode.REFLECT, PadMode.REPLICATE
