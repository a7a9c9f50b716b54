"""Normalisation and regularisation: Dropout, BN, IN, CBN, CIN, LN, GN, SN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ._craft import Craft
from ._layer import shape_error

__all__ = ["BN", "CBN", "CIN", "GN", "IN", "LN", "SN", "Dropout"]

_EPS = 1e-5


def _check_dim(scope: str, dim: Any) -> int:
    if dim not in (1, 2, 3):
        raise ValueError(f"{scope}: 'dim' must be 1, 2 or 3 spatial dimensions (got {dim!r})")
    return int(dim)


class _Affine(Craft):
    """A craft with an optional learnt affine ``weight``/``bias`` (``resilient``)."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None

    def _affine(self, shape: int | tuple[int, ...], resilient: bool) -> None:
        self.resilient = resilient
        if resilient:
            self.weight = nn.Parameter(torch.ones(shape))
            self.bias = nn.Parameter(torch.zeros(shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def weights(self) -> torch.Tensor:
        if self.weight is None:
            raise NotImplementedError(f"{self.scope}: built with resilient=False, so it has no weight")
        return self.weight


def _check_input(craft: Craft, x: torch.Tensor, chs: int, dim: int) -> None:
    ranks = (2, 3) if dim == 1 else (dim + 2,)
    if x.dim() not in ranks or x.shape[1] != chs:
        raise shape_error(craft, f"N×{chs}×{dim} spatial dims", x)


class Dropout(Craft):
    """Dropout with probability ``p_drop``: element-wise for ``dim=1``, whole channels for ``dim`` 2 or 3.

    Example:
        >>> Dropout(0.5, 2).gear(False)(torch.ones(1, 2, 3, 3)).sum().item()
        18.0
    """

    def __init__(self, p_drop: float, dim: int = 1, scope: str = "DROPOUT") -> None:
        super().__init__(scope)
        if not 0 <= p_drop <= 1:
            raise ValueError(f"{scope}: 'p_drop' must lie in [0, 1] (got {p_drop!r})")
        self.p_drop, self.dim = float(p_drop), _check_dim(scope, dim)
        self._fn = {1: F.dropout, 2: F.dropout2d, 3: F.dropout3d}[self.dim]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, self.p_drop, self.training)


class _RunningNorm(_Affine):
    """Shared parameters of BN and IN: affine weight/bias and (for BN) running statistics."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, out_chs: int, dim: int, mmnt: float, resilient: bool, track: bool, scope: str) -> None:
        super().__init__(scope)
        if not isinstance(out_chs, int) or out_chs < 1:
            raise ValueError(f"{scope}: 'out_chs' must be a positive int (got {out_chs!r})")
        if not 0 <= mmnt <= 1:
            raise ValueError(f"{scope}: 'mmnt' must lie in [0, 1] (got {mmnt!r})")
        self.out_chs, self.dim = out_chs, _check_dim(scope, dim)
        self.momentum, self.eps = 1 - mmnt, _EPS
        self._affine(out_chs, resilient)
        if track:
            self.register_buffer("running_mean", torch.zeros(out_chs))
            self.register_buffer("running_var", torch.ones(out_chs))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))


class BN(_RunningNorm):
    """Batch normalisation over N×C×(1-3 spatial dims).

    Args:
        out_chs: channels.
        dim: spatial dimensions (1, 2 or 3).
        mmnt: running-average momentum in the TensorFlow sense (torch momentum = 1 − mmnt).
        resilient: learn an affine weight and bias.
        scope: the craft's name.

    Example:
        >>> BN(3, 2)(torch.randn(4, 3, 5, 5)).shape
        torch.Size([4, 3, 5, 5])
    """

    def __init__(
        self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "BN"
    ) -> None:
        super().__init__(out_chs, dim, mmnt, resilient, True, scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x, self.out_chs, self.dim)
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )


class IN(_RunningNorm):
    """Instance normalisation (per sample and channel); same arguments as :class:`BN`."""

    def __init__(
        self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "IN"
    ) -> None:
        super().__init__(out_chs, dim, mmnt, resilient, False, scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dim + 2 or x.shape[1] != self.out_chs:
            raise shape_error(self, f"N×{self.out_chs}×{self.dim} spatial dims", x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, momentum=self.momentum, eps=self.eps)


class _Conditional(Craft):
    """γ and β computed from a condition ``z`` through Linear(in→in/2)–ReLU–Linear(→out)."""

    def __init__(self, norm: _RunningNorm, in_chs: int, out_chs: int, scope: str) -> None:
        super().__init__(scope)
        if not isinstance(in_chs, int) or in_chs < 1:
            raise ValueError(f"{scope}: 'in_chs' must be a positive int (got {in_chs!r})")
        hidden = max(1, in_chs // 2)
        self.in_chs, self.out_chs = in_chs, out_chs
        self.norm = norm
        self.gamma = nn.Sequential(nn.Linear(in_chs, hidden), nn.ReLU(), nn.Linear(hidden, out_chs))
        self.beta = nn.Sequential(nn.Linear(in_chs, hidden), nn.ReLU(), nn.Linear(hidden, out_chs))
        self._last_gamma: torch.Tensor | None = None

    def run(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.in_chs or z.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self.scope} ({type(self).__name__}): the condition must be N×{self.in_chs} with the batch "
                f"size of x {tuple(x.shape)} (got {tuple(z.shape)})"
            )
        y = self.norm(x)
        view = (x.shape[0], self.out_chs) + (1,) * (x.dim() - 2)
        gamma = self.gamma(z)
        self._last_gamma = gamma
        return y * gamma.view(view) + self.beta(z).view(view)

    def weights(self) -> torch.Tensor:
        """The γ of the last run (N×out_chs)."""
        if self._last_gamma is None:
            raise RuntimeError(
                f"{self.scope}: weights() of a conditional norm exist only after its first run"
            )
        return self._last_gamma


class CBN(_Conditional):
    """Conditional batch norm: ``run(x, z)`` normalises x, then scales/shifts by γ(z), β(z).

    Example:
        >>> CBN(8, 3, 2)(torch.randn(4, 3, 5, 5), torch.randn(4, 8)).shape
        torch.Size([4, 3, 5, 5])
    """

    def __init__(
        self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CBN"
    ) -> None:
        super().__init__(BN(out_chs, dim, mmnt, resilient=False, scope=f"{scope}_BN"), in_chs, out_chs, scope)


class CIN(_Conditional):
    """Conditional instance norm: ``run(x, z)``; see :class:`CBN`."""

    def __init__(
        self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CIN"
    ) -> None:
        super().__init__(IN(out_chs, dim, mmnt, resilient=False, scope=f"{scope}_IN"), in_chs, out_chs, scope)


class LN(_Affine):
    """Layer normalisation over the trailing ``norm_shape``.

    A multi-dimensional ``norm_shape`` is given channel-last, e.g. ``(H, W, C)``, and reordered to
    ``(C, H, W)`` to match NCHW tensors.

    Example:
        >>> LN((5, 5, 3))(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """

    def __init__(self, norm_shape: int | Sequence[int], resilient: bool = True, scope: str = "LN") -> None:
        super().__init__(scope)
        shape = (norm_shape,) if isinstance(norm_shape, int) else tuple(norm_shape)
        if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ValueError(
                f"{scope}: 'norm_shape' must be a positive int or a tuple of them (got {norm_shape!r})"
            )
        self.norm_shape = shape[-1:] + shape[:-1] if len(shape) > 1 else shape
        self.eps = _EPS
        self._affine(self.norm_shape, resilient)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[x.dim() - len(self.norm_shape) :]) != self.norm_shape or x.dim() <= len(
            self.norm_shape
        ):
            raise shape_error(self, f"trailing dims {self.norm_shape}", x)
        return F.layer_norm(x, self.norm_shape, self.weight, self.bias, self.eps)


class GN(_Affine):
    """Group normalisation of ``out_chs`` channels in ``ngroup`` groups.

    Example:
        >>> GN(4, 2)(torch.randn(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """

    def __init__(self, out_chs: int, ngroup: int, resilient: bool = True, scope: str = "GN") -> None:
        super().__init__(scope)
        if not isinstance(ngroup, int) or ngroup < 1 or not isinstance(out_chs, int) or out_chs % ngroup:
            raise ValueError(f"{scope}: 'out_chs' ({out_chs!r}) must be divisible by 'ngroup' ({ngroup!r})")
        self.out_chs, self.ngroup, self.eps = out_chs, ngroup, _EPS
        self._affine(out_chs, resilient)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.out_chs:
            raise shape_error(self, f"N×{self.out_chs}×...", x)
        return F.group_norm(x, self.ngroup, self.weight, self.bias, self.eps)


class SN(Craft):
    """Spectral normalisation of a craft's (or module's) ``pname`` parameter, by power iteration.

    Args:
        craft: the wrapped Conv/Dense/Embed/norm craft or any torch module.
        niters: power iterations per training forward pass.
        eps: numerical floor of the norm.
        pname: the parameter to normalise.
        scope: the craft's name.

    Example:
        >>> from nebulae.astro.dock import Dense
        >>> SN(Dense(4, 3))(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, craft: nn.Module, niters: int = 3, eps: float = 1e-12, pname: str = "weight", scope: str = "SN"
    ) -> None:
        super().__init__(scope)
        if not isinstance(craft, nn.Module):
            raise TypeError(f"{scope}: 'craft' must be a Craft or torch module (got {type(craft).__name__})")
        if not isinstance(getattr(craft, pname, None), nn.Parameter):
            raise ValueError(f"{scope}: the wrapped {type(craft).__name__} has no parameter named {pname!r}")
        if not isinstance(niters, int) or niters < 1:
            raise ValueError(f"{scope}: 'niters' must be a positive int (got {niters!r})")
        self.pname = pname
        self.hull = spectral_norm(craft, name=pname, n_power_iterations=niters, eps=eps)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.hull(*args, **kwargs)

    def weights(self) -> torch.Tensor:
        return getattr(self.hull, self.pname)
