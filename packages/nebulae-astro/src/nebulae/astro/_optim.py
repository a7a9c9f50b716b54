"""Optimizer crafts: ``optz(loss)`` back-propagates, accumulates, clips, steps and schedules the lr."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ._compat import compiled_original
from ._craft import Craft, walk_path
from ._rules import LambRule, LionRule
from ._schedule import Schedule

__all__ = ["Adam", "AdamW", "Lamb", "Lion", "Momentum", "Nesterov", "Optimizer", "RMSProp"]

_STATE_KEYS = ("optimizer", "step", "calls", "scaler")


def _unwrap(hull: nn.Module) -> nn.Module:
    # compiled modules keep the real one inside; (Distributed)DataParallel in .module
    while True:
        if (original := compiled_original(hull)) is not None:
            hull = original
        elif isinstance(hull, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            hull = hull.module
        else:
            return hull


def collect_params(hull: nn.Module, update_scope: str | Sequence[str] | None) -> list[nn.Parameter]:
    """The hull's parameters, or the de-duplicated union of those under the ``update_scope`` paths."""
    hull = _unwrap(hull)
    if update_scope is None:
        params = list(hull.vars() if isinstance(hull, Craft) else hull.parameters())
    else:
        paths = [update_scope] if isinstance(update_scope, str) else list(update_scope)
        params, seen = [], set()
        for path in paths:
            sub = walk_path(hull, path)
            if not isinstance(sub, nn.Module):
                raise TypeError(
                    f"'update_scope' path {path!r} leads to a {type(sub).__name__}, not a craft or module"
                )
            for p in sub.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError(
            f"the hull {type(hull).__name__} has no trainable parameters to optimize (update_scope={update_scope!r})"
        )
    return params


