"""Helpers shared by the single-layer crafts: parameter creation, padding forms, shape errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._craft import Craft
from ._initializers import Void

__all__ = ["kernel_tuple", "make_param", "shape_error", "split_padding"]


def kernel_tuple(kernel: Any, scope: str) -> tuple[int, ...]:
    """Check a 1-3 entry kernel tuple (its length picks 1-d, 2-d or 3-d)."""
    if isinstance(kernel, int) or not isinstance(kernel, Sequence):
        raise TypeError(f"{scope}: 'kernel' must be a tuple of 1, 2 or 3 ints, e.g. (3, 3) (got {kernel!r})")
    kernel = tuple(kernel)
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in kernel):
        raise TypeError(f"{scope}: 'kernel' must be a tuple of 1, 2 or 3 ints, e.g. (3, 3) (got {kernel!r})")
    if len(kernel) not in (1, 2, 3) or not all(k >= 1 for k in kernel):
        raise ValueError(f"{scope}: 'kernel' must be 1 to 3 positive ints (got {kernel!r})")
    return kernel


def make_param(craft: Craft, name: str, shape: tuple[int, ...], init: Any) -> None:
    """Create parameter ``name`` filled by ``init``; a Void init on a bias means no parameter.

    A tensor ``init`` is registered as a fixed buffer instead (functional layer with given weights).
    """
    if isinstance(init, torch.Tensor):
        if tuple(init.shape) != shape:
            raise ValueError(
                f"{craft.scope}: a fixed '{name}' tensor must have shape {shape} (got {tuple(init.shape)})"
            )
        craft.register_buffer(name, init.detach().clone())
        return
    if isinstance(init, Void) and name == "bias":
        craft.register_parameter(name, None)
        return
    if not callable(init):
        raise TypeError(f"{craft.scope}: '{name}' initializer must be callable or a tensor (got {init!r})")
    param = nn.Parameter(torch.empty(shape))
    init(param)
    craft.register_parameter(name, param)


def split_padding(padding: Any, ndim: int, scope: str) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Turn a padding argument into ``(layer padding per dim, extra F.pad tuple or None)``.

    Accepted: an int, a d-tuple (per dimension, first dim first) or a 2d-tuple in ``autoPad`` /
    ``F.pad`` order (last dim first). Symmetric 2d-tuples go into the layer's own padding, so no
    padded copy of the input is made.
    """
    if isinstance(padding, bool):
        raise TypeError(f"{scope}: 'padding' must be an int or a tuple (got {padding!r})")
    if isinstance(padding, int):
        values: tuple[int, ...] = (padding,) * ndim
    elif isinstance(padding, Sequence):
        values = tuple(int(p) for p in padding)
    else:
        raise TypeError(f"{scope}: 'padding' must be an int or a tuple (got {padding!r})")
    if any(p < 0 for p in values):
        raise ValueError(f"{scope}: 'padding' entries must be >= 0 (got {padding!r})")
    if len(values) == ndim:
        return values, None
    if len(values) == 2 * ndim:
        pairs = [values[i : i + 2] for i in range(0, 2 * ndim, 2)]
        if all(a == b for a, b in pairs):
            return tuple(a for a, _ in reversed(pairs)), None
        return (0,) * ndim, values
    raise ValueError(
        f"{scope}: 'padding' must be an int, {ndim} per-dimension values or {2 * ndim} autoPad values "
        f"(got {padding!r})"
    )


def shape_error(craft: Craft, expected: str, x: torch.Tensor) -> ValueError:
    """A ValueError naming the craft's scope, what it expects and the shape it got."""
    return ValueError(
        f"{craft.scope} ({type(craft).__name__}): expected {expected}, got input of shape {tuple(x.shape)}"
    )
