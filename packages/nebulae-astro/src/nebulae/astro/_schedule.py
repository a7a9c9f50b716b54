"""Learning-rate schedules, as per-step multipliers of the initial lr ``lr0``.

Each schedule is used as an optimizer craft's ``lr_decay=``, or called on a plain torch optimizer to
get a ``LambdaLR`` driven by the same multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["CosLR", "ExpLR", "PolyLR", "Schedule", "StepLR", "WavyLR"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"'{name}' must be a positive number (got {type(value).__name__} {value!r})")
    if value <= 0:
        raise ValueError(f"'{name}' must be a positive number (got {value!r})")


class Schedule:
    """Base class: ``multiplier(t, lr0)`` is the factor applied to ``lr0`` at optimizer step ``t`` (from 0)."""

    def multiplier(self, t: int, lr0: float) -> float:
        raise NotImplementedError

    def __call__(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """A ``LambdaLR`` on ``optimizer`` following this schedule (for plain torch training loops)."""
        lambdas = [self._for(group.get("initial_lr", group["lr"])) for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)

    def _for(self, lr0: float) -> Callable[[int], float]:
        return lambda t: self.multiplier(t, lr0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class StepLR(Schedule):
    """``lr0 · factor^(t // period)``: multiply by ``factor`` every ``period`` steps.

    Example:
        >>> StepLR(10, 0.5).multiplier(25, 0.1)
        0.25
    """

    def __init__(self, period: int, factor: float) -> None:
        _positive("period", period)
        _positive("factor", factor)
        self.period, self.factor = period, factor

    def multiplier(self, t: int, lr0: float) -> float:
        return self.factor ** (t // self.period)


class PolyLR(Schedule):
    """``(lr0 − 1e-4)(1 − min(t/cutoff, 1))^power + 1e-4``: polynomial decay to 1e-4 at ``cutoff``."""

    def __init__(self, cutoff: int, power: float) -> None:
        _positive("cutoff", cutoff)
        _positive("power", power)
        self.cutoff, self.power = cutoff, power

    def multiplier(self, t: int, lr0: float) -> float:
        lr = (lr0 - 1e-4) * (1 - min(t / self.cutoff, 1.0)) ** self.power + 1e-4
        return lr / lr0


class CosLR(Schedule):
    """Cosine annealing from ``lr0`` to ``lr0·1e-3`` over ``period`` steps, then constant."""

    def __init__(self, period: int) -> None:
        _positive("period", period)
        self.period = period

    def multiplier(self, t: int, lr0: float) -> float:
        floor = 1e-3
        return floor + (1 - floor) * (1 + math.cos(math.pi * min(t, self.period) / self.period)) / 2


class ExpLR(Schedule):
    """``lr0 · factor^(t / period)``: smooth exponential decay."""

    def __init__(self, period: int, factor: float) -> None:
        _positive("period", period)
        _positive("factor", factor)
        self.period, self.factor = period, factor

    def multiplier(self, t: int, lr0: float) -> float:
        return self.factor ** (t / self.period)


class WavyLR(Schedule):
    """Triangular cycles of ``period`` steps between ``lr0`` and ``lr0/2``, damped each cycle.

    ``lr(t) = lr0/2 + (lr0/2) · dampen^(c−1) · |1 − 2·(t mod period)/period|``, with ``c = t // period + 1``:
    each cycle falls from its peak to ``lr0/2`` over ``period/2`` steps, then climbs back.
    """

    def __init__(self, period: int, dampen: float) -> None:
        _positive("period", period)
        _positive("dampen", dampen)
        self.period, self.dampen = period, dampen

    def multiplier(self, t: int, lr0: float) -> float:
        cycle = t // self.period + 1
        phase = (t % self.period) / self.period
        return 0.5 + 0.5 * self.dampen ** (cycle - 1) * abs(1 - 2 * phase)
