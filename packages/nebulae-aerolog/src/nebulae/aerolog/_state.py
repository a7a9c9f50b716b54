"""A board's recorded curves and counters as a plain dict (torch ``weights_only`` and JSON safe), and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._history import History
from ._validate import kind

__all__ = ["FORMAT", "VERSION", "dump_state", "load_state"]

FORMAT = "nebulae.aerolog.DashBoard"
VERSION = 1
_UNITS = ("mile", "epoch")
_FIX = "pass a dict made by DashBoard.state_dict() of this nebulae-aerolog version"


def dump_state(history: History, spans: Mapping[str, float]) -> dict[str, Any]:
    """Everything gauge(), record() and log(record=) keep, as str/int/float/list/dict (lists copied).

    The moving averages are not saved: they are computed from the values, in the same order, so a
    restored board smooths exactly as the saved one would have.
    """
    series = [
        {
            "stage": rec.stage,
            "name": rec.name,
            "vals": list(rec.vals),
            "xs": list(rec.xs),
            "epoch_vals": list(rec.epoch_vals),
            "epoch_xs": list(rec.epoch_xs),
            "start": rec.start,
            "epoch": rec.epoch,
            "closed": rec.closed,
            "prior_mile": [list(rec.prior_mile[0]), list(rec.prior_mile[1])],
            "prior_epoch": [list(rec.prior_epoch[0]), list(rec.prior_epoch[1])],
        }
        for rec in history.series.values()
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "series": series,
        # first-seen order of stages and metrics: the order of the progress line and of the run's ETA
        "plans": {stage: list(plan) for stage, plan in history.plans.items()},
        "merged": sorted([unit, key] for unit, key in history.merged),
        "spans": dict(spans),
    }


def load_state(state: object, history: History, spans: dict[str, float], *, apply: bool) -> None:
    """Check `state` whole, then (when `apply`) replace the board's series, plans and epoch durations.

    Raises:
        TypeError: `state` or one of its entries has a wrong type (the message names the key).
        ValueError: another format or version, a missing key, or entries that do not fit together.
    """
    top = _mapping("state", state)
    name = _get(top, "format", "state")
    if name != FORMAT:
        raise ValueError(f"state['format'] must be {FORMAT!r} (got {name!r}); {_FIX}")
    version = _get(top, "version", "state")
    if type(version) is not int:
        raise TypeError(f"state['version'] must be an int (got {kind(version)}); {_FIX}")
    if version != VERSION:
        raise ValueError(
            f"state['version'] is {version}, this nebulae-aerolog reads version {VERSION}; "
            "load it with the nebulae-aerolog that saved it"
        )
    items = _sequence("state['series']", _get(top, "series", "state"))
    series = [_series(f"state['series'][{i}]", item) for i, item in enumerate(items)]
    keys: set[str] = set()
    for i, item in enumerate(series):
        key = f"{item['stage']}:{item['name']}"
        if key in keys:
            raise ValueError(f"state['series'][{i}] holds {key!r} a second time; {_FIX}")
        keys.add(key)
    plans = _plans(_get(top, "plans", "state"))
    merged = _merged(_get(top, "merged", "state"))
    durations = _mapping("state['spans']", _get(top, "spans", "state"))
    seconds = {}
    for stage, value in durations.items():
        _str(f"state['spans'] key {stage!r}", stage)
        seconds[stage] = _float(f"state['spans'][{stage!r}]", value)
    if not apply:
        return
    history.plans.clear()
    history.series.clear()
    history.merged.clear()
    for item in series:
        stage, name = item.pop("stage"), item.pop("name")
        rec = history.outside(stage, name, gauged=name in plans.get(stage, ()))
        for field, value in item.items():
            setattr(rec, field, value)
        rec.last = rec.vals[-1] if rec.vals else None
    for stage, names in plans.items():
        plan = history.plans[stage] = {}
        for name in names:
            history.add(plan, stage, name)  # the saved series, or a shown-only one made afresh
    history.merged.update(merged)
    spans.clear()
    spans.update(seconds)


def _get(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise ValueError(f"{where} lacks the key {key!r}; {_FIX}")
    return mapping[key]


def _mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict (got {type(value).__name__}); {_FIX}")
    return value


def _sequence(where: str, value: object) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{where} must be a list (got {type(value).__name__}); {_FIX}")
    return value


def _str(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str (got {kind(value)}); {_FIX}")
    return value


def _int(where: str, value: object, least: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{where} must be an int (got {kind(value)}); {_FIX}")
    if value < least:
        raise ValueError(f"{where} must be >= {least} (got {value}); {_FIX}")
    return value


def _float(where: str, value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is not int:
        raise TypeError(f"{where} must be a number (got {kind(value)}); {_FIX}")
    return float(value)


def _floats(where: str, value: object) -> list[float]:
    values = _sequence(where, value)
    if all(type(v) is float for v in values):  # the usual case, checked at C speed
        return list(values)
    return [_float(f"{where}[{i}]", v) for i, v in enumerate(values)]


def _ints(where: str, value: object) -> list[int]:
    values = _sequence(where, value)
    if all(type(v) is int for v in values):
        return list(values)
    return [_int(f"{where}[{i}]", v, 0) for i, v in enumerate(values)]


def _xs(where: str, value: object) -> list[float]:
    """The x values of a recorded run read from CSV: ints, or floats where a CSV held fractions."""
    values = _sequence(where, value)
    for i, v in enumerate(values):
        if type(v) is not int and type(v) is not float:
            raise TypeError(f"{where}[{i}] must be a number (got {kind(v)}); {_FIX}")
    return list(values)


def _pair(where: str, value: object) -> tuple[list[float], list[float]]:
    both = _sequence(where, value)
    if len(both) != 2:
        raise ValueError(f"{where} must be a pair [xs, values] (got {len(both)} items); {_FIX}")
    xs, ys = _xs(f"{where}[0]", both[0]), _floats(f"{where}[1]", both[1])
    if len(xs) != len(ys):
        raise ValueError(f"{where} holds {len(xs)} xs for {len(ys)} values; {_FIX}")
    return xs, ys


def _series(where: str, value: object) -> dict[str, Any]:
    item = _mapping(where, value)

    def get(key: str) -> Any:
        return _get(item, key, where)

    out: dict[str, Any] = {
        "stage": _str(f"{where}['stage']", get("stage")),
        "name": _str(f"{where}['name']", get("name")),
        "vals": _floats(f"{where}['vals']", get("vals")),
        "xs": _ints(f"{where}['xs']", get("xs")),
        "epoch_vals": _floats(f"{where}['epoch_vals']", get("epoch_vals")),
        "epoch_xs": _ints(f"{where}['epoch_xs']", get("epoch_xs")),
        "start": _int(f"{where}['start']", get("start"), 0),
        "epoch": _int(f"{where}['epoch']", get("epoch"), 0),
        "closed": _int(f"{where}['closed']", get("closed"), 0),
        "prior_mile": _pair(f"{where}['prior_mile']", get("prior_mile")),
        "prior_epoch": _pair(f"{where}['prior_epoch']", get("prior_epoch")),
    }
    for values, xs in (("vals", "xs"), ("epoch_vals", "epoch_xs")):
        if len(out[values]) != len(out[xs]):
            raise ValueError(
                f"{where}[{values!r}] holds {len(out[values])} values for {len(out[xs])} "
                f"{where}[{xs!r}]; {_FIX}"
            )
    if out["start"] > len(out["vals"]):
        raise ValueError(
            f"{where}['start'] is {out['start']}, past the {len(out['vals'])} values recorded; {_FIX}"
        )
    return out


def _plans(value: object) -> dict[str, list[str]]:
    plans = _mapping("state['plans']", value)
    out = {}
    for stage, names in plans.items():
        _str(f"state['plans'] key {stage!r}", stage)
        where = f"state['plans'][{stage!r}]"
        out[stage] = [_str(f"{where}[{i}]", name) for i, name in enumerate(_sequence(where, names))]
    return out


def _merged(value: object) -> set[tuple[str, str]]:
    out = set()
    for i, pair in enumerate(_sequence("state['merged']", value)):
        where = f"state['merged'][{i}]"
        both = _sequence(where, pair)
        if len(both) != 2 or both[0] not in _UNITS:
            raise ValueError(
                f"{where} must be a pair ['mile' or 'epoch', 'STAGE:METRIC'] (got {both!r}); {_FIX}"
            )
        out.add((both[0], _str(f"{where}[1]", both[1])))
    return out
