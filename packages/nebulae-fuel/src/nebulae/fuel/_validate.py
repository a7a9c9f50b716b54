"""Argument checks for every fuel constructor and call: a wrong type raises TypeError, a wrong value ValueError.

Each check names the argument (prefixed by its owner, e.g. `Crop: 'size'`), says what was expected and shows
what was given: `'batch_size' must be an int >= 1 (got 0)`. bool is never accepted as a number, although it
is an int subclass: `Sampling(True)` is a mistake, not a 1. NumPy integers and floats count as numbers.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def label(name: str, owner: str | None = None) -> str:
    """`'name'`, or `Owner: 'name'` when the argument belongs to an op or a function."""
    return f"{owner}: {name!r}" if owner else repr(name)


def problem(name: str, expected: str, value: Any, owner: str | None = None, hint: str = "") -> str:
    """The one message form: `'name' must be <expected> (got <value>)`, then an optional hint."""
    return f"{label(name, owner)} must be {expected} (got {value!r}){hint}"


def is_int(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A Python or NumPy int or float, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def instance_of(name: str, value: Any, types: Any, expected: str, owner: str | None = None) -> None:
    """TypeError unless `value` is an instance of `types`."""
    if not isinstance(value, types):
        raise TypeError(problem(name, expected, value, owner))


def number_in(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    expected: str | None = None,
    owner: str | None = None,
    hint: str = "",
    ints: bool = False,
) -> Any:
    """A number (an int when `ints`) within [minimum, maximum], either end optional.

    Returns:
        `value` as a Python float, or a Python int when `ints`.

    Raises:
        TypeError: `value` is not a number, or not an int when `ints` (bools are refused).
        ValueError: it lies outside the bounds.
    """
    if expected is None:
        expected = _bounded("an int" if ints else "a number", minimum, maximum)
    if not (is_int(value) if ints else is_number(value)):
        raise TypeError(problem(name, expected, value, owner, hint))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(problem(name, expected, value, owner, hint))
    return int(value) if ints else float(value)


def int_in(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    expected: str | None = None,
    owner: str | None = None,
    hint: str = "",
) -> int:
    """An int within [minimum, maximum] (see `number_in`), e.g. `int_in('nworker', n, 0)`."""
    return int(number_in(name, value, minimum, maximum, expected=expected, owner=owner, hint=hint, ints=True))


def positive_int(name: str, value: Any, owner: str | None = None) -> int:
    """An int >= 1: `'batch_size' must be an int >= 1 (got 0)`."""
    return int_in(name, value, 1, owner=owner)


def sequence_of(
    name: str,
    value: Any,
    length: int,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    expected: str,
    ints: bool = False,
    ordered: bool = False,
    owner: str | None = None,
) -> tuple[Any, ...]:
    """A list or tuple of `length` numbers (ints when `ints`) within the bounds, non-decreasing when `ordered`.

    Returns a tuple of Python ints or floats.

    Raises:
        TypeError: not a list or tuple, or an item that is not a number (an int when `ints`).
        ValueError: the wrong length, an item out of bounds, or (when `ordered`) items out of order.
    """
    if not isinstance(value, (tuple, list)):
        raise TypeError(problem(name, expected, value, owner))
    if len(value) != length:
        raise ValueError(problem(name, expected, value, owner))
    if not all(is_int(v) if ints else is_number(v) for v in value):
        raise TypeError(problem(name, expected, value, owner))
    if (
        (minimum is not None and min(value) < minimum)
        or (maximum is not None and max(value) > maximum)
        or (ordered and any(a > b for a, b in itertools.pairwise(value)))
    ):
        raise ValueError(problem(name, expected, value, owner))
    return tuple(int(v) if ints else float(v) for v in value)


def one_of(
    name: str, value: Any, options: Any, expected: str, owner: str | None = None, hint: str = ""
) -> Any:
    """ValueError unless `value` is one of `options`, whatever its type (like attrs' `in_`).

    A choice among named constants is a value question: `Flip('x')` and `Flip(22)` are both not one of the
    two axes. bools are refused even where `True == 1` would match.
    """
    if isinstance(value, (bool, np.bool_)) or value not in options:
        raise ValueError(problem(name, expected, value, owner, hint))
    return value


def _bounded(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind
