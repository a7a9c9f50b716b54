"""Pooling: ``MaxPool`` and ``AvgPool`` in 1-3 dimensions, with global pooling when ``kernel[-1] < 0``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._craft import Craft
from ._layer import shape_error, split_padding
from ._padding import as_tuple

__all__ = ["AvgPool", "MaxPool"]

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_GMAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
_GAVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


class _Pool(Craft):
    _is_max = True

    def __init__(
        self,
        kernel: Sequence[int],
        stride: int | Sequence[int] = 2,
        padding: int | Sequence[int] = 0,
        *,
        scope: str,
    ) -> None:
        super().__init__(scope)
        if isinstance(kernel, int) or not isinstance(kernel, Sequence):
            raise TypeError(f"{scope}: 'kernel' must be a tuple of 1 to 3 ints, e.g. (2, 2) (got {kernel!r})")
        if not 1 <= len(kernel) <= 3:
            raise ValueError(f"{scope}: 'kernel' must be a tuple of 1 to 3 ints (got {kernel!r})")
        self.kernel, self.ndim = tuple(kernel), len(kernel)
        self.is_global = self.kernel[-1] < 0
        self.stride = as_tuple(stride, self.ndim, "stride")
        self.padding, self.prepad = split_padding(padding, self.ndim, scope)
        if not self.is_global and any(2 * p > k for p, k in zip(self.padding, self.kernel, strict=True)):
            # torch pools only pad up to half the kernel; larger pads are applied beforehand
            pads = [(p, p) for p in reversed(self.padding)]
            self.padding, self.prepad = (0,) * self.ndim, tuple(v for pair in pads for v in pair)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.ndim + 2:
            raise shape_error(self, f"N×C×{self.ndim} spatial dims", x)
        if self.is_global:
            return (_GMAX if self._is_max else _GAVG)[self.ndim](x, 1)
        if self.prepad is not None:
            x = F.pad(x, self.prepad, value=float("-inf") if self._is_max else 0.0)
        if self._is_max:
            return _MAX[self.ndim](x, self.kernel, self.stride, self.padding)
        return _AVG[self.ndim](x, self.kernel, self.stride, self.padding)


class MaxPool(_Pool):
    """Max pooling; ``kernel[-1] < 0`` pools globally to size 1. Padding forms as ``Conv`` (pads with −inf).

    Example:
        >>> MaxPool((2, 2))(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 3, 4, 4])
    """

    _is_max = True

    def __init__(
        self,
        kernel: Sequence[int],
        stride: int | Sequence[int] = 2,
        padding: int | Sequence[int] = 0,
        scope: str = "MAXPOOL",
    ) -> None:
        super().__init__(kernel, stride, padding, scope=scope)


class AvgPool(_Pool):
    """Average pooling (zero padding counted); ``kernel[-1] < 0`` pools globally to size 1.

    Example:
        >>> AvgPool((-1, -1))(torch.ones(2, 3, 5, 5)).shape
        torch.Size([2, 3, 1, 1])
    """

    _is_max = False

    def __init__(
        self,
        kernel: Sequence[int],
        stride: int | Sequence[int] = 2,
        padding: int | Sequence[int] = 0,
        scope: str = "AVGPOOL",
    ) -> None:
        super().__init__(kernel, stride, padding, scope=scope)
