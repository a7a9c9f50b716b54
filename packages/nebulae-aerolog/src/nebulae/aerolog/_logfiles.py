"""Log files: tachograph CSVs written and read back to continue a run, and the PNG curves' names."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomic import atomic_write, remove_dead_temps

if TYPE_CHECKING:
    from ._series import Series

__all__ = ["read_record", "safe_name", "write_curve_csv", "write_logs"]

UNITS = ("mile", "epoch")


def safe_name(text: str) -> str:
    """A metric or stage name made usable in a file name (``/`` becomes ``-``)."""
    return text.replace("/", "-").replace(os.sep, "-")


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
    """Read one tachograph CSV.

    Values may be ``nan`` or ``inf`` (a run that diverged recorded them); x values must be finite numbers.

    Raises:
        ValueError: the file is not a tachograph CSV; the message names the file, the row and what is wrong.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: a header saved with a BOM
            reader = csv.reader(fh)
            numbered = [(reader.line_num, row) for row in reader if row]  # blank lines carry nothing
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a DashBoard record, not a CSV text file ({exc})") from None
    if not numbered or len(numbered[0][1]) != 2:
        raise ValueError(
            f"{path}: not a DashBoard record; expected a header 'mile,STAGE:METRIC' or 'epoch,STAGE:METRIC' "
            f"(got {numbered[0][1] if numbered else 'an empty file'})"
        )
    unit, key = numbered[0][1]
    if unit not in UNITS:
        raise ValueError(f"{path}: the first header cell must be 'mile' or 'epoch' (got {unit!r})")
    stage, sep, metric = key.partition(":")
    if not (sep and stage and metric and key.isprintable()):  # control characters break file names
        raise ValueError(f"{path}: the second header cell must read 'STAGE:METRIC' (got {key!r})")
    xs: list[float] = []
    ys: list[float] = []
    for line, row in numbered[1:]:
        try:
            x, y = (float(cell) for cell in row)
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            raise ValueError(
                f"{path}, row {line}: expected two numbers '{unit},value', the {unit} a finite one "
                f"(got {row!r}); fix or delete that row"
            )
        xs.append(x)
        ys.append(y)
    xs_out = [int(x) if x.is_integer() else x for x in xs]
    return unit, key, xs_out, ys


def read_record(
    path: str | os.PathLike[str],
) -> tuple[list[tuple[str, str, list[float], list[float]]], list[str]]:
    """Read the tachograph CSVs of an earlier run: one file, or every ``*.csv`` in a directory.

    A file that is not a tachograph CSV (a foreign table, a malformed row, a second copy of a series) is
    skipped, and reported in the list of problems.

    Returns:
        ``(unit, "stage:metric", xs, ys)`` per file read, `unit` being ``'mile'`` or ``'epoch'``, and one
        message per file skipped, naming the file (and row) and what is wrong with it.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a directory holds no CSV.
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
    problems = []
    seen: dict[tuple[str, str], Path] = {}
    for file in files:
        try:
            unit, key, xs, ys = _read_one(file)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        except OSError as exc:
            problems.append(f"{file}: cannot be read ({exc})")
            continue
        if (unit, key) in seen:
            problems.append(
                f"{file}: holds the {unit} series of {key!r} again (first read from {seen[unit, key]})"
            )
            continue
        seen[unit, key] = file
        out.append((unit, key, xs, ys))
    return out, problems


def write_logs(series: Sequence[Series], folder: str, gauge: bool, tachograph: bool) -> list[str]:
    """Write the tachograph CSVs and/or the PNG curves of every recorded series into `folder`.

    Names are stable (``loss_TRAIN.png``, ``loss_epoch.png``; the values go in the titles), so every call
    replaces the files of the last one. Every CSV is written before the first PNG: a plot that fails
    leaves the numbers on disk.

    Returns:
        The paths written, in the order written.
    """
    dst = Path(folder)
    dst.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(dst)
    written: list[str] = []

    def target(name: str) -> Path:
        written.append(os.path.join(folder, name))
        return dst / name

    curves = [(rec, rec.mile_curve(), rec.epoch_curve()) for rec in series]
    if tachograph:
        for rec, (mx, my), (ex, ey) in curves:
            metric, stage = safe_name(rec.name), safe_name(rec.stage)
            if my:
                write_curve_csv(target(f"{metric}_{stage}_mile.csv"), "mile", rec.key, mx, my)
            if ey:
                write_curve_csv(target(f"{metric}_{stage}_epoch.csv"), "epoch", rec.key, ex, ey)
    if not gauge:
        return written
    from ._plot import plot_epochs, plot_miles

    epochs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    formats: dict[str, tuple[Any, str]] = {}  # a metric's format, taken from its first stage
    for rec, (mx, my), (ex, ey) in curves:
        if ey:
            epochs.setdefault(rec.name, {})[rec.stage] = (ex, ey)
            formats.setdefault(rec.name, (rec.fmt, rec.mode))
        if my:
            name = f"{safe_name(rec.name)}_{safe_name(rec.stage)}.png"
            plot_miles(target(name), rec.key, mx, my, rec.fmt, rec.mode)
    for metric, by_stage in epochs.items():
        plot_epochs(target(f"{safe_name(metric)}_epoch.png"), metric, by_stage, *formats[metric])
    return written
