"""Resampling: ``Zoom`` (interpolation), ``SubPix`` (pixel shuffle) and ``SurPix`` (pixel unshuffle)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._constants import Interp
from ._craft import Craft
from ._layer import shape_error
from ._opcheck import check_positive_int

__all__ = ["SubPix", "SurPix", "Zoom"]

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class Zoom(Craft):
    """Resize the spatial dims to ``size`` or by ``scale`` (exactly one of them).

    Args:
        size: the output spatial size (a tuple of 1 to 3 ints).
        scale: the per-dim scale factors (a tuple of 1 to 3 numbers).
        interp: NEAREST=0, LINEAR=1 (linear/bilinear/trilinear by rank), CUBIC=2 (2-d only), AREA=3.
        aligned: ``align_corners`` of LINEAR and CUBIC.
        scope: the craft's name.

    Example:
        >>> Zoom(scale=(2, 2))(torch.zeros(1, 3, 4, 4)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        size: Sequence[int] = (),
        scale: Sequence[float] = (),
        interp: int = Interp.LINEAR,
        aligned: bool = True,
        scope: str = "ZOOM",
    ) -> None:
        super().__init__(scope)
        size, scale = tuple(size or ()), tuple(scale or ())
        if bool(size) == bool(scale):
            raise ValueError(
                f"{scope}: give exactly one of 'size' and 'scale' (got size={size}, scale={scale})"
            )
        if interp not in tuple(Interp):
            raise ValueError(
                f"{scope}: 'interp' must be NEAREST=0, LINEAR=1, CUBIC=2 or AREA=3 (got {interp!r})"
            )
        self.ndim = len(size or scale)
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"{scope}: 'size'/'scale' must have 1 to 3 entries (got {size or scale})")
        if interp == Interp.CUBIC and self.ndim != 2:
            raise ValueError(f"{scope}: CUBIC interpolation is 2-d only (got {self.ndim}-d)")
        self.size, self.scale, self.interp = size or None, scale or None, Interp(interp)
        self.align: bool | None
        if self.interp == Interp.LINEAR:
            self.mode, self.align = _LINEAR_MODES[self.ndim], aligned
        elif self.interp == Interp.CUBIC:
            self.mode, self.align = "bicubic", aligned
        else:
            self.mode, self.align = ("nearest" if self.interp == Interp.NEAREST else "area"), None

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.ndim + 2:
            raise shape_error(self, f"N×C×{self.ndim} spatial dims", x)
        return F.interpolate(x, self.size, self.scale, mode=self.mode, align_corners=self.align)


class SubPix(Craft):
    """Pixel shuffle: ``N×(C·r²)×H×W → N×C×(H·r)×(W·r)``."""

    def __init__(self, scale: int, scope: str = "SUBPIX") -> None:
        super().__init__(scope)
        self.scale = check_positive_int(scope, "scale", scale)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] % (self.scale**2):
            raise shape_error(self, f"N×C×H×W with C divisible by {self.scale**2}", x)
        return F.pixel_shuffle(x, self.scale)


class SurPix(Craft):
    """Pixel unshuffle: ``N×C×(H·r)×(W·r) → N×(C·r²)×H×W``."""

    def __init__(self, scale: int, scope: str = "SURPIX") -> None:
        super().__init__(scope)
        self.scale = check_positive_int(scope, "scale", scale)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] % self.scale or x.shape[3] % self.scale:
            raise shape_error(self, f"N×C×H×W with H and W divisible by {self.scale}", x)
        return F.pixel_unshuffle(x, self.scale)
