"""``Dense`` (a linear map over any non-batch axis) and ``Embed`` (a lookup table)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ._craft import Craft
from ._initializers import Normal, XavierNorm, Zeros
from ._layer import make_param, shape_error
from ._opcheck import check_positive_int

__all__ = ["Dense", "Embed"]

_XAVIER, _ZEROS, _NORMAL = XavierNorm(), Zeros(), Normal()


def _positive(scope: str, **values: Any) -> None:
    for name, value in values.items():
        check_positive_int(scope, name, value)


class Dense(Craft):
    """Fully connected layer ``y = x W^T + b`` applied along ``axis``.

    Args:
        in_chs: size of ``axis`` in the input.
        out_chs: size of ``axis`` in the output.
        axis: the axis to transform (any axis but the batch axis 0).
        w_init: weight initializer (weight shape ``out_chs × in_chs``) or a fixed tensor.
        b_init: bias initializer; ``Void()`` means no bias.
        scope: the craft's name.

    Raises:
        TypeError: ``in_chs``, ``out_chs`` or ``axis`` is not an int.
        ValueError: a count below 1, ``axis`` 0, or an input whose ``axis`` does not have ``in_chs`` entries.

    Example:
        >>> fc = Dense(512, 10)
        >>> fc(torch.zeros(4, 512)).shape
        torch.Size([4, 10])
        >>> Dense(3, 5, axis=1)(torch.zeros(2, 3, 7)).shape
        torch.Size([2, 5, 7])
    """

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        axis: int = -1,
        w_init: Any = _XAVIER,
        b_init: Any = _ZEROS,
        scope: str = "DENSE",
    ) -> None:
        super().__init__(scope)
        _positive(scope, in_chs=in_chs, out_chs=out_chs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{scope}: 'axis' must be a non-zero int (got {type(axis).__name__} {axis!r})")
        if axis == 0:
            raise ValueError(
                f"{scope}: 'axis' must be a non-zero int; axis 0 is the batch axis (got {axis!r})"
            )
        self.in_chs, self.out_chs, self.axis = in_chs, out_chs, axis
        make_param(self, "weight", (out_chs, in_chs), w_init)
        make_param(self, "bias", (out_chs,), b_init)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis
        if axis == -1:
            try:
                return F.linear(x, self.weight, self.bias)
            except RuntimeError as err:
                if x.dim() >= 1 and x.shape[-1] == self.in_chs:
                    raise
                raise shape_error(self, f"{self.in_chs} features on axis -1", x) from err
        if (
            x.dim() < 2
            or not -x.dim() <= axis < x.dim()
            or axis % x.dim() == 0
            or x.shape[axis] != self.in_chs
        ):
            raise shape_error(self, f"{self.in_chs} features on axis {axis} (not the batch axis)", x)
        return F.linear(x.movedim(axis, -1), self.weight, self.bias).movedim(-1, axis)

    def weights(self) -> torch.Tensor:
        return self.weight

    def extra_repr(self) -> str:
        return f"scope={self.scope!r}, {self.in_chs}->{self.out_chs}, axis={self.axis}"


class Embed(Craft):
    """Embedding table: integer tokens → ``token_dim`` vectors.

    Args:
        ntoken: vocabulary size.
        token_dim: vector size.
        w_init: table initializer (default N(0, 1), as torch).
        scope: the craft's name.

    Example:
        >>> Embed(10, 4)(torch.tensor([[1, 2]])).shape
        torch.Size([1, 2, 4])
    """

    weight: torch.Tensor

    def __init__(self, ntoken: int, token_dim: int, w_init: Any = _NORMAL, scope: str = "EMBED") -> None:
        super().__init__(scope)
        _positive(scope, ntoken=ntoken, token_dim=token_dim)
        self.ntoken, self.token_dim = ntoken, token_dim
        make_param(self, "weight", (ntoken, token_dim), w_init)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() or x.is_complex():
            raise shape_error(self, f"integer token ids (got dtype {x.dtype})", x)
        try:
            return F.embedding(x, self.weight)
        except IndexError as err:  # CPU only: checking ids on GPU would force a sync per call
            raise ValueError(
                f"{self.scope} (Embed): token ids must lie in [0, {self.ntoken}) "
                f"(got min {int(x.min())}, max {int(x.max())})"
            ) from err

    def weights(self) -> torch.Tensor:
        return self.weight
