"""``autoPad``: paddings that make a convolution keep ``ceil(size/stride)`` (TensorFlow 'SAME')."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["as_tuple", "autoPad", "autopad"]


def as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """Expand an int to ``ndim`` copies, or check that a sequence has ``ndim`` ints."""
    if isinstance(value, bool):
        raise TypeError(f"'{name}' must be an int or a tuple of {ndim} ints (got {value!r})")
    if isinstance(value, int):
        return (value,) * ndim
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"'{name}' must be an int or a tuple of {ndim} ints (got {value!r})") from None
    if len(out) != ndim:
        raise ValueError(f"'{name}' must have {ndim} entries to match the kernel (got {value!r})")
    return out


def autoPad(
    in_size: Sequence[int] | None,
    kernel: Sequence[int],
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
) -> tuple[int, ...]:
    """Padding that gives a convolution an output of ``ceil(size/stride)`` per dimension.

    Args:
        in_size: the spatial input size (a d-tuple), or None/() for "a size divisible by the stride".
        kernel: the kernel size, a tuple of 1, 2 or 3 ints.
        stride: an int or a d-tuple.
        dilation: an int or a d-tuple.

    Returns:
        A flat tuple in ``torch.nn.functional.pad`` order (last dimension first):
        ``(left, right)``, ``(left, right, top, bottom)`` or ``(left, right, top, bottom, front, back)``.

    Raises:
        ValueError: on mismatched lengths or non-positive sizes.

    Example:
        >>> autoPad((5, 5), (3, 3))
        (1, 1, 1, 1)
        >>> autoPad((6,), (4,))
        (1, 2)
    """
    try:
        kernel = tuple(int(k) for k in kernel)
    except TypeError:
        raise TypeError(f"'kernel' must be a tuple of 1 to 3 ints (got {kernel!r})") from None
    ndim = len(kernel)
    if ndim not in (1, 2, 3):
        raise ValueError(f"'kernel' must have 1, 2 or 3 entries (got {kernel!r})")
    strides = as_tuple(stride, ndim, "stride")
    dilations = as_tuple(dilation, ndim, "dilation")
    sizes = None if not in_size else as_tuple(in_size, ndim, "in_size")
    for name, values in (
        ("kernel", kernel),
        ("stride", strides),
        ("dilation", dilations),
        ("in_size", sizes),
    ):
        if values is not None and min(values) < 1:
            raise ValueError(f"'{name}' entries must be >= 1 (got {values})")
    pads: list[int] = []
    for i in reversed(range(ndim)):
        k_eff = kernel[i] + (dilations[i] - 1) * (kernel[i] - 1)
        if sizes is None:
            margin = k_eff - strides[i]
        else:
            margin = (math.ceil(sizes[i] / strides[i]) - 1) * strides[i] + k_eff - sizes[i]
        margin = max(margin, 0)
        pads += [margin // 2, margin - margin // 2]
    return tuple(pads)


def autopad(
    kernel: Sequence[int],
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    size: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """The v0.6.9 spelling of :func:`autoPad`; symmetric results come back per dimension (first dim first).

    Example:
        >>> autopad((3, 3))
        (1, 1)
        >>> autopad((4,))
        (1, 2)
    """
    flat = autoPad(size, kernel, stride, dilation)
    pairs = [flat[i : i + 2] for i in range(0, len(flat), 2)]
    if all(a == b for a, b in pairs):
        return tuple(a for a, _ in reversed(pairs))
    return flat
