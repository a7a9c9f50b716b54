"""Dense/sparse conversion and sparse-dense products as crafts."""

from __future__ import annotations

import torch

from ._craft import Craft
from ._opcheck import check_tensor, shape_of

__all__ = ["D2S", "S2D", "SpDot"]


class D2S(Craft):
    """Dense to sparse COO: ``run(x) -> x.to_sparse()`` (a sparse input is returned as is)."""

    def __init__(self, scope: str = "D2S") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        return x if x.is_sparse else x.to_sparse()


class S2D(Craft):
    """Sparse to dense: ``run(x) -> x.to_dense()`` (a dense input is returned as is)."""

    def __init__(self, scope: str = "S2D") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(self.scope, "x", x)
        return x.to_dense() if x.is_sparse else x


class SpDot(Craft):
    """Matrix product where one operand is a sparse COO tensor: ``run(x, y, in_batch=False)``.

    ``x`` and ``y`` are matrices (``n×m`` and ``m×p``), or batches ``B×n×m`` and ``B×m×p``
    with ``in_batch=True``. Either one may be sparse; the result is dense. Gradients flow to
    the dense operand and to the values of a sparse ``x``.

    Example:
        >>> a = torch.tensor([[0.0, 2.0], [0.0, 0.0]]).to_sparse()
        >>> SpDot()(a, torch.tensor([[1.0], [3.0]])).tolist()
        [[6.0], [0.0]]
    """

    def __init__(self, scope: str = "SPDOT") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, y: torch.Tensor, in_batch: bool = False) -> torch.Tensor:
        ndim = 3 if in_batch else 2
        check_tensor(self.scope, "x", x, ndim)
        check_tensor(self.scope, "y", y, ndim)
        if not (x.is_sparse or y.is_sparse):
            raise ValueError(
                f"{self.scope}: one of 'x' and 'y' must be a sparse tensor; use Dot for dense ones"
            )
        if x.shape[-1] != y.shape[-2] or (in_batch and x.shape[0] != y.shape[0]):
            raise ValueError(f"{self.scope}: x {shape_of(x)} and y {shape_of(y)} do not chain")
        if x.is_sparse and y.is_sparse:
            y = y.to_dense()
        if x.is_sparse:
            return torch.bmm(x, y) if in_batch else torch.sparse.mm(x, y)
        # dense @ sparse == (sparseᵀ @ denseᵀ)ᵀ, which torch supports directly.
        yt = y.transpose(-1, -2).coalesce()
        out = torch.bmm(yt, x.transpose(-1, -2)) if in_batch else torch.sparse.mm(yt, x.transpose(0, 1))
        return out.transpose(-1, -2)
