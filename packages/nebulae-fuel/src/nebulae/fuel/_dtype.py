"""fuel's dtype grammar: `'T'` or `'vT'` (a variable-length row of T), T one of the supported base types."""

from __future__ import annotations

from typing import Any

from ._constants import VALID_DTYPE


def split_dtype(dtype: str) -> tuple[str, bool]:
    """Split `'vT'`/`'T'` into (T, is_variable); raise ValueError on anything else."""
    if not isinstance(dtype, str):
        raise TypeError(f"each dtype must be a str (got {type(dtype).__name__} {dtype!r})")
    if dtype in VALID_DTYPE:
        return dtype, False
    if dtype.startswith("v") and dtype[1:] in VALID_DTYPE:
        return dtype[1:], dtype[1:] != "str"
    raise ValueError(
        f"invalid dtype {dtype!r}: expected one of {VALID_DTYPE}, optionally prefixed with 'v' (e.g. 'vuint8')"
    )


def check_dtypes(dtype: Any) -> list[str]:
    """Validate a dtype list given to FuelGenerator."""
    if not isinstance(dtype, (list, tuple)):
        raise TypeError(f"'dtype' must be a list of str (got {type(dtype).__name__})")
    for d in dtype:
        split_dtype(d)
    return list(dtype)
