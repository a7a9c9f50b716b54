"""Update rules that torch lacks: Lion and LAMB, as ``torch.optim.Optimizer`` subclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["LambRule", "LionRule"]


class _Rule(torch.optim.Optimizer):
    """Runs the closure, then ``_update`` on every parameter that has a gradient."""

    def _update(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group, self.state[p])
        return loss


class LionRule(_Rule):
    """Lion (sign momentum): ``p ← p·(1 − lr·wd) − lr·sign(β1·m + (1 − β1)·g)``; ``m ← β2·m + (1 − β2)·g``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    def _update(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
        m = state["exp_avg"]
        update = (m * beta1).add_(p.grad, alpha=1 - beta1).sign_()
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(update, alpha=-group["lr"])
        m.mul_(beta2).add_(p.grad, alpha=1 - beta2)


class LambRule(_Rule):
    """LAMB: an Adam direction ``r = m̂/(√v̂ + eps) + wd·p`` scaled by the trust ratio ``‖p‖/‖r‖``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def _update(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        step = float(state["step"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        r = (m / (1 - beta1**step)) / ((v / (1 - beta2**step)).sqrt_().add_(group["eps"]))
        if group["weight_decay"]:
            r.add_(p, alpha=group["weight_decay"])
        w_norm, r_norm = p.norm(), r.norm()
        trust = torch.where((w_norm > 0) & (r_norm > 0), w_norm / r_norm, torch.ones_like(w_norm))
        p.add_(r * trust, alpha=-group["lr"])
