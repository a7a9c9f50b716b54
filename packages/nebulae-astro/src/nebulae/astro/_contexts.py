"""Gradient contexts: ``Rudder`` (train), ``Prober`` (gradients without updates), ``Nozzle`` (no graph)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Nozzle", "Prober", "Rudder"]


class _GradContext:
    _grad: bool = True
    _flag: bool = True

    def __init__(self, *crafts: nn.Module) -> None:
        for craft in crafts:
            if not isinstance(craft, nn.Module):
                raise TypeError(
                    f"{type(self).__name__}() takes crafts or torch modules (got {type(craft).__name__})"
                )
        self._crafts = crafts
        # a stack, so that one instance can be nested in itself and reused
        self._saved: list[tuple[bool, list[bool]]] = []

    def __enter__(self) -> bool:
        modes = [c.training for c in self._crafts]
        self._saved.append((torch.is_grad_enabled(), modes))
        torch.set_grad_enabled(self._grad)
        for craft in self._crafts:
            craft.train(self._flag)
        return self._flag

    def __exit__(self, *exc: Any) -> None:
        grad, modes = self._saved.pop()
        torch.set_grad_enabled(grad)
        for craft, mode in zip(self._crafts, modes, strict=True):
            craft.train(mode)


class Rudder(_GradContext):
    """Training context: gradients on; ``as`` binds True (pass it to ``craft.gear``).

    Args:
        *crafts: optional crafts switched to train mode inside the context and restored on exit.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> with Rudder() as r:
        ...     _ = net.train(r)
    """

    _grad, _flag = True, True


class Prober(_GradContext):
    """Probing context: gradients on, but meant for eval mode (``as`` binds False); nothing is updated."""

    _grad, _flag = True, False


class Nozzle(_GradContext):
    """Inference context: ``torch.no_grad()``; ``as`` binds False."""

    _grad, _flag = False, False
