"""Argument checks shared by kit's modules: a wrong type is a TypeError, a wrong value a ValueError."""

from __future__ import annotations

from typing import Any

__all__ = ["positive_int"]


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1 (bools refused).

    Raises:
        TypeError: not an int.
        ValueError: smaller than 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int (got {type(value).__name__} {value!r})")
    if value < 1:
        raise ValueError(f"'{name}' must be >= 1 (got {value})")
    return value
