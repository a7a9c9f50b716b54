"""Activations: Relu, LRelu, PRelu, Gelu, Tanh, Sigm, Sftm, Sftp."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._craft import Craft

__all__ = ["Gelu", "LRelu", "PRelu", "Relu", "Sftm", "Sftp", "Sigm", "Tanh"]


class Relu(Craft):
    """``max(x, 0)``."""

    def __init__(self, scope: str = "RELU") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class LRelu(Craft):
    """Leaky ReLU with slope ``alpha`` below zero."""

    def __init__(self, alpha: float = 0.2, scope: str = "LRELU") -> None:
        super().__init__(scope)
        self.alpha = alpha

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.alpha)


class PRelu(Craft):
    """Parametric ReLU: one learnable slope, initialised to ``alpha``."""

    def __init__(self, alpha: float = 0.2, scope: str = "PRELU") -> None:
        super().__init__(scope)
        self.weight = nn.Parameter(torch.full((1,), float(alpha)))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight)


class Gelu(Craft):
    """Gaussian error linear unit (exact erf form)."""

    def __init__(self, scope: str = "GELU") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


class Tanh(Craft):
    """Hyperbolic tangent."""

    def __init__(self, scope: str = "TANH") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class Sigm(Craft):
    """Logistic sigmoid."""

    def __init__(self, scope: str = "SIGM") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class Sftm(Craft):
    """Softmax over ``axis``."""

    def __init__(self, axis: int = -1, scope: str = "SFTM") -> None:
        super().__init__(scope)
        self.axis = axis

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, self.axis)


class Sftp(Craft):
    """Softplus with β = 1: ``log(1 + exp(x))``."""

    def __init__(self, scope: str = "SFTP") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x)
