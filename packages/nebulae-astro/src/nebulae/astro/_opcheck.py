"""Argument checks shared by the math, linalg, sparse, graph, recurrent and attention crafts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["check_axis", "check_positive_int", "check_tensor", "shape_of"]


def shape_of(x: Any) -> str:
    """Render a tensor's shape as ``(2, 3)`` for error messages."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def check_tensor(scope: str, name: str, x: Any, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """Return ``x`` if it is a tensor with an allowed number of dimensions, else raise.

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: ``x`` has a number of dimensions not in ``ndim``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{scope}: '{name}' must be a torch.Tensor (got {type(x).__name__})")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{scope}: '{name}' must be {want}-d (got shape {shape_of(x)})")
    return x


def check_positive_int(scope: str, name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools refused), else raise.

    Raises:
        TypeError: not an int.
        ValueError: smaller than ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{scope}: '{name}' must be an int (got {type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{scope}: '{name}' must be an int >= {minimum} (got {value})")
    return value


def check_axis(scope: str, x: torch.Tensor, axis: Any) -> int | tuple[int, ...]:
    """Validate an axis (int or tuple of ints) against ``x``'s rank and return it.

    Raises:
        TypeError: not an int nor a tuple/list of ints.
        ValueError: out of range for ``x``.
    """
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"{scope}: 'axis' must be an int or a tuple of ints (got {axis!r})")
        if not -x.dim() <= a < max(x.dim(), 1):
            raise ValueError(f"{scope}: 'axis' {a} is out of range for a tensor of shape {shape_of(x)}")
    return tuple(axes) if isinstance(axis, (tuple, list)) else axes[0]