class Optimizer(Craft):
    """Base of the optimizer crafts; ``optz(loss)`` runs one training update.

    Each call back-propagates ``loss / grad_accum``. Every ``grad_accum``-th call clips the gradients
    (see below), steps, zeroes the gradients and moves the lr along warm-up and schedule:
    step ``t`` (from 0) runs at ``lr0·(t+1)/warmup`` while ``t < warmup``, then at
    ``lr0·lr_decay.multiplier(t − warmup, lr0)``.

    Two clippings, both off by default and applied in this order when both are set (after unscaling under
    ``mixp``):

    - ``grad_limit`` clips by value: every gradient entry is clamped to ``[-grad_limit, grad_limit]``
      (``torch.nn.utils.clip_grad_value_``); the direction of the gradient may change.
    - ``grad_norm_limit`` clips by global norm: when the L2 norm of all trained gradients taken together
      exceeds it, they are all scaled down by one factor so that it equals ``grad_norm_limit``
      (``torch.nn.utils.clip_grad_norm_``, what most training loops mean by "gradient clipping"); the
      direction is kept. The norm before clipping of the last step is in ``optz.last_grad_norm``.

    Args:
        hull: the craft (or torch module) whose parameters are trained.
        lr: the initial learning rate ``lr0``.
        wd: weight decay.
        lr_decay: a schedule (``StepLR``, ``PolyLR``, ``CosLR``, ``ExpLR``, ``WavyLR``), a callable
            ``t → multiplier``, or None for a constant lr.
        warmup: number of warm-up optimizer steps.
        grad_limit: clip by value: clamp each gradient entry to ``±grad_limit`` when > 0.
        grad_norm_limit: clip by global norm: rescale all gradients so that their joint L2 norm is at most
            ``grad_norm_limit`` when > 0.
        grad_accum: number of calls whose gradients are accumulated per optimizer step.
        update_scope: a ``/`` path (or a list of them) of the sub-crafts to train; None trains all.
        mixp: scale the loss with a ``torch.amp.GradScaler`` (for float16 ``Craft.mixp``).
        scope: the craft's name.
    """

    def __init__(
        self,
        hull: nn.Module,
        lr: float,
        *,
        wd: float = 0.0,
        lr_decay: Schedule | Callable[[int], float] | None = None,
        warmup: int = 0,
        grad_limit: float = -1,
        grad_norm_limit: float = -1,
        grad_accum: int = 1,
        update_scope: str | Sequence[str] | None = None,
        mixp: bool = False,
        scope: str,
    ) -> None:
        super().__init__(scope)
        if not isinstance(hull, nn.Module):
            raise TypeError(f"{scope}: 'hull' must be a Craft or torch module (got {type(hull).__name__})")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
            raise ValueError(f"{scope}: 'lr' must be a positive number (got {lr!r})")
        if wd < 0:
            raise ValueError(f"{scope}: 'wd' must be >= 0 (got {wd!r})")
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"{scope}: 'warmup' must be an int >= 0 (got {warmup!r})")
        for name, limit in (("grad_limit", grad_limit), ("grad_norm_limit", grad_norm_limit)):
            if isinstance(limit, bool) or not isinstance(limit, (int, float)):
                raise TypeError(
                    f"{scope}: {name!r} must be a number (> 0 to clip, <= 0 for no clipping) (got {limit!r})"
                )
        if not isinstance(grad_accum, int) or grad_accum < 1:
            raise ValueError(f"{scope}: 'grad_accum' must be a positive int (got {grad_accum!r})")
        if lr_decay is not None and not callable(lr_decay) and not isinstance(lr_decay, Schedule):
            raise TypeError(f"{scope}: 'lr_decay' must be a schedule such as StepLR(...) (got {lr_decay!r})")
        self.params = collect_params(hull, update_scope)
        # the hull is referenced, not registered: its parameters belong to it, not to the optimizer
        self.__dict__["hull"] = hull
        self.lr0, self.wd, self.lr_decay, self.warmup = float(lr), float(wd), lr_decay, warmup
        self.grad_limit, self.grad_accum, self.use_scaler = float(grad_limit), grad_accum, bool(mixp)
        self.grad_norm_limit = float(grad_norm_limit)
        self._grad_norm: torch.Tensor | None = None
        self.optimizer = self._build(self.params)
        self.step_count, self.call_count = 0, 0
        self.scaler: Any = None
        self._scaler_state: dict[str, Any] | None = None
        self._apply_lr()

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        raise NotImplementedError

    # -- lr ------------------------------------------------------------------------------------------------
    def factor(self, t: int) -> float:
        """The lr multiplier of optimizer step ``t`` (warm-up, then the schedule)."""
        if t < self.warmup:
            return (t + 1) / self.warmup
        if self.lr_decay is None:
            return 1.0
        if isinstance(self.lr_decay, Schedule):
            return self.lr_decay.multiplier(t - self.warmup, self.lr0)
        return float(self.lr_decay(t - self.warmup))

    def _apply_lr(self) -> None:
        lr = self.lr0 * self.factor(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def last_grad_norm(self) -> float | None:
        """The global L2 gradient norm, before clipping, of the last step clipped by ``grad_norm_limit``."""
        return None if self._grad_norm is None else float(self._grad_norm)

    # -- update --------------------------------------------------------------------------------------------
    def _get_scaler(self) -> Any:
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.params[0].device.type)
            if self._scaler_state is not None:
                self.scaler.load_state_dict(self._scaler_state)
                self._scaler_state = None
        return self.scaler

    def run(self, loss: torch.Tensor) -> None:
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"{self.scope}: optz(loss) needs a scalar loss tensor (got {shape})")
        if not loss.requires_grad:
            raise ValueError(
                f"{self.scope}: the loss does not require grad; compute it inside Rudder(), not Nozzle()"
            )
        scaled = loss / self.grad_accum if self.grad_accum > 1 else loss
        scaler = self._get_scaler() if self.use_scaler else None
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        self.call_count += 1
        if self.call_count % self.grad_accum:
            return
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        if self.grad_limit > 0:
            nn.utils.clip_grad_value_(self.params, self.grad_limit)
        if self.grad_norm_limit > 0:
            # kept as a tensor: reading it as a float would wait for the GPU on every step
            self._grad_norm = nn.utils.clip_grad_norm_(self.params, self.grad_norm_limit)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        self._apply_lr()

    # -- state ---------------------------------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Optimizer, step and call counters (schedule and warm-up position) and scaler state.

        Gradients accumulated in the middle of a ``grad_accum`` cycle are not part of it.
        """
        if args or kwargs:  # called by a parent module's state_dict: the optimizer holds no module state
            return super().state_dict(*args, **kwargs)
        scaler = self.scaler.state_dict() if self.scaler is not None else self._scaler_state
        return {
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "calls": self.call_count,
            "scaler": scaler,
        }

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        """Resume from :meth:`state_dict`."""
        missing = [k for k in _STATE_KEYS if k not in state_dict]
        if missing:
            raise KeyError(f"{self.scope}: not an optimizer-craft state (missing {', '.join(missing)})")
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.step_count, self.call_count = int(state_dict["step"]), int(state_dict["calls"])
        self.scaler, self._scaler_state = None, state_dict["scaler"]
        if self._scaler_state is not None and self.use_scaler:
            self._get_scaler()
        self._apply_lr()
        return None

    def extra_repr(self) -> str:
        return f"scope={self.scope!r}, lr={self.lr:g}, step={self.step_count}"


class Momentum(Optimizer):
    """SGD with momentum ``mmnt``. See :class:`Optimizer` for the shared arguments.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> optz = Momentum(net, 0.1)
        >>> optz(net(torch.ones(4, 2)).pow(2).mean())
    """

    def __init__(
        self, hull: nn.Module, lr: float, mmnt: float = 0.9, scope: str = "MOMENTUM", **shared: Any
    ) -> None:
        self.mmnt = mmnt
        super().__init__(hull, lr, scope=scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.lr0, momentum=self.mmnt, weight_decay=self.wd)


class Nesterov(Optimizer):
    """SGD with Nesterov momentum ``mmnt``."""

    def __init__(
        self, hull: nn.Module, lr: float, mmnt: float = 0.9, scope: str = "NESTEROV", **shared: Any
    ) -> None:
        self.mmnt = mmnt
        super().__init__(hull, lr, scope=scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.lr0, momentum=self.mmnt, nesterov=True, weight_decay=self.wd)


class RMSProp(Optimizer):
    """RMSProp with momentum ``mmnt`` (torch's smoothing constant 0.99)."""

    def __init__(
        self, hull: nn.Module, lr: float, mmnt: float = 0.0, scope: str = "RMSPROP", **shared: Any
    ) -> None:
        self.mmnt = mmnt
        super().__init__(hull, lr, scope=scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(params, lr=self.lr0, momentum=self.mmnt, weight_decay=self.wd)


class _TwoMoments(Optimizer):
    def __init__(
        self, hull: nn.Module, lr: float, mmnt1: float, mmnt2: float, scope: str, **shared: Any
    ) -> None:
        for name, value in (("mmnt1", mmnt1), ("mmnt2", mmnt2)):
            if not 0 <= value < 1:
                raise ValueError(f"{scope}: '{name}' must lie in [0, 1) (got {value!r})")
        self.betas = (mmnt1, mmnt2)
        super().__init__(hull, lr, scope=scope, **shared)


class Adam(_TwoMoments):
    """Adam with ``betas = (mmnt1, mmnt2)`` (L2 weight decay ``wd``)."""

    def __init__(
        self,
        hull: nn.Module,
        lr: float,
        mmnt1: float = 0.9,
        mmnt2: float = 0.999,
        scope: str = "ADAM",
        **shared: Any,
    ) -> None:
        super().__init__(hull, lr, mmnt1, mmnt2, scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr0, betas=self.betas, weight_decay=self.wd)


class AdamW(_TwoMoments):
    """AdamW: Adam with decoupled weight decay ``wd``."""

    def __init__(
        self,
        hull: nn.Module,
        lr: float,
        mmnt1: float = 0.9,
        mmnt2: float = 0.999,
        scope: str = "ADAMW",
        **shared: Any,
    ) -> None:
        super().__init__(hull, lr, mmnt1, mmnt2, scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=self.lr0, betas=self.betas, weight_decay=self.wd)


class Lion(_TwoMoments):
    """Lion: sign of interpolated momentum, decoupled weight decay ``wd``."""

    def __init__(
        self,
        hull: nn.Module,
        lr: float,
        mmnt1: float = 0.9,
        mmnt2: float = 0.99,
        scope: str = "LION",
        **shared: Any,
    ) -> None:
        super().__init__(hull, lr, mmnt1, mmnt2, scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return LionRule(params, lr=self.lr0, betas=self.betas, weight_decay=self.wd)


class Lamb(_TwoMoments):
    """LAMB: layer-wise trust-ratio scaled Adam direction."""

    def __init__(
        self,
        hull: nn.Module,
        lr: float,
        mmnt1: float = 0.9,
        mmnt2: float = 0.999,
        scope: str = "LAMB",
        **shared: Any,
    ) -> None:
        super().__init__(hull, lr, mmnt1, mmnt2, scope, **shared)

    def _build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return LambRule(params, lr=self.lr0, betas=self.betas, weight_decay=self.wd)
