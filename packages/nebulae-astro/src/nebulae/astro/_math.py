"""Elementwise math, reductions, products, indexing and autograd as crafts."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._craft import Craft
from ._opcheck import check_axis, check_tensor, shape_of

__all__ = [
    "Argmax",
    "Argmin",
    "Clip",
    "Cos",
    "Dot",
    "Exp",
    "Gather",
    "Grad",
    "Log",
    "Max",
    "Maxele",
    "Mean",
    "Min",
    "Minele",
    "Scatter",
    "Sin",
    "Sqrt",
    "Sum",
]


class _Elementwise(Craft):
    """A craft applying one torch function elementwise: ``run(t)``."""

    _fn: Callable[[torch.Tensor], torch.Tensor]

    def run(self, t: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(check_tensor(self.scope, "t", t))


class Sqrt(_Elementwise):
    """Square root, ``run(t) -> sqrt(t)``.

    Example:
        >>> Sqrt()(torch.tensor([4.0])).item()
        2.0
    """

    _fn = staticmethod(torch.sqrt)

    def __init__(self, scope: str = "SQRT") -> None:
        super().__init__(scope)


class Exp(_Elementwise):
    """Exponential, ``run(t) -> exp(t)``."""

    _fn = staticmethod(torch.exp)

    def __init__(self, scope: str = "EXP") -> None:
        super().__init__(scope)


class Log(_Elementwise):
    """Natural logarithm, ``run(t) -> log(t)``."""

    _fn = staticmethod(torch.log)

    def __init__(self, scope: str = "LOG") -> None:
        super().__init__(scope)


class Sin(_Elementwise):
    """Sine, ``run(t) -> sin(t)``."""

    _fn = staticmethod(torch.sin)

    def __init__(self, scope: str = "SIN") -> None:
        super().__init__(scope)


class Cos(_Elementwise):
    """Cosine, ``run(t) -> cos(t)``."""

    _fn = staticmethod(torch.cos)

    def __init__(self, scope: str = "COS") -> None:
        super().__init__(scope)


class Clip(Craft):
    """Clamp values into a range: ``run(x, ranges, in_place=False)``.

    ``ranges`` is ``(low, high)`` (either may be None for an open side, or a tensor), or one
    non-negative number ``r`` meaning ``(-r, r)``. ``in_place=True`` clamps ``x`` itself.

    Example:
        >>> Clip()(torch.tensor([-3.0, 0.5, 3.0]), 1).tolist()
        [-1.0, 0.5, 1.0]
    """

    def __init__(self, scope: str = "CLIP") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, ranges: Any, in_place: bool = False) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        low: Any
        high: Any
        if isinstance(ranges, numbers.Real) and not isinstance(ranges, bool):
            if ranges < 0:
                raise ValueError(
                    f"{self.scope}: 'ranges' as a scalar r means (-r, r) and must be >= 0 (got {ranges})"
                )
            low, high = -ranges, ranges
        elif isinstance(ranges, (tuple, list)) and len(ranges) == 2:
            low, high = ranges
            if isinstance(low, numbers.Real) and isinstance(high, numbers.Real) and low > high:
                raise ValueError(
                    f"{self.scope}: 'ranges' must be (low, high) with low <= high (got {ranges!r})"
                )
        else:
            raise TypeError(
                f"{self.scope}: 'ranges' must be a number r or a pair (low, high) (got {ranges!r})"
            )
        if low is None and high is None:
            raise ValueError(f"{self.scope}: 'ranges' (None, None) clips nothing; give at least one bound")
        return x.clamp_(low, high) if in_place else torch.clamp(x, low, high)


class _Reduction(Craft):
    """``run(x, axis=None, reduce=True)``: reduce over ``axis`` (all axes when None)."""

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        raise NotImplementedError

    def run(
        self, x: torch.Tensor, axis: int | Sequence[int] | None = None, reduce: bool = True
    ) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        if axis is None:
            if not reduce:
                raise ValueError(
                    f"{self.scope}: reduce=False keeps the reduced axes, so it needs an 'axis' (got axis=None)"
                )
            return self._reduce_all(x)
        return self._reduce(x, check_axis(self.scope, x, axis), not reduce)


class Mean(_Reduction):
    """Arithmetic mean over ``axis`` (an int or a tuple; all axes when None).

    ``reduce=False`` keeps the reduced axes with size 1.

    Example:
        >>> Mean()(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), axis=1).tolist()
        [1.5, 4.0]
    """

    def __init__(self, scope: str = "MEAN") -> None:
        super().__init__(scope)

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean()

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        return x.mean(dim=axis, keepdim=keepdim)


class Sum(_Reduction):
    """Sum over ``axis`` (an int or a tuple; all axes when None)."""

    def __init__(self, scope: str = "SUM") -> None:
        super().__init__(scope)

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum()

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        return x.sum(dim=axis, keepdim=keepdim)


class Max(_Reduction):
    """Largest value over ``axis`` (an int or a tuple; all axes when None); values only."""

    def __init__(self, scope: str = "MAX") -> None:
        super().__init__(scope)

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax()

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        return x.amax(dim=axis, keepdim=keepdim)


class Min(_Reduction):
    """Smallest value over ``axis`` (an int or a tuple; all axes when None); values only."""

    def __init__(self, scope: str = "MIN") -> None:
        super().__init__(scope)

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        return x.amin()

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        return x.amin(dim=axis, keepdim=keepdim)


class _ArgReduction(_Reduction):
    _fn: Callable[..., torch.Tensor]

    def _reduce_all(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(x)

    def _reduce(self, x: torch.Tensor, axis: Any, keepdim: bool) -> torch.Tensor:
        if isinstance(axis, tuple):
            raise ValueError(f"{self.scope}: 'axis' must be a single int (got {axis!r})")
        return type(self)._fn(x, dim=axis, keepdim=keepdim)


class Argmax(_ArgReduction):
    """Index of the largest value along one ``axis`` (into the flattened tensor when None)."""

    _fn = staticmethod(torch.argmax)

    def __init__(self, scope: str = "ARGMAX") -> None:
        super().__init__(scope)


class Argmin(_ArgReduction):
    """Index of the smallest value along one ``axis`` (into the flattened tensor when None)."""

    _fn = staticmethod(torch.argmin)

    def __init__(self, scope: str = "ARGMIN") -> None:
        super().__init__(scope)


class _Pairwise(Craft):
    _fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def run(self, x: torch.Tensor, y: torch.Tensor | float) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        if not isinstance(y, torch.Tensor):
            if not isinstance(y, numbers.Real):
                raise TypeError(f"{self.scope}: 'y' must be a tensor or a number (got {type(y).__name__})")
            y = torch.as_tensor(y, dtype=x.dtype, device=x.device)
        try:
            return type(self)._fn(x, y)
        except RuntimeError as err:
            raise ValueError(
                f"{self.scope}: 'x' {shape_of(x)} and 'y' {shape_of(y)} must broadcast together"
            ) from err


class Maxele(_Pairwise):
    """Elementwise maximum of two broadcastable tensors (or a tensor and a number).

    Example:
        >>> Maxele()(torch.tensor([1.0, 5.0]), torch.tensor([3.0, 2.0])).tolist()
        [3.0, 5.0]
    """

    _fn = staticmethod(torch.maximum)

    def __init__(self, scope: str = "MAXELE") -> None:
        super().__init__(scope)


class Minele(_Pairwise):
    """Elementwise minimum of two broadcastable tensors (or a tensor and a number)."""

    _fn = staticmethod(torch.minimum)

    def __init__(self, scope: str = "MINELE") -> None:
        super().__init__(scope)


class Dot(Craft):
    """Matrix products: ``run(x, y, axes=(), in_batch=False)``.

    - ``in_batch=True``: batched product of ``B×n×m`` and ``B×m×p`` (``torch.bmm``).
    - ``axes`` given (an int, or a pair of axis lists): ``torch.tensordot(x, y, dims=axes)``.
    - otherwise: the product of two matrices (``torch.mm``).

    Example:
        >>> Dot()(torch.eye(2), torch.tensor([[1.0], [2.0]])).tolist()
        [[1.0], [2.0]]
    """

    def __init__(self, scope: str = "DOT") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, y: torch.Tensor, axes: Any = (), in_batch: bool = False) -> torch.Tensor:
        if in_batch:
            check_tensor(self.scope, "x", x, 3)
            check_tensor(self.scope, "y", y, 3)
            if x.shape[0] != y.shape[0] or x.shape[2] != y.shape[1]:
                raise ValueError(
                    f"{self.scope}: in_batch needs x B×n×m and y B×m×p (got {shape_of(x)} and {shape_of(y)})"
                )
            return torch.bmm(x, y)
        if isinstance(axes, int) or (isinstance(axes, (tuple, list)) and len(axes) > 0):
            check_tensor(self.scope, "x", x)
            check_tensor(self.scope, "y", y)
            try:
                return torch.tensordot(x, y, dims=axes)
            except RuntimeError as err:
                raise ValueError(
                    f"{self.scope}: cannot contract {shape_of(x)} and {shape_of(y)} over axes={axes!r}: {err}"
                ) from err
        check_tensor(self.scope, "x", x, 2)
        check_tensor(self.scope, "y", y, 2)
        if x.shape[1] != y.shape[0]:
            raise ValueError(
                f"{self.scope}: x {shape_of(x)} and y {shape_of(y)} do not chain (x's columns != y's rows); "
                "pass axes= for other contractions or in_batch=True for batches"
            )
        return torch.mm(x, y)


def _check_index(scope: str, x: torch.Tensor, idx: Any) -> torch.Tensor:
    if not isinstance(idx, torch.Tensor) or idx.dtype != torch.int64:
        got = idx.dtype if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise TypeError(f"{scope}: 'idx' must be an int64 tensor (got {got})")
    if idx.dim() != x.dim():
        raise ValueError(
            f"{scope}: 'idx' must have as many dimensions as 'x' (got {shape_of(idx)} for x {shape_of(x)})"
        )
    return idx


class Scatter(Craft):
    """Write ``y`` into ``x`` at ``idx`` along ``axis``: ``run(x, y, axis, idx, in_place=False)``.

    Follows ``torch.Tensor.scatter``: ``out[..., idx[i], ...] = y[..., i, ...]`` along ``axis``;
    ``y`` may be a tensor shaped like ``idx`` or a number.
    """

    def __init__(self, scope: str = "SCATTER") -> None:
        super().__init__(scope)

    def run(
        self, x: torch.Tensor, y: Any, axis: int, idx: torch.Tensor, in_place: bool = False
    ) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        axis = check_axis(self.scope, x, axis)  # type: ignore[assignment]
        _check_index(self.scope, x, idx)
        try:
            return x.scatter_(axis, idx, y) if in_place else x.scatter(axis, idx, y)
        except RuntimeError as err:
            raise ValueError(
                f"{self.scope}: cannot scatter y {shape_of(y)} into x {shape_of(x)} at idx {shape_of(idx)} "
                f"along axis {axis}: {err}"
            ) from err


class Gather(Craft):
    """Pick values of ``x`` at ``idx`` along ``axis``: ``run(x, axis, idx)`` (``torch.gather``)."""

    def __init__(self, scope: str = "GATHER") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, axis: int, idx: torch.Tensor) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        axis = check_axis(self.scope, x, axis)  # type: ignore[assignment]
        _check_index(self.scope, x, idx)
        try:
            return torch.gather(x, axis, idx)
        except RuntimeError as err:
            raise ValueError(
                f"{self.scope}: cannot gather idx {shape_of(idx)} from x {shape_of(x)} along axis {axis}: {err}"
            ) from err


class Grad(Craft):
    """Gradient of ``o`` with respect to ``i``: ``run(i, o)``, differentiable itself.

    A non-scalar ``o`` is summed first (all-ones output gradient). The graph is kept
    (``create_graph=True``), so the result can enter a loss, e.g. a gradient penalty.

    Returns:
        A tensor shaped like ``i``, or a tuple when ``i`` is a list/tuple of tensors.

    Raises:
        RuntimeError: ``o`` does not depend on ``i`` through a graph (compute it with grad
            enabled, e.g. inside ``Rudder``/``Prober``, from an ``i`` that requires grad).
    """

    def __init__(self, scope: str = "GRAD") -> None:
        super().__init__(scope)

    def run(self, i: torch.Tensor | Sequence[torch.Tensor], o: torch.Tensor) -> Any:
        check_tensor(self.scope, "o", o)
        inputs = tuple(i) if isinstance(i, (tuple, list)) else (check_tensor(self.scope, "i", i),)
        if not o.requires_grad or not all(t.requires_grad for t in inputs):
            raise RuntimeError(
                f"{self.scope}: 'o' must be computed from 'i' with gradients enabled and 'i' must require grad; "
                "use coat(x, as_const=False) and run inside Rudder() or Prober()"
            )
        grads = torch.autograd.grad(
            o,
            inputs,
            grad_outputs=torch.ones_like(o),
            create_graph=True,
            retain_graph=True,
            allow_unused=True,
        )
        grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True))
        return grads if isinstance(i, (tuple, list)) else grads[0]
