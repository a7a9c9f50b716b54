"""Constants shared by the fuel modules (fuel's own copies of kit's Law values)."""

from __future__ import annotations

from enum import IntEnum

FIELD_SEP = '"'
CHAR_SEP = ","
FRAME_KEY = "_MAX_FRAMES"
VALID_DTYPE = [
    "uint8",
    "uint16",
    "uint32",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "str",
    "bool",
]

# Suffixes reserved for the NPZ and RAW layouts; header names may not use them.
RESERVED_SUFFIXES = ("__offsets", "__frames", "__nframes")
META_KEY = "__nebulae__"
# the column every packed data set gets: each row's source key (the CSV's first cell), so that a sample can be traced
# back to its file; CSV headers may not start with '__', so it never clashes with a user column
KEY_COLUMN = "__key__"
# the metadata entry counting the rows that on_error='skip' left out of a file (absent: none)
SKIPPED_KEY = "nebulae_skipped"
HDF5_SUFFIXES = (".hdf5", ".h5")
NPZ_SUFFIXES = (".npz",)


class Quality(IntEnum):
    """Packing presets of v0.6.9 (`generate(quality=...)`)."""

    NA = 0
    FAST = 1
    GOOD = 2
    OPTIM = 3
    LOSSLESS = 4


class Interp(IntEnum):
    """Interpolation modes of the augmentation ops."""

    NEAREST = 10
    LINEAR = 11
    CUBIC = 12


class Axial(IntEnum):
    """Flip axes, named as in the original (HORIZONTAL reverses rows)."""

    HORIZONTAL = 20
    VERTICAL = 21


class Distrib(IntEnum):
    """Noise distributions."""

    GAUSSIAN = 30
    POISSON = 31


NA, FAST, GOOD, OPTIM, LOSSLESS = (Quality.NA, Quality.FAST, Quality.GOOD, Quality.OPTIM, Quality.LOSSLESS)
NEAREST, LINEAR, CUBIC = Interp.NEAREST, Interp.LINEAR, Interp.CUBIC
HORIZONTAL, VERTICAL = Axial.HORIZONTAL, Axial.VERTICAL
GAUSSIAN, POISSON = Distrib.GAUSSIAN, Distrib.POISSON


class FuelWarning(UserWarning):
    """Warning category of nebulae-fuel."""
