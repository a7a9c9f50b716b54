"""The constants shared across Nebulae (``nebulae.Law``, also named ``Constant``)."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["Constant", "Law"]


class Constant:
    """Project-wide constants, read as class attributes.

    ``Law`` is the same class. Assigning ``Law.CORE`` is allowed (user scripts write
    ``nebulae.Law.CORE = 'pytorch'``); nebulae-fuel keeps its own copies of the CSV constants, so assigning the
    CSV names here does not change how fuel parses files.

    Example:
        >>> from nebulae.kit import Law
        >>> Law.CORE
        'PYTORCH'
    """

    CORE: ClassVar[str] = "PYTORCH"
    ENV_RANK: ClassVar[str] = "NEB_RANK"
    FIELD_SEP: ClassVar[str] = '"'
    CHAR_SEP: ClassVar[str] = ","
    FRAME_KEY: ClassVar[str] = "_MAX_FRAMES"
    VALID_DTYPE: ClassVar[list[str]] = [
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


Law = Constant
