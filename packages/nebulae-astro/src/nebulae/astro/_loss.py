"""Losses: MAE, MSE, Huber, Charbon, SigmXE, SftmXE and OHEM hard-example mining."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._craft import Craft

__all__ = ["MAE", "MSE", "OHEM", "Charbon", "Huber", "SftmXE", "SigmXE"]


def _same_shape(craft: Craft, x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(
            f"{craft.scope} ({type(craft).__name__}): prediction {tuple(x.shape)} and target {tuple(y.shape)} "
            "must have the same shape"
        )


class MAE(Craft):
    """Mean absolute error ``mean |x − y|``."""

    def __init__(self, scope: str = "MAE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _same_shape(self, x, y)
        return F.l1_loss(x, y)


class MSE(Craft):
    """Mean squared error ``mean (x − y)²``."""

    def __init__(self, scope: str = "MSE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _same_shape(self, x, y)
        return F.mse_loss(x, y)


class Huber(Craft):
    """Huber loss: quadratic below ``delta``, linear above."""

    def __init__(self, delta: float = 1.0, scope: str = "HUBER") -> None:
        super().__init__(scope)
        if delta <= 0:
            raise ValueError(f"{scope}: 'delta' must be > 0 (got {delta!r})")
        self.delta = float(delta)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _same_shape(self, x, y)
        return F.huber_loss(x, y, delta=self.delta)


class Charbon(Craft):
    """Charbonnier loss ``mean √((x − y)² + eps)``."""

    def __init__(self, eps: float = 1e-6, scope: str = "CHARBON") -> None:
        super().__init__(scope)
        self.eps = float(eps)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _same_shape(self, x, y)
        return torch.sqrt((x - y) ** 2 + self.eps).mean()


class SigmXE(Craft):
    """Sigmoid cross-entropy on logits (binary cross-entropy with logits), averaged."""

    def __init__(self, scope: str = "SIGMXE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _same_shape(self, x, y)
        return F.binary_cross_entropy_with_logits(x, y.to(x.dtype))


class SftmXE(Craft):
    """Softmax cross-entropy on N×K logits; targets are class ids, or one-hot rows when ``is_one_hot``."""

    def __init__(self, is_one_hot: bool, scope: str = "SFTMXE") -> None:
        super().__init__(scope)
        self.is_one_hot = bool(is_one_hot)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.is_one_hot:
            _same_shape(self, x, y)
            y = y.argmax(1)
        elif y.shape != x.shape[:1] + x.shape[2:]:
            raise ValueError(
                f"{self.scope} (SftmXE): class-id targets must have shape {tuple(x.shape[:1] + x.shape[2:])} "
                f"for logits {tuple(x.shape)} (got {tuple(y.shape)}); pass is_one_hot=True for one-hot targets"
            )
        return F.cross_entropy(x, y.long())


class OHEM(Craft):
    """Online hard-example mining over an unreduced N×C×H×W loss map.

    Pixels whose loss is below ``thr`` count as positives (solved); the others are negatives. Per
    sample (and channel, when ``chnl_wise``) at most ``np_ratio × #positives`` of the hardest
    negatives are kept, and at least ``he_ratio`` of the pixels. The loss is the mean over the kept
    pixels (plus the positives when ``keep_pos``).

    Args:
        loss_fn: ``loss_fn(x, y)`` → the unreduced loss map (same shape as x).
        he_ratio: minimal fraction of pixels kept.
        np_ratio: negatives kept per positive.
        thr: loss threshold separating positives from negatives.
        chnl_wise: select per channel instead of per sample.
        keep_pos: also average the positives.
        scope: the craft's name.
    """

    def __init__(
        self,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        he_ratio: float = 0.005,
        np_ratio: float = 3.0,
        thr: float = 0.01,
        chnl_wise: bool = True,
        keep_pos: bool = False,
        scope: str = "OHEM",
    ) -> None:
        super().__init__(scope)
        if not callable(loss_fn):
            raise TypeError(f"{scope}: 'loss_fn' must be callable (got {type(loss_fn).__name__})")
        if not 0 <= he_ratio <= 1:
            raise ValueError(f"{scope}: 'he_ratio' must lie in [0, 1] (got {he_ratio!r})")
        self.loss_fn, self.he_ratio, self.np_ratio, self.thr = loss_fn, he_ratio, np_ratio, thr
        self.chnl_wise, self.keep_pos = chnl_wise, keep_pos

    def run(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.loss_fn(x, y)
        if loss.dim() != 4:
            raise ValueError(
                f"{self.scope} (OHEM): loss_fn must return an N×C×H×W map (got shape {tuple(loss.shape)})"
            )
        rows = loss.flatten(2) if self.chnl_wise else loss.flatten(1).unsqueeze(1)
        valid = torch.ones_like(rows, dtype=torch.bool)
        if m is not None:
            valid = torch.broadcast_to(m, loss.shape).reshape(rows.shape) > 0
        pos = (rows < self.thr) & valid
        neg = (rows >= self.thr) & valid
        npix = rows.shape[-1]
        least = math.ceil(self.he_ratio * npix)
        keep = torch.minimum((self.np_ratio * pos.sum(-1)).floor().long(), neg.sum(-1))
        keep = torch.clamp(torch.maximum(keep, torch.full_like(keep, least)), max=npix)
        ranked = rows.detach().masked_fill(~valid, float("-inf"))
        order = ranked.argsort(-1, descending=True)
        rank = torch.empty_like(order).scatter_(
            -1, order, torch.arange(npix, device=rows.device).expand_as(order)
        )
        chosen = (rank < keep.unsqueeze(-1)) & valid
        if self.keep_pos:
            chosen = chosen | pos
        return (rows * chosen).sum() / chosen.sum().clamp(min=1)
