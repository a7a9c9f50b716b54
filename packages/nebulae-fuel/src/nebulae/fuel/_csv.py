"""Parse the file-list CSV of FuelGenerator into typed columns, and resolve the files it lists."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._constants import CHAR_SEP, FRAME_KEY, RESERVED_SUFFIXES
from ._dtype import split_dtype


def sniff_delimiter(header_line: str, quotechar: str) -> str:
    """Return '\\t' if the header holds more tabs than commas outside quotes, else ','."""
    tabs = commas = 0
    quoted = False
    for ch in header_line:
        if ch == quotechar:
            quoted = not quoted
        elif not quoted:
            tabs += ch == "\t"
            commas += ch == ","
    return "\t" if tabs > commas else ","


def check_header(names: list[str], source: str) -> None:
    """Reject empty, duplicated or reserved column names."""
    seen: set[str] = set()
    for name in names:
        problem = None
        if not name:
            problem = "is empty"
        elif "/" in name:
            problem = "contains '/'"
        elif name == FRAME_KEY:
            problem = f"is reserved ({FRAME_KEY} stores the frame count)"
        elif name.startswith("__") or name.endswith(RESERVED_SUFFIXES):
            problem = (
                f"is reserved (names may not start with '__' or end with {', '.join(RESERVED_SUFFIXES)})"
            )
        elif name in seen:
            problem = "is duplicated"
        if problem:
            raise ValueError(f"header of {source}: column name {name!r} {problem}; rename it")
        seen.add(name)


_BOOL = {"true": True, "1": True, "false": False, "0": False}


def parse_scalar(text: str, base: str) -> Any:
    """Parse one value of base dtype `base` (numeric or bool), checking the range."""
    if base == "bool":
        try:
            return _BOOL[text.strip().lower()]
        except KeyError:
            raise ValueError(f"{text!r} is not a bool (use true/false/1/0)") from None
    np_type = np.dtype(base)
    if np_type.kind in "iu":
        try:
            value: Any = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        info = np.iinfo(np_type)
        if not info.min <= value <= info.max:
            raise ValueError(f"{value} overflows {base} (range {info.min}..{info.max})")
        return value
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if np.isfinite(value) and abs(value) > float(np.finfo(np_type).max):
        raise ValueError(f"{text!r} overflows {base}")
    return value


@dataclass
class Column:
    """One parsed CSV column."""

    name: str
    dtype: str  # as given, e.g. 'vuint8'
    base: str
    variable: bool
    is_image: bool = False
    values: list[Any] = field(default_factory=list)
    width: int | None = None  # fixed vector length L, None for scalars

    def to_array(self) -> Any:
        """Return the column as an ndarray (fixed) or a list (variable, str, image)."""
        if self.is_image or self.variable or self.base == "str":
            return self.values
        dtype = np.dtype(bool) if self.base == "bool" else np.dtype(self.base)
        if self.width is None:
            return np.asarray(self.values, dtype=dtype)
        return np.asarray(self.values, dtype=dtype).reshape(len(self.values), self.width)


@dataclass
class Table:
    """A parsed file list: columns in header order, plus the CSV line of each record."""

    path: str
    columns: list[Column]
    lines: list[int]
    keys: list[str] = field(default_factory=list)  # each row's first cell as written (its source key)

    def __len__(self) -> int:
        return len(self.lines)


def _resolve_dtypes(dtype: list[str], names: list[str], encoded: bool, source: str) -> list[str]:
    if len(dtype) == len(names):
        return list(dtype)
    if len(dtype) == len(names) - 1:
        return ["vuint8" if encoded else "str", *dtype]
    raise ValueError(
        f"dtype has {len(dtype)} entries but {source} has {len(names)} columns "
        f"(give {len(names)}, or {len(names) - 1} to imply column 0)"
    )


def safe_path(file_dir: str, ref: str, root: str | None = None) -> str:
    """Join `ref` to `file_dir`, refusing references that leave it (absolute, '..', symlinks).

    `root` is `os.path.realpath(file_dir)` when the caller has it already (one resolution per table, not per row).
    """
    if not ref:
        raise ValueError("empty file reference")
    if os.path.isabs(ref) or ref.startswith(("/", "\\")):
        raise ValueError(f"{ref!r} is an absolute path; entries must be relative to file_dir")
    if root is None:
        root = os.path.realpath(file_dir)
    full = os.path.realpath(os.path.join(root, ref))
    if os.path.commonpath([root, full]) != root:
        raise ValueError(f"{ref!r} resolves outside file_dir {file_dir!r}")
    return full


def parse_table(
    path: str,
    dtype: list[str],
    *,
    encoded: bool,
    is_seq: bool,
    delimiter: str | None,
    quotechar: str,
) -> Table:
    """Read and type-check the whole CSV; image references are kept as strings (or lists for sequences)."""
    source = os.path.basename(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"file_list {path!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"file_list {path!r} is not UTF-8 text ({exc.reason})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    first = text.split("\n", 1)[0]
    if delimiter is None:
        delimiter = sniff_delimiter(first, quotechar)
    reader = csv.reader(
        io.StringIO(text), delimiter=delimiter, quotechar=quotechar, doublequote=True, strict=True
    )
    header: list[str] | None = None
    columns: list[Column] = []
    lines: list[int] = []
    keys: list[str] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or (all(not c.strip() for c in cells) and len(cells) == 1):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                check_header(header, source)
                full = _resolve_dtypes(dtype, header, encoded, source)
                for k, (name, dt) in enumerate(zip(header, full, strict=True)):
                    base, variable = split_dtype(dt)
                    image = encoded and k == 0
                    if image and dt != "vuint8":
                        raise ValueError(
                            f"column 0 ({name!r}) of {source} names image files, so its dtype must be 'vuint8' "
                            f"(got {dt!r}); pass encode=None to store it by its dtype instead"
                        )
                    columns.append(Column(name, dt, base, variable, is_image=image))
                continue
            if len(cells) != len(header):
                raise ValueError(
                    f"row {line} of {source}: expected {len(header)} cells like the header, got {len(cells)}"
                )
            for col, cell in zip(columns, cells, strict=True):
                try:
                    col.values.append(_parse_cell(col, cell, is_seq))
                except ValueError as exc:
                    raise ValueError(f"row {line} of {source}, column {col.name!r}: {exc}") from None
            lines.append(line)
            keys.append(cells[0])
    except csv.Error as exc:
        raise ValueError(f"row {reader.line_num} of {source}: malformed CSV ({exc})") from None
    if header is None:
        raise ValueError(f"{source} is empty: expected a header row such as 'image,label'")
    return Table(path, columns, lines, keys)


def _parse_cell(col: Column, cell: str, is_seq: bool) -> Any:
    if col.is_image:
        if is_seq:
            frames = [p for p in cell.split(CHAR_SEP) if p]
            if not frames:
                raise ValueError("empty frame list")
            return frames
        if not cell:
            raise ValueError("empty file reference")
        return cell
    if col.base == "str":
        return cell
    if col.variable:
        if not cell.strip():
            return []
        return [parse_scalar(p, col.base) for p in cell.split(CHAR_SEP)]
    if not cell.strip():
        raise ValueError(f"empty cell (a {col.base} value is required)")
    parts = cell.split(CHAR_SEP)
    if len(parts) == 1:
        width = None
        value: Any = parse_scalar(parts[0], col.base)
    else:
        width = len(parts)
        value = [parse_scalar(p, col.base) for p in parts]
    if col.values and width != col.width:
        raise ValueError(
            f"expected {'a scalar' if col.width is None else f'{col.width} values'} like the previous rows, "
            f"got {'a scalar' if width is None else f'{width} values'}"
        )
    col.width = width
    return value


def resolve_refs(table: Table, file_dir: str, is_seq: bool, missing_ok: bool) -> list[Any]:
    source = os.path.basename(table.path)
    refs: list[Any] = []
    missing: list[str] = []
    root = os.path.realpath(file_dir)
    for line, ref in zip(table.lines, table.columns[0].values, strict=True):
        items = ref if is_seq else [ref]
        full = []
        for item in items:
            try:
                path = safe_path(file_dir, item, root)
            except ValueError as exc:
                raise ValueError(
                    f"row {line} of {source}: {exc}; entries must stay inside file_dir"
                ) from None
            if not missing_ok and not os.path.isfile(path):
                missing.append(f"row {line}: {item}")
            full.append(path)
        refs.append(full if is_seq else full[0])
    if missing:
        shown = "; ".join(missing[:10])
        raise FileNotFoundError(
            f"{len(missing)} file(s) listed in {source} do not exist under file_dir: {shown}"
        )
    return refs
