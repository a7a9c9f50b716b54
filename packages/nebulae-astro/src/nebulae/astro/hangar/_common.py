"""Shared parts of the hangar models: shape checks, norm selectors and small blocks."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._conv import Conv
from .._craft import Craft
from .._norm import BN as BatchNorm
from .._norm import CBN as CondBatchNorm
from .._norm import CIN as CondInstanceNorm
from .._norm import IN as InstanceNorm
from .._norm import LN as LayerNorm
from .._norm import SN

__all__ = ["NormKind", "NormSlot", "ResidualUnit", "SelfAttention", "check_in_shape", "maybe_sn"]


class NormKind(IntEnum):
    """Normalisation selectors of the hangar models (``hangar.BN`` ... ``hangar.LN``)."""

    BN = 20
    CBN = 21
    IN = 22
    CIN = 23
    LN = 24


def check_in_shape(scope: str, in_shape: Any, multiple: int = 1) -> tuple[int, int, int]:
    """Validate an ``(H, W, C)`` input shape whose H and W are multiples of ``multiple``.

    Raises:
        ValueError: naming the model and the shape.
    """
    if (
        not isinstance(in_shape, (tuple, list))
        or len(in_shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in in_shape)
    ):
        raise ValueError(f"{scope}: 'in_shape' must be (H, W, C), three positive ints (got {in_shape!r})")
    h, w, c = in_shape
    if h % multiple or w % multiple:
        raise ValueError(
            f"{scope}: H and W of 'in_shape' must be multiples of {multiple} for its {multiple}x "
            f"down/up-sampling (got {tuple(in_shape)})"
        )
    return h, w, c


def maybe_sn(layer: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``layer`` in spectral normalisation when ``enabled``."""
    return SN(layer, scope=f"SN_{getattr(layer, 'scope', 'LAYER')}") if enabled else layer


class NormSlot(Craft):
    """One normalisation picked by a :class:`NormKind`: ``run(x, z=None)``.

    Conditional kinds (CBN, CIN) take γ and β from ``z`` (``N×cond_chs``); LN needs the
    spatial size ``hw`` of its input.
    """

    def __init__(self, kind: Any, chs: int, hw: tuple[int, int], cond_chs: int, scope: str = "NORM") -> None:
        super().__init__(scope)
        try:
            self.kind = NormKind(kind)
        except ValueError:
            raise ValueError(
                f"{scope}: 'norm_fn' must be one of hangar.BN=20, CBN=21, IN=22, CIN=23, LN=24 (got {kind!r})"
            ) from None
        if self.kind is NormKind.BN:
            self.norm: nn.Module = BatchNorm(chs, 2)
        elif self.kind is NormKind.IN:
            self.norm = InstanceNorm(chs, 2)
        elif self.kind is NormKind.CBN:
            self.norm = CondBatchNorm(cond_chs, chs, 2)
        elif self.kind is NormKind.CIN:
            self.norm = CondInstanceNorm(cond_chs, chs, 2)
        else:
            self.norm = LayerNorm((hw[0], hw[1], chs))

    def run(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind in (NormKind.CBN, NormKind.CIN):
            if z is None:
                raise ValueError(f"{self.scope}: a conditional norm ({self.kind.name}) needs the condition z")
            return self.norm(x, z)
        return self.norm(x)


class SelfAttention(Craft):
    """Non-local (self-attention) block over the H·W positions, as in SAGAN.

    ``y = γ · attend(x) + x`` with ``γ`` starting at 0, so the block starts as the identity.
    """

    def __init__(
        self, chs: int, spec_norm: bool = False, w_init: Any = None, scope: str = "ATTENTION"
    ) -> None:
        super().__init__(scope)
        inner = max(1, chs // 8)
        kw = {} if w_init is None else {"w_init": w_init}
        self.query = maybe_sn(Conv(chs, inner, (1, 1), **kw), spec_norm)
        self.key = maybe_sn(Conv(chs, inner, (1, 1), **kw), spec_norm)
        self.value = maybe_sn(Conv(chs, chs, (1, 1), **kw), spec_norm)
        self.gamma = nn.Parameter(torch.zeros(1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # N×c'×HW
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # N×C×HW
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # N×HW(query)×HW(key)
        out = (v @ attn.transpose(1, 2)).view(n, c, h, w)
        self["attention"] = attn
        return x + self.gamma * out


class ResidualUnit(Craft):
    """``x + conv1x1(relu(conv3x3(relu(x))))``: the residual unit of the VAE models."""

    def __init__(self, chs: int, inner: int, scope: str = "RESUNIT") -> None:
        super().__init__(scope)
        self.conv3 = Conv(chs, inner, (3, 3), padding=1)
        self.conv1 = Conv(inner, chs, (1, 1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))
