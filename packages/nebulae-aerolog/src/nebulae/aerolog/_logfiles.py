"""Tachograph CSV files: atomic writes, and reading a recorded run back to continue it."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from ._series import Series

__all__ = ["atomic_write", "read_record", "safe_name", "write_curve_csv", "write_logs"]

UNITS = ("mile", "epoch")


def safe_name(text: str) -> str:
    """A metric or stage name made usable in a file name (``/`` becomes ``-``)."""
    return text.replace("/", "-").replace(os.sep, "-")


def atomic_write(path: str | os.PathLike[str], fill: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through a temp file ``{path}.tmp-{pid}``, fsync it, then ``os.replace`` it into place.

    A reader never sees a half-written file, and an interrupted run leaves the previous file intact.
    """
    final = os.fspath(path)
    tmp = f"{final}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def write_curve_csv(path: Path, unit: str, key: str, xs: Sequence[float], ys: Sequence[float]) -> None:
    """Write a two-column CSV ``{unit},{key}`` with one row per point (floats written exactly)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([unit, key])
    writer.writerows([_number_text(x), repr(float(y))] for x, y in zip(xs, ys, strict=True))
    data = buf.getvalue().encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


def _read_one(path: Path) -> tuple[str, str, list[float], list[float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or len(rows[0]) != 2:
        raise ValueError(
            f"{path}: not a DashBoard record; expected a header 'mile,STAGE:METRIC' or 'epoch,STAGE:METRIC' "
            f"(got {rows[0] if rows else 'an empty file'})"
        )
    unit, key = rows[0]
    if unit not in UNITS:
        raise ValueError(f"{path}: the first header cell must be 'mile' or 'epoch' (got {unit!r})")
    stage, sep, metric = key.partition(":")
    if not (sep and stage and metric):
        raise ValueError(f"{path}: the second header cell must read 'STAGE:METRIC' (got {key!r})")
    xs: list[float] = []
    ys: list[float] = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            x, y = row
            xs.append(float(x))
            ys.append(float(y))
        except ValueError:
            raise ValueError(f"{path}, row {n}: expected two numbers '{unit},value' (got {row!r})") from None
    xs_out = [int(x) if x.is_integer() else x for x in xs]
    return unit, key, xs_out, ys


def read_record(path: str | os.PathLike[str]) -> list[tuple[str, str, list[float], list[float]]]:
    """Read the tachograph CSVs of an earlier run: one file, or every ``*.csv`` in a directory.

    Returns:
        ``(unit, "stage:metric", xs, ys)`` per file, `unit` being ``'mile'`` or ``'epoch'``.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a CSV is not in the tachograph format (the message names the file and row), two
            files hold the same series, or a directory holds no CSV.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(
            f"'record': {root} does not exist; pass a tachograph CSV or a directory of them"
        )
    files = (
        sorted(p for p in root.iterdir() if p.suffix == ".csv" and p.is_file()) if root.is_dir() else [root]
    )
    if not files:
        raise ValueError(f"'record': {root} holds no CSV file to continue from")
    out = []
    seen: dict[tuple[str, str], Path] = {}
    for file in files:
        unit, key, xs, ys = _read_one(file)
        if (unit, key) in seen:
            raise ValueError(f"'record': {file} and {seen[unit, key]} both hold the {unit} series of {key!r}")
        seen[unit, key] = file
        out.append((unit, key, xs, ys))
    return out


def write_logs(series: Sequence[Series], folder: str, gauge: bool, tachograph: bool) -> None:
    """Write the tachograph CSVs and/or the PNG curves of every recorded series into `folder`."""
    dst = Path(folder)
    dst.mkdir(parents=True, exist_ok=True)
    epochs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for rec in series:
        metric, stage = safe_name(rec.name), safe_name(rec.stage)
        mx, my = rec.mile_curve()
        ex, ey = rec.epoch_curve()
        if ey:
            epochs.setdefault(rec.name, {})[rec.stage] = (ex, ey)
        if tachograph and my:
            write_curve_csv(dst / f"{metric}_{stage}_mile.csv", "mile", rec.key, mx, my)
        if tachograph and ey:
            write_curve_csv(dst / f"{metric}_{stage}_epoch.csv", "epoch", rec.key, ex, ey)
        if gauge and my:
            from ._plot import plot_miles

            plot_miles(
                dst / f"{metric}_{stage}_{my[-1]:.3g}_mile_{mx[-1]:g}.png", rec.key, mx, my, rec.fmt, rec.mode
            )
    if gauge:
        from ._plot import plot_epochs

        for name, curves in epochs.items():
            last = max(x for xs, _ in curves.values() for x in xs)
            plot_epochs(dst / f"{safe_name(name)}_epoch_{last:g}.png", name, curves)
