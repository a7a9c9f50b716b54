"""Argument checks of aerolog, one style everywhere: a wrong type is a TypeError, a wrong value a ValueError."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

__all__ = [
    "check_callable",
    "check_counters",
    "check_int",
    "check_mapping",
    "check_seconds",
    "check_str",
    "kind",
]


def kind(value: object) -> str:
    """How a wrong value is shown in a message: its type and its repr, e.g. ``float 1.5``."""
    return f"{type(value).__name__} {value!r}"


def check_int(name: str, value: object, least: int | None) -> int:
    """`value` as an int >= `least` (any int when `least` is None); numpy integers count, bools do not.

    Raises:
        TypeError: `value` is not an integer.
        ValueError: `value` is below `least`.
    """
    bound = "" if least is None else f" >= {least}"
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name!r} must be an int{bound} (got {kind(value)})") from None
    if least is not None and number < least:
        raise ValueError(f"{name!r} must be an int{bound} (got {number})")
    return number


def check_str(name: str, value: object, example: str) -> str:
    """`value` when it is a str; `example` shows in the message what one looks like.

    Raises:
        TypeError: `value` is not a str.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name!r} must be a str such as {example!r} (got {kind(value)})")
    return value


def check_seconds(name: str, value: object) -> float | None:
    """`value` as a number of seconds >= 0, or None.

    Raises:
        TypeError: `value` is neither a number nor None.
        ValueError: `value` is negative or nan.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name!r} must be a number of seconds >= 0 or None (got {kind(value)})")
    if not value >= 0:
        raise ValueError(f"{name!r} must be a number of seconds >= 0 or None (got {value!r})")
    return value


def check_mapping(name: str, value: object, what: str) -> Mapping[Any, Any]:
    """`value` when it is a mapping; `what` describes the expected one, e.g. ``{metric: number}``.

    Raises:
        TypeError: `value` is not a mapping.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict {what} (got {type(value).__name__})")
    return value


def check_callable(name: str, value: object, what: str) -> Any:
    """`value` when it can be called; `what` is its expected signature, e.g. ``value -> str``.

    Raises:
        TypeError: `value` is not callable.
    """
    if not callable(value):
        raise TypeError(f"{name} must be a callable {what} (got {value!r})")
    return value


def check_counters(
    entry: object, mile: object, epoch: object, mpe: object, stage: object, interval: object
) -> tuple[dict[str, Any], int, int, int, str, int]:
    """The slow path of gauge()'s argument check: convert what can be, raise a clear error otherwise.

    Raises:
        TypeError: a counter or the stage is missing (only track() fills them in) or has a wrong type.
        ValueError: a counter is out of range.
    """
    missing = [n for n, v in (("mile", mile), ("epoch", epoch), ("mpe", mpe), ("stage", stage)) if v is None]
    if missing:
        raise TypeError(
            f"gauge() missing {', '.join(map(repr, missing))}; only inside DashBoard.track() may they be omitted"
        )
    return (
        dict(check_mapping("'entry'", entry, "{metric: number}")),
        check_int("mile", mile, 0),
        check_int("epoch", epoch, 0),
        check_int("mpe", mpe, 1),
        check_str("stage", stage, "TRAIN"),
        check_int("interval", interval, 1),
    )
