"""Parameter initializers: callables that fill a tensor in place, then multiply it by ``scale``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Initializer", "Normal", "Ones", "Orthog", "Uniform", "Void", "XavierNorm", "XavierUnif", "Zeros"]


class Initializer:
    """Base class: ``init(tensor)`` fills ``tensor`` in place (without recording gradients) and returns it."""

    scale: float = 1.0

    def _fill(self, tensor: torch.Tensor) -> None:
        raise NotImplementedError

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{type(self).__name__} initializes a torch.Tensor (got {type(tensor).__name__})")
        with torch.no_grad():
            self._fill(tensor)
            if self.scale != 1:
                tensor.mul_(self.scale)
        return tensor

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _check_fans(name: str, tensor: torch.Tensor) -> None:
    if tensor.dim() < 2:
        raise ValueError(
            f"{name} needs a tensor with at least 2 dimensions to compute fan-in/fan-out "
            f"(got shape {tuple(tensor.shape)}); use Zeros(), Ones(), Normal() or Uniform() for biases"
        )


class XavierNorm(Initializer):
    """Glorot normal initialization, then ``× scale``.

    Example:
        >>> w = torch.empty(4, 3)
        >>> _ = XavierNorm(scale=2)(w)
    """

    def __init__(self, scale: float = 1) -> None:
        self.scale = scale

    def _fill(self, tensor: torch.Tensor) -> None:
        _check_fans("XavierNorm", tensor)
        nn.init.xavier_normal_(tensor)


class XavierUnif(Initializer):
    """Glorot uniform initialization, then ``× scale``."""

    def __init__(self, scale: float = 1) -> None:
        self.scale = scale

    def _fill(self, tensor: torch.Tensor) -> None:
        _check_fans("XavierUnif", tensor)
        nn.init.xavier_uniform_(tensor)


class Normal(Initializer):
    """Samples of ``N(mean, std²)``, then ``× scale``."""

    def __init__(self, mean: float = 0, std: float = 1, scale: float = 1) -> None:
        if std < 0:
            raise ValueError(f"'std' must be >= 0 (got {std})")
        self.mean, self.std, self.scale = mean, std, scale

    def _fill(self, tensor: torch.Tensor) -> None:
        nn.init.normal_(tensor, self.mean, self.std)


class Uniform(Initializer):
    """Samples of ``U(min, max)``, then ``× scale``."""

    def __init__(self, min: float = -1, max: float = 1, scale: float = 1) -> None:
        if min > max:
            raise ValueError(f"'min' must not exceed 'max' (got min={min}, max={max})")
        self.min, self.max, self.scale = min, max, scale

    def _fill(self, tensor: torch.Tensor) -> None:
        nn.init.uniform_(tensor, self.min, self.max)


class Orthog(Initializer):
    """(Semi-)orthogonal initialization, then ``× scale``."""

    def __init__(self, scale: float = 1) -> None:
        self.scale = scale

    def _fill(self, tensor: torch.Tensor) -> None:
        _check_fans("Orthog", tensor)
        nn.init.orthogonal_(tensor)


class Ones(Initializer):
    """All ones, then ``× scale``."""

    def __init__(self, scale: float = 1) -> None:
        self.scale = scale

    def _fill(self, tensor: torch.Tensor) -> None:
        nn.init.ones_(tensor)


class Zeros(Initializer):
    """All zeros."""

    def _fill(self, tensor: torch.Tensor) -> None:
        nn.init.zeros_(tensor)


class Void(Initializer):
    """Leaves the tensor untouched; passed as ``b_init`` it means *no bias*."""

    def _fill(self, tensor: torch.Tensor) -> None:
        return None
