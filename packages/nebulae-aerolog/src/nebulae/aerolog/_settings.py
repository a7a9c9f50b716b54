"""DashBoard's settings: arguments or a `config` dict, the `log_dir` alias, and their checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._format import Format, parse_format
from ._sinks import Sink, check_sinks
from ._validate import check_int, check_seconds

__all__ = ["DEFAULTS", "Settings", "one_of", "resolve_settings"]

DEFAULTS: dict[str, Any] = dict(
    log_path="./aerolog", window=1, divisor=10, span=30, format=None, refresh=None, epochs=None, sinks=None
)


class Settings:
    """DashBoard's checked settings (a plain class: a NamedTuple costs more to import than it is worth)."""

    __slots__ = ("divisor", "epochs", "formats", "log_path", "refresh", "sinks", "span", "window")

    def __init__(
        self,
        log_path: str,
        window: int,
        divisor: int,
        span: int,
        formats: dict[str, Format],
        refresh: float | None,
        epochs: int | None,
        sinks: list[Sink],
    ) -> None:
        self.log_path, self.window, self.divisor, self.span = log_path, window, divisor, span
        self.formats, self.refresh, self.epochs, self.sinks = formats, refresh, epochs, sinks


def one_of(name: str, value: Any, default: Any, alias: str, alias_value: Any) -> Any:
    """`value`, or `alias_value` when the alias was passed instead.

    Raises:
        TypeError: both were passed.
    """
    if alias_value is None:
        return value
    if value != default:
        raise TypeError(f"pass either {name!r} or its alias {alias!r}, not both")
    return alias_value


def resolve_settings(given: Mapping[str, Any], config: Mapping[str, Any] | None) -> Settings:
    """Check DashBoard's settings, passed as arguments (`given`, keyed as `DEFAULTS`) or in `config`.

    Raises:
        TypeError: `config` together with explicit arguments, an unknown `config` key, or a wrong type.
        ValueError: a value out of range, or a bad `format`.
    """
    settings = dict(given)
    if config is not None:
        if settings != DEFAULTS:
            raise TypeError("pass the DashBoard settings either in 'config' or as arguments, not both")
        unknown = set(config) - set(DEFAULTS) - {"log_dir"}
        if unknown:
            raise TypeError(f"'config' has unknown keys {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
        settings.update(config)
        if "log_dir" in settings:
            settings["log_path"] = settings.pop("log_dir")
    return Settings(
        os.fspath(settings["log_path"]),
        check_int("window", settings["window"], 1),
        check_int("divisor", settings["divisor"], 1),
        check_int("span", settings["span"], 10),
        parse_format(settings["format"]),
        check_seconds("refresh", settings["refresh"]),
        None if settings["epochs"] is None else check_int("epochs", settings["epochs"], 1),
        check_sinks(settings["sinks"]),
    )
