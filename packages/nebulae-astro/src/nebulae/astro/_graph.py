"""Graph convolutions: spectral (eigenbasis), Laplacian powers and sparse adjacency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ._craft import Craft
from ._initializers import Void, XavierNorm, Zeros
from ._opcheck import check_positive_int, shape_of

__all__ = ["GraphConvAdj", "GraphConvEig", "GraphConvLap"]

Init = Callable[[torch.Tensor], Any]


def _as_matrix(scope: str, name: str, m: Any) -> torch.Tensor:
    if isinstance(m, np.ndarray):
        m = torch.from_numpy(np.array(m, dtype=np.float32))
    if not isinstance(m, torch.Tensor):
        raise TypeError(f"{scope}: '{name}' must be a torch.Tensor or a NumPy array (got {type(m).__name__})")
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(
            f"{scope}: '{name}' must be a square V×V matrix over the graph's nodes (got {shape_of(m)})"
        )
    return m.float() if not m.is_floating_point() else m


class _GraphConv(Craft):
    """Shared parts: the channel projection ``W`` (no bias), an optional bias, the input check."""

    # graph structure buffers, registered by the subclasses
    eigm: torch.Tensor
    powers: torch.Tensor
    adj: torch.Tensor

    def __init__(
        self, in_chs: int, out_chs: int, nnodes: int, w_init: Init, b_init: Init, scope: str
    ) -> None:
        super().__init__(scope)
        check_positive_int(scope, "in_chs", in_chs)
        check_positive_int(scope, "out_chs", out_chs)
        self.in_chs, self.out_chs, self.nnodes = in_chs, out_chs, nnodes
        self.proj = nn.Linear(in_chs, out_chs, bias=False)
        w_init(self.proj.weight)
        if isinstance(b_init, Void):
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.empty(out_chs))
            b_init(self.bias)

    def _project(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.scope}: 'x' must be a torch.Tensor (got {type(x).__name__})")
        if x.dim() not in (2, 3) or tuple(x.shape[-2:]) != (self.nnodes, self.in_chs):
            raise ValueError(
                f"{self.scope}: 'x' must be V×C or N×V×C with V={self.nnodes} nodes and C={self.in_chs} "
                f"channels (got {shape_of(x)})"
            )
        return self.proj(x)

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias

    def weights(self) -> torch.Tensor:
        """The channel projection's weight, ``out_chs×in_chs``."""
        return self.proj.weight


class GraphConvEig(_GraphConv):
    """Spectral graph convolution in the Laplacian's eigenbasis.

    ``run(x) = U · (θ ⊙ (Uᵀ · x W)) + b``: ``x`` is ``V×C`` or ``N×V×C`` (nodes, then channels),
    ``U`` (``eigm``) holds the eigenvectors as columns, ``θ`` is a learnt ``V×1`` filter over
    the graph frequencies and ``W`` a learnt ``in_chs→out_chs`` projection.

    Args:
        in_chs: input channels per node.
        out_chs: output channels per node.
        eigm: the ``V×V`` eigenvector matrix (tensor or NumPy array); stored as a non-persistent buffer.
        w_init: initializer of ``θ`` and ``W``.
        b_init: initializer of ``b``; ``Void()`` means no bias.
        scope: the craft's name.

    Example:
        >>> conv = GraphConvEig(3, 5, torch.eye(4))
        >>> tuple(conv(torch.zeros(2, 4, 3)).shape)
        (2, 4, 5)
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        eigm: Any,
        w_init: Init = XavierNorm(),  # noqa: B008
        b_init: Init = Zeros(),  # noqa: B008
        scope: str = "GRAPHCONVEIG",
    ) -> None:
        eigm = _as_matrix(scope, "eigm", eigm)
        super().__init__(in_chs, out_chs, eigm.shape[0], w_init, b_init, scope)
        self.register_buffer("eigm", eigm.detach().clone(), persistent=False)
        self.filter = nn.Parameter(torch.empty(eigm.shape[0], 1))
        w_init(self.filter)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        h = self._project(x)
        spectrum = self.eigm.mT @ h
        return self._finish(self.eigm @ (self.filter * spectrum))


class GraphConvLap(_GraphConv):
    """Graph convolution by a learnt polynomial of the Laplacian.

    ``run(x) = (Σ_{k<order} θ_k L^k) · x W + b``, with ``L^0 = I``: each node mixes features
    from up to ``order − 1`` hops away. The powers are computed once, at construction.

    Args:
        order: number of polynomial terms (>= 1).
        in_chs: input channels per node.
        out_chs: output channels per node.
        lap: the ``V×V`` Laplacian (dense or sparse tensor, or NumPy array).
        w_init: initializer of ``θ`` (``order×1``) and ``W``.
        b_init: initializer of ``b``; ``Void()`` means no bias.
        scope: the craft's name.
    """

    def __init__(
        self,
        order: int,
        in_chs: int,
        out_chs: int,
        lap: Any,
        w_init: Init = XavierNorm(),  # noqa: B008
        b_init: Init = Zeros(),  # noqa: B008
        scope: str = "GRAPHCONVLAP",
    ) -> None:
        check_positive_int(scope, "order", order)
        if isinstance(lap, torch.Tensor) and lap.is_sparse:
            lap = lap.to_dense()
        lap = _as_matrix(scope, "lap", lap).detach()
        super().__init__(in_chs, out_chs, lap.shape[0], w_init, b_init, scope)
        powers = [torch.eye(lap.shape[0], dtype=lap.dtype, device=lap.device)]
        for _ in range(order - 1):
            powers.append(powers[-1] @ lap)
        self.order = order
        self.register_buffer("powers", torch.stack(powers), persistent=False)
        self.filter = nn.Parameter(torch.empty(order, 1))
        w_init(self.filter)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        h = self._project(x)
        mix = (self.filter.view(-1, 1, 1) * self.powers).sum(dim=0)
        return self._finish(mix @ h)


class GraphConvAdj(_GraphConv):
    """Graph convolution over a (sparse) adjacency matrix: ``run(x) = A · x W + b``.

    ``A`` is typically the normalised adjacency with self-loops, ``D^-½ (A + I) D^-½``
    (Kipf & Welling). It is kept sparse; a dense ``adj`` is converted.

    Args:
        in_chs: input channels per node.
        out_chs: output channels per node.
        adj: the ``V×V`` adjacency (sparse or dense tensor, or NumPy array).
        w_init: initializer of ``W``.
        b_init: initializer of ``b``; ``Void()`` means no bias.
        scope: the craft's name.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        adj: Any,
        w_init: Init = XavierNorm(),  # noqa: B008
        b_init: Init = Zeros(),  # noqa: B008
        scope: str = "GRAPHCONVADJ",
    ) -> None:
        if isinstance(adj, torch.Tensor) and adj.is_sparse:
            if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
                raise ValueError(f"{scope}: 'adj' must be a square V×V matrix (got {shape_of(adj)})")
            adj = adj.float() if not adj.is_floating_point() else adj
        else:
            adj = _as_matrix(scope, "adj", adj).to_sparse()
        super().__init__(in_chs, out_chs, adj.shape[0], w_init, b_init, scope)
        self.register_buffer("adj", adj.detach().coalesce(), persistent=False)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        h = self._project(x)
        if h.dim() == 2:
            return self._finish(torch.sparse.mm(self.adj, h))
        n, v, c = h.shape
        flat = h.transpose(0, 1).reshape(v, n * c)
        y = torch.sparse.mm(self.adj, flat).reshape(v, n, c).transpose(0, 1)
        return self._finish(y)
