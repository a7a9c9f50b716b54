"""Nebulae fuel: pack image datasets into HDF5/NPZ and stream augmented batches, without torch."""

from __future__ import annotations

from . import depot
from .__about__ import __version__
from ._constants import (
    CHAR_SEP,
    FAST,
    FIELD_SEP,
    FRAME_KEY,
    GOOD,
    LOSSLESS,
    NA,
    OPTIM,
    VALID_DTYPE,
    FuelWarning,
)
from ._edit import deduct, fill, merge
from ._generator import FuelGenerator, Generator
from ._image import byte2arr
from ._info import info
from .depot import *  # noqa: F403 - Tank, Comburant, every op and the op constants: the same objects as depot

__all__ = [
    "CHAR_SEP",
    "FAST",
    "FIELD_SEP",
    "FRAME_KEY",
    "GOOD",
    "LOSSLESS",
    "NA",
    "OPTIM",
    "VALID_DTYPE",
    "FuelGenerator",
    "FuelWarning",
    "Generator",
    "__version__",
    "byte2arr",
    "deduct",
    "fill",
    "info",
    "merge",
]
__all__ += depot.__all__
