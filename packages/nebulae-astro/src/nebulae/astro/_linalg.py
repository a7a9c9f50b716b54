"""Linear algebra and spectral crafts on ``torch.linalg`` and ``torch.fft``."""

from __future__ import annotations

from typing import Any

import torch

from ._craft import Craft
from ._opcheck import check_positive_int, check_tensor, shape_of

__all__ = ["FFT", "IFFT", "QR", "Eigen", "MaxEigen"]


def _check_square(scope: str, m: Any) -> torch.Tensor:
    check_tensor(scope, "m", m)
    if m.dim() < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(
            f"{scope}: 'm' must be a square matrix or a batch of them, ...×n×n (got {shape_of(m)})"
        )
    return m


class QR(Craft):
    """QR decomposition: ``run(m, reduced=False) -> (q, r)`` with ``m = q @ r``.

    ``reduced=False`` returns the complete ``q`` (``m×m``); ``reduced=True`` the thin one
    (``m×k``, ``k = min(m, n)``). Works on batches ``...×m×n``.

    Example:
        >>> q, r = QR()(torch.tensor([[3.0, 0.0], [4.0, 5.0]]))
        >>> round(abs(r[0, 0].item()), 4)
        5.0
    """

    def __init__(self, scope: str = "QR") -> None:
        super().__init__(scope)

    def run(self, m: torch.Tensor, reduced: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor(self.scope, "m", m)
        if m.dim() < 2:
            raise ValueError(f"{self.scope}: 'm' must be a matrix or a batch of them (got {shape_of(m)})")
        q, r = torch.linalg.qr(m, mode="reduced" if reduced else "complete")
        return q, r


class Eigen(Craft):
    """Eigen-decomposition: ``run(m, in_pair=True, symmetric=False)``.

    A general square matrix gives complex eigenvalues and eigenvectors (``torch.linalg.eig``);
    ``symmetric=True`` uses ``torch.linalg.eigh`` (real, ascending, lower triangle read).

    Returns:
        ``(values, vectors)`` with ``vectors[..., :, j]`` belonging to ``values[..., j]`` when
        ``in_pair`` is True, else ``values`` alone.
    """

    def __init__(self, scope: str = "EIGEN") -> None:
        super().__init__(scope)

    def run(self, m: torch.Tensor, in_pair: bool = True, symmetric: bool = False) -> Any:
        _check_square(self.scope, m)
        if symmetric:
            if in_pair:
                return tuple(torch.linalg.eigh(m))
            return torch.linalg.eigvalsh(m)
        if in_pair:
            return tuple(torch.linalg.eig(m))
        return torch.linalg.eigvals(m)


class MaxEigen(Craft):
    """Dominant eigenpair of a real symmetric matrix by ``niters`` steps of power iteration.

    ``run(m, in_pair=True, v0=None)``: starts from ``v0`` (a vector, or a batch of them), by
    default a fixed pseudo-random unit vector (the same every call, so results repeat). The
    eigenvalue is the Rayleigh quotient ``vᵀ m v`` of the last unit iterate; the dominant
    eigenvalue is the largest in magnitude (the largest one for positive semi-definite ``m``).

    Args:
        niters: power-iteration steps (>= 1); more steps, better estimates.
        scope: the craft's name.

    Returns:
        ``(value, vector)`` when ``in_pair``, else ``value``; batched over leading axes.

    Raises:
        ValueError: ``m`` is not square and symmetric.

    Example:
        >>> val = MaxEigen(niters=50)(torch.diag(torch.tensor([1.0, 3.0])), in_pair=False)
        >>> round(val.item(), 3)
        3.0
    """

    def __init__(self, niters: int = 3, scope: str = "MAXEIGEN") -> None:
        super().__init__(scope)
        self.niters = check_positive_int(scope, "niters", niters)

    def run(self, m: torch.Tensor, in_pair: bool = True, v0: torch.Tensor | None = None) -> Any:
        _check_square(self.scope, m)
        if not torch.allclose(m, m.mT, rtol=1e-5, atol=1e-6):
            raise ValueError(f"{self.scope}: 'm' must be symmetric (m == m.T) for power iteration")
        n = m.shape[-1]
        if v0 is None:
            gen = torch.Generator().manual_seed(n)
            v = torch.randn(n, generator=gen, dtype=m.dtype).to(m.device).expand(*m.shape[:-1]).clone()
        else:
            check_tensor(self.scope, "v0", v0)
            if v0.shape[-1] != n:
                raise ValueError(
                    f"{self.scope}: 'v0' must have {n} entries on its last axis (got {shape_of(v0)})"
                )
            v = v0.to(m.dtype)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        for _ in range(self.niters):
            v = (m @ v.unsqueeze(-1)).squeeze(-1)
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        value = (v.unsqueeze(-2) @ m @ v.unsqueeze(-1)).squeeze(-1).squeeze(-1)
        return (value, v) if in_pair else value


def _spectral_dims(scope: str, m: torch.Tensor, dim: int) -> tuple[int, ...]:
    check_tensor(scope, "m", m)
    if m.dim() < dim:
        raise ValueError(f"{scope}: a {dim}-d transform needs at least {dim} axes (got {shape_of(m)})")
    return tuple(range(-dim, 0))


def _check_dim(scope: str, dim: Any) -> int:
    if isinstance(dim, bool) or dim not in (1, 2, 3):
        raise ValueError(f"{scope}: 'dim' must be 1, 2 or 3 (the transformed trailing axes) (got {dim!r})")
    return int(dim)


class FFT(Craft):
    """Discrete Fourier transform over the last ``dim`` axes (``torch.fft.fftn``).

    ``run(m, normal=False, in_pair=True)``: ``m`` is real or complex; ``normal=True`` scales
    by ``1/sqrt(N)`` (orthonormal). Returns the complex spectrum ``ft``, and with ``in_pair``
    also its ``amplitude = sqrt(re² + im² + eps)`` and ``phase = atan2(im, re + eps)``; ``eps``
    keeps both differentiable where the spectrum is zero.

    Example:
        >>> ft = FFT(1)(torch.tensor([1.0, 1.0]), in_pair=False)
        >>> ft.real.tolist()
        [2.0, 0.0]
    """

    def __init__(self, dim: int, eps: float = 1e-10, scope: str = "FFT") -> None:
        super().__init__(scope)
        self.dim = _check_dim(scope, dim)
        if not eps >= 0:
            raise ValueError(f"{scope}: 'eps' must be >= 0 (got {eps})")
        self.eps = float(eps)

    def run(self, m: torch.Tensor, normal: bool = False, in_pair: bool = True) -> Any:
        dims = _spectral_dims(self.scope, m, self.dim)
        ft = torch.fft.fftn(m, dim=dims, norm="ortho" if normal else "backward")
        if not in_pair:
            return ft
        real, imag = ft.real, ft.imag
        amplitude = torch.sqrt(real**2 + imag**2 + self.eps)
        phase = torch.atan2(imag, real + self.eps)
        return ft, amplitude, phase


class IFFT(Craft):
    """Inverse transform of :class:`FFT` over the last ``dim`` axes: ``run(m, normal=False, real=False)``.

    ``normal`` must match the forward call. ``real=True`` returns the real part (for a
    spectrum that came from a real signal), else the complex result.
    """

    def __init__(self, dim: int, scope: str = "IFFT") -> None:
        super().__init__(scope)
        self.dim = _check_dim(scope, dim)

    def run(self, m: torch.Tensor, normal: bool = False, real: bool = False) -> torch.Tensor:
        dims = _spectral_dims(self.scope, m, self.dim)
        out = torch.fft.ifftn(m, dim=dims, norm="ortho" if normal else "backward")
        return out.real if real else out
