"""``EMA`` (an exponential moving average of a craft's state) and ``Retroact`` (Grad-CAM maps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nebulae.kit import get_rank

from ._compat import registered_child
from ._craft import Craft

__all__ = ["EMA", "Retroact"]


def _constant_decay(step: int) -> float:
    return 0.9


class EMA(Craft):
    """Keeps a shadow copy of ``hull``'s state, averaged over ``update()`` calls.

    ``update()`` sets ``shadow = d·shadow + (1 − d)·hull`` with ``d = decay_fn(number of earlier
    updates)``, on rank ≤ 0 only (integer buffers are copied). ``on()`` swaps the shadow into the hull
    for evaluation; ``off()`` swaps the trained state back. Unknown attributes are forwarded to the hull.

    Args:
        hull: the craft (or torch module) to average.
        decay_fn: step → decay in [0, 1].
        on_device: keep the shadow on the hull's device (else on CPU).
        scope: the craft's name.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> ema = EMA(net, decay_fn=lambda step: 0.99)
        >>> ema.update()
    """

    def __init__(
        self,
        hull: nn.Module,
        decay_fn: Callable[[int], float] = _constant_decay,
        on_device: bool = False,
        scope: str = "EMA",
    ) -> None:
        super().__init__(scope)
        if not isinstance(hull, nn.Module):
            raise TypeError(f"{scope}: 'hull' must be a Craft or torch module (got {type(hull).__name__})")
        if not callable(decay_fn):
            raise TypeError(f"{scope}: 'decay_fn' must be callable step -> decay (got {decay_fn!r})")
        self.hull, self.decay_fn, self.on_device = hull, decay_fn, on_device
        self.count = 0
        self._backup: dict[str, torch.Tensor] | None = None
        self.shadow = {k: self._place(v).clone() for k, v in hull.state_dict().items()}

    def _place(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach() if self.on_device else tensor.detach().cpu()

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            hull = registered_child(self, "hull")
            if hull is None:
                raise
            return getattr(hull, name)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.hull(*args, **kwargs)

    @torch.no_grad()
    def update(self) -> None:
        """Blend the hull's current state into the shadow (rank ≤ 0 only)."""
        if get_rank() > 0:
            return
        if self._backup is not None:
            raise RuntimeError(f"{self.scope}: update() while the shadow is swapped in; call off() first")
        decay = float(self.decay_fn(self.count))
        if not 0 <= decay <= 1:
            raise ValueError(f"{self.scope}: decay_fn({self.count}) returned {decay}, outside [0, 1]")
        for key, value in self.hull.state_dict().items():
            shadow = self.shadow[key]
            if shadow.is_floating_point():
                shadow.mul_(decay).add_(value.to(shadow.device), alpha=1 - decay)
            else:
                shadow.copy_(value)
        self.count += 1

    @torch.no_grad()
    def on(self) -> None:
        """Load the shadow into the hull (a no-op when it is already on)."""
        if self._backup is None:
            self._backup = {k: v.detach().clone() for k, v in self.hull.state_dict().items()}
            self.hull.load_state_dict(self.shadow)

    @torch.no_grad()
    def off(self) -> None:
        """Restore the hull's own state (a no-op when the shadow is not on)."""
        if self._backup is not None:
            self.hull.load_state_dict(self._backup)
            self._backup = None

    def get_extra_state(self) -> dict[str, Any]:
        """The shadow and the update count travel in ``state_dict()`` (key ``_extra_state``)."""
        return {"shadow": dict(self.shadow), "count": self.count}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        missing = set(self.shadow) - set(state["shadow"])
        if missing:
            raise KeyError(f"{self.scope}: the saved EMA shadow lacks {sorted(missing)}")
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)
        self.count = int(state["count"])

    def gear(self, gr: Any) -> nn.Module:
        module = super().gear(gr)
        if self.on_device and not isinstance(gr, bool):
            device = next((t.device for t in self.hull.state_dict().values()), torch.device("cpu"))
            self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return module


class Retroact(Craft):
    """Grad-CAM: ``run(i, o)`` → N×1×H×W heat maps of feature maps ``i`` for outputs ``o``.

    Back-propagates ``o`` (summed), weights each channel of ``i`` by its spatially pooled gradient,
    averages over channels, applies ReLU and rescales each sample to [0, 1].
    """

    def __init__(self, scope: str = "RETROACT") -> None:
        super().__init__(scope)

    def run(self, i: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        if i.dim() != 4:
            raise ValueError(f"{self.scope} (Retroact): feature maps must be N×C×H×W (got {tuple(i.shape)})")
        if not i.requires_grad:
            raise ValueError(
                f"{self.scope} (Retroact): the feature maps are not part of a graph; run under Rudder or Prober"
            )
        (grad,) = torch.autograd.grad(o.sum(), i, retain_graph=True)
        cam = torch.relu((grad.mean((2, 3), keepdim=True) * i).mean(1, keepdim=True)).detach()
        low = cam.flatten(1).min(1).values.view(-1, 1, 1, 1)
        high = cam.flatten(1).max(1).values.view(-1, 1, 1, 1)
        return (cam - low) / (high - low).clamp(min=1e-12)
