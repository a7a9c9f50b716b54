"""Display formats of DashBoard metrics: raw, percent, tailor and inviz."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._validate import check_callable, check_mapping, kind

__all__ = ["DEFAULT_FORMAT", "MODES", "RECORDED", "Format", "call_inviz", "ordinal", "parse_format", "show"]

MODES = ("raw", "percent", "tailor", "inviz")
RECORDED = ("raw", "percent")  # modes whose values are recorded, plotted and logged
DEFAULT_FORMAT = (".4f", "raw")

Format = tuple[Any, str]


def _check_spec(name: str, spec: object) -> Format:
    if not isinstance(spec, tuple | list):
        raise TypeError(f"format[{name!r}] must be a (fmt, mode) pair (got {kind(spec)})")
    if len(spec) != 2:
        raise ValueError(f"format[{name!r}] must be a (fmt, mode) pair (got {spec!r})")
    fmt, mode = spec
    if mode not in MODES:
        raise ValueError(f"format[{name!r}]: mode must be one of {', '.join(MODES)} (got {mode!r})")
    if mode in RECORDED:
        if not isinstance(fmt, str):
            raise TypeError(
                f"format[{name!r}]: a {mode} fmt must be a %-spec without '%', e.g. '.3f' (got {fmt!r})"
            )
        try:
            ("%-" + fmt) % 1.0
        except (TypeError, ValueError):
            raise ValueError(
                f"format[{name!r}]: {fmt!r} is not a valid %-spec; write e.g. '.3f' or '6.2e'"
            ) from None
    else:
        what = "value -> str" if mode == "tailor" else "(stage, epoch, mile, mpe, value) -> None"
        check_callable(f"format[{name!r}]: a {mode} fmt", fmt, what)
    return fmt, mode


def parse_format(format: Mapping[str, object] | None) -> dict[str, Format]:
    """Check a DashBoard `format` dict and return it as ``{name: (fmt, mode)}``.

    Raises:
        TypeError: `format` is not a dict, an entry is not a pair, or a fmt has the wrong type.
        ValueError: an entry names an unknown mode or holds an invalid %-spec.
    """
    if format is None:
        return {}
    check_mapping("'format'", format, "{metric: (fmt, mode)} or None")
    return {str(name): _check_spec(str(name), spec) for name, spec in format.items()}


def _number(fmt: str, value: float) -> str:
    # Fixed-point digits past 1e16 are noise, and a diverged loss near 1e308 would print 300 of them:
    # such values take the exponent form at the same precision.
    if fmt[-1:] in ("f", "F") and not -1e16 < value < 1e16:
        fmt = fmt[:-1] + "e"
    return ("%-" + fmt) % value


def show(fmt: Any, mode: str, value: object) -> str:
    """Format one value for display (`inviz` values show nothing)."""
    if mode == "raw":
        return _number(fmt, value)  # type: ignore[arg-type]
    if mode == "percent":
        return _number(fmt, value * 100) + "%"  # type: ignore[operator]
    if mode == "tailor":
        return str(fmt(value))
    return ""


def ordinal(n: int) -> str:
    """Return `n` with its English ordinal suffix: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st."""
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def call_inviz(
    fn: Callable[..., object], name: str, stage: str, epoch: int, mile: int, mpe: int, value: object
) -> None:
    """Call an inviz callback, adding to any exception which metric, stage, epoch and mile raised it."""
    try:
        fn(stage, epoch, mile, mpe, value)
    except Exception as exc:
        exc.add_note(
            f"raised by the inviz callback of metric {name!r} (stage {stage!r}, epoch {epoch}, mile {mile})"
        )
        raise
