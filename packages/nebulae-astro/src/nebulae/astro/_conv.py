"""Convolutions: ``Conv`` and ``TransConv`` in 1, 2 or 3 dimensions, picked by the kernel's length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ._craft import Craft
from ._initializers import XavierNorm, Zeros
from ._layer import kernel_tuple, make_param, shape_error, split_padding
from ._padding import as_tuple

__all__ = ["Conv", "TransConv"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TCONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_XAVIER, _ZEROS = XavierNorm(), Zeros()


def _check_channels(scope: str, in_chs: int, out_chs: int, group: int) -> None:
    for name, value in (("in_chs", in_chs), ("out_chs", out_chs), ("group", group)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{scope}: '{name}' must be a positive int (got {value!r})")
    if in_chs % group or out_chs % group:
        raise ValueError(
            f"{scope}: 'in_chs' ({in_chs}) and 'out_chs' ({out_chs}) must be divisible by 'group' ({group})"
        )


class _ConvBase(Craft):
    """Arguments, parameters and input checks shared by Conv and TransConv."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def _setup(self, in_chs: int, out_chs: int, kernel: Any, stride: Any, dilation: Any, group: int) -> int:
        self.kernel = kernel_tuple(kernel, self.scope)
        ndim = len(self.kernel)
        _check_channels(self.scope, in_chs, out_chs, group)
        self.in_chs, self.out_chs, self.group = in_chs, out_chs, group
        self.stride = as_tuple(stride, ndim, "stride")
        self.dilation = as_tuple(dilation, ndim, "dilation")
        return ndim

    def _params(self, w_shape: tuple[int, ...], w_init: Any, b_init: Any) -> None:
        make_param(self, "weight", (*w_shape, *self.kernel), w_init)
        make_param(self, "bias", (self.out_chs,), b_init)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != len(self.kernel) + 2 or x.shape[1] != self.in_chs:
            raise shape_error(self, f"N×{self.in_chs}×{len(self.kernel)} spatial dims", x)

    def weights(self) -> torch.Tensor:
        return self.weight


class Conv(_ConvBase):
    """Convolution over NC(D)(H)W input; the kernel's length picks 1-d, 2-d or 3-d.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel: kernel size, a tuple of 1 to 3 ints.
        stride: an int or a d-tuple.
        padding: an int, a d-tuple, or a 2d-tuple in ``autoPad`` order (asymmetric ones are applied
            with ``F.pad`` first; symmetric ones go into the convolution itself).
        dilation: an int or a d-tuple.
        group: number of groups.
        w_init: weight initializer, or a tensor of fixed weights (no weight parameter then).
        b_init: bias initializer; ``Void()`` means no bias.
        scope: the craft's name.

    Example:
        >>> conv = Conv(3, 8, (3, 3), padding=autoPad((32, 32), (3, 3)))
        >>> conv(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 8, 32, 32])
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        group: int = 1,
        w_init: Any = _XAVIER,
        b_init: Any = _ZEROS,
        scope: str = "CONV",
    ) -> None:
        super().__init__(scope)
        ndim = self._setup(in_chs, out_chs, kernel, stride, dilation, group)
        self.padding, self.prepad = split_padding(padding, ndim, scope)
        self._conv = _CONV[ndim]
        self._params((out_chs, in_chs // group), w_init, b_init)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.prepad is not None:
            x = F.pad(x, self.prepad)
        return self._conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.group)

    def extra_repr(self) -> str:
        return (
            f"scope={self.scope!r}, {self.in_chs}->{self.out_chs}, kernel={self.kernel}, stride={self.stride}, "
            f"padding={self.prepad or self.padding}, dilation={self.dilation}, group={self.group}"
        )


class TransConv(_ConvBase):
    """Transposed convolution that produces exactly ``out_size`` (spatial).

    Args:
        in_chs: input channels.
        out_chs: output channels.
        out_size: the spatial output size, a d-tuple.
        kernel: kernel size, a tuple of 1 to 3 ints.
        stride: an int or a d-tuple.
        padding: an int, a d-tuple, or a 2d-tuple in ``autoPad`` order (reduced to ``ceil(sum/2)``
            per dimension).
        dilation: an int or a d-tuple.
        group: number of groups.
        w_init: weight initializer or a tensor of fixed weights.
        b_init: bias initializer; ``Void()`` means no bias.
        scope: the craft's name.

    Raises:
        ValueError: at run time, when ``out_size`` cannot be reached from the input size.

    Example:
        >>> up = TransConv(8, 4, (16, 16), (4, 4), stride=2, padding=1)
        >>> up(torch.zeros(1, 8, 8, 8)).shape
        torch.Size([1, 4, 16, 16])
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        out_size: Sequence[int],
        kernel: Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        group: int = 1,
        w_init: Any = _XAVIER,
        b_init: Any = _ZEROS,
        scope: str = "TRANSCONV",
    ) -> None:
        super().__init__(scope)
        ndim = self._setup(in_chs, out_chs, kernel, stride, dilation, group)
        self.out_size = as_tuple(out_size, ndim, "out_size")
        if isinstance(padding, Sequence) and len(padding) == 2 * ndim:
            pairs = [padding[i : i + 2] for i in range(0, 2 * ndim, 2)]
            self.padding = tuple(math.ceil((a + b) / 2) for a, b in reversed(pairs))
        else:
            self.padding, _ = split_padding(padding, ndim, scope)
        self._tconv = _TCONV[ndim]
        self._params((in_chs, out_chs // group), w_init, b_init)

    def _output_padding(self, x: torch.Tensor) -> tuple[int, ...]:
        extra = []
        for i, size in enumerate(x.shape[2:]):
            s, p, d, k = self.stride[i], self.padding[i], self.dilation[i], self.kernel[i]
            reached = (size - 1) * s - 2 * p + d * (k - 1) + 1
            pad = self.out_size[i] - reached
            if not 0 <= pad < max(s, d):
                raise ValueError(
                    f"{self.scope} (TransConv): input of shape {tuple(x.shape)} gives spatial sizes from "
                    f"{reached} to {reached + max(s, d) - 1} on dim {i + 2}, which cannot match "
                    f"out_size={self.out_size}; change out_size, stride or padding"
                )
            extra.append(pad)
        return tuple(extra)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._tconv(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(x),
            self.group,
            self.dilation,
        )
