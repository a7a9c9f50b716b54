"""Classic image backbones: VGG-16 and the pre-activation ResNet-V2 family."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._activation import Relu
from .._conv import Conv
from .._craft import Craft
from .._initializers import Void
from .._norm import BN, Dropout
from .._padding import autoPad
from .._pool import AvgPool, MaxPool
from ._common import check_in_shape

__all__ = ["VGG_16", "Resnet_V2", "Resnet_V2_50", "Resnet_V2_101", "Resnet_V2_152"]

_VGG_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGG_16(Craft):
    """VGG-16: thirteen 3×3 convolutions in five stages, then a convolutional classifier head.

    The head pools globally, then applies two 1×1 convolutions (512→4096→4096, the fully
    connected layers of VGG written as convolutions) with ReLU and dropout, so any input size
    of at least 32×32 works. ``run(x)``: ``N×in_chs×H×W`` → ``N×4096×1×1``.

    Args:
        in_chs: input channels.
        p_drop: dropout probability of the head.
        scope: the craft's name.

    Example:
        >>> VGG_16(3)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 4096, 1, 1])
    """

    def __init__(self, in_chs: int, p_drop: float = 0.5, scope: str = "VGG_16") -> None:
        super().__init__(scope)
        if isinstance(in_chs, bool) or not isinstance(in_chs, int) or in_chs < 1:
            raise ValueError(f"{scope}: 'in_chs' must be a positive int (got {in_chs!r})")
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"{scope}: 'p_drop' must be in [0, 1) (got {p_drop})")
        layers: list[nn.Module] = []
        chs = in_chs
        for stage, (out_chs, nconv) in enumerate(_VGG_STAGES, start=1):
            for i in range(1, nconv + 1):
                layers += [Conv(chs, out_chs, (3, 3), padding=1, scope=f"CONV_{stage}_{i}"), Relu()]
                chs = out_chs
            layers.append(MaxPool((2, 2), scope=f"MPOOL_{stage}"))
        self.features = nn.Sequential(*layers)
        self.pool = AvgPool((-1, -1))
        self.head = nn.Sequential(
            Conv(512, 4096, (1, 1), scope="GLOB_CONV_1"),
            Relu(),
            Dropout(p_drop),
            Conv(4096, 4096, (1, 1), scope="GLOB_CONV_2"),
            Relu(),
            Dropout(p_drop),
        )

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or min(x.shape[2:]) < 32:
            raise ValueError(f"{self.scope}: input must be N×C×H×W with H, W >= 32 (got {tuple(x.shape)})")
        return self.head(self.pool(self.features(x)))


def _same(size: tuple[int, int], kernel: int, stride: int) -> tuple[tuple[int, ...], tuple[int, int]]:
    """'SAME' padding for ``size`` and the output size it gives."""
    pad = autoPad(size, (kernel, kernel), stride)
    return tuple(pad), (math.ceil(size[0] / stride), math.ceil(size[1] / stride))


class _Bottleneck(Craft):
    """Pre-activation bottleneck unit: BN-ReLU, then 1×1, 3×3 (strided), 1×1 convolutions."""

    def __init__(
        self, in_chs: int, mid_chs: int, out_chs: int, stride: int, size: tuple[int, int], scope: str
    ) -> None:
        super().__init__(scope)
        pad, self.out_size = _same(size, 3, stride)
        self.pre = BN(in_chs, 2)
        self.conv1 = Conv(in_chs, mid_chs, (1, 1), b_init=Void())
        self.bn1 = BN(mid_chs, 2)
        self.conv2 = Conv(mid_chs, mid_chs, (3, 3), stride=stride, padding=pad, b_init=Void())
        self.bn2 = BN(mid_chs, 2)
        self.conv3 = Conv(mid_chs, out_chs, (1, 1), b_init=Void())
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_chs != out_chs:
            self.shortcut = Conv(in_chs, out_chs, (1, 1), stride=stride, b_init=Void())

    def run(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.pre(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        h = F.relu(self.bn1(self.conv1(pre)))
        h = F.relu(self.bn2(self.conv2(h)))
        return self.conv3(h) + skip


class Resnet_V2(Craft):
    """Pre-activation ResNet (He et al., 2016) with bottleneck units and 'SAME' padding.

    ``run(x)``: ``N×C×H×W`` → globally pooled features ``N×2048×1×1``. The padding is worked
    out for ``in_shape``, so inputs must have that spatial size.

    Args:
        in_shape: ``(H, W, C)`` of the input images.
        blocks: units per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        scope: the craft's name.
    """

    def __init__(self, in_shape: Any, blocks: tuple[int, int, int, int], scope: str = "RESNET_V2") -> None:
        super().__init__(scope)
        h, w, c = check_in_shape(scope, in_shape)
        self.in_shape = (h, w, c)
        pad, size = _same((h, w), 7, 2)
        self.stem = Conv(c, 64, (7, 7), stride=2, padding=pad, b_init=Void(), scope="STEM")
        pad, size = _same(size, 3, 2)
        self.pool = MaxPool((3, 3), stride=2, padding=pad)
        units: list[nn.Module] = []
        in_chs = 64
        for stage, (nunit, mid) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), start=1):
            for i in range(nunit):
                stride = 2 if stage > 1 and i == 0 else 1
                unit = _Bottleneck(in_chs, mid, 4 * mid, stride, size, scope=f"BLOCK_{stage}_{i + 1}")
                size, in_chs = unit.out_size, 4 * mid
                units.append(unit)
        self.units = nn.Sequential(*units)
        self.post = BN(2048, 2)
        self.gpool = AvgPool((-1, -1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c = self.in_shape
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(
                f"{self.scope}: input must be N×{c}×{h}×{w}, the in_shape {self.in_shape} it was built for "
                f"(got {tuple(x.shape)})"
            )
        y = self.units(self.pool(self.stem(x)))
        return self.gpool(F.relu(self.post(y)))


class Resnet_V2_50(Resnet_V2):
    """ResNet-V2-50: stages of [3, 4, 6, 3] bottleneck units (about 23.5 M parameters).

    Example:
        >>> Resnet_V2_50((64, 64, 3))(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 2048, 1, 1])
    """

    def __init__(self, in_shape: Any, scope: str = "RESNET_V2_50") -> None:
        super().__init__(in_shape, (3, 4, 6, 3), scope)


class Resnet_V2_101(Resnet_V2):
    """ResNet-V2-101: stages of [3, 4, 23, 3] bottleneck units (about 42.5 M parameters)."""

    def __init__(self, in_shape: Any, scope: str = "RESNET_V2_101") -> None:
        super().__init__(in_shape, (3, 4, 23, 3), scope)


class Resnet_V2_152(Resnet_V2):
    """ResNet-V2-152: stages of [3, 8, 36, 3] bottleneck units (about 58.1 M parameters)."""

    def __init__(self, in_shape: Any, scope: str = "RESNET_V2_152") -> None:
        super().__init__(in_shape, (3, 8, 36, 3), scope)
