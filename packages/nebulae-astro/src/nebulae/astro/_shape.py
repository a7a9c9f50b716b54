"""Shape ops: Reshape, Permute, Expand, Squash, Tile, Roll, Concat, Stack, Pad, Identity."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._constants import PadMode
from ._craft import Craft

__all__ = ["Concat", "Expand", "Identity", "Pad", "Permute", "Reshape", "Roll", "Squash", "Stack", "Tile"]


def _fail(craft: Craft, x: torch.Tensor, what: str, err: Exception) -> ValueError:
    return ValueError(
        f"{craft.scope} ({type(craft).__name__}): cannot {what} (input shape {tuple(x.shape)}): {err}"
    )


class Reshape(Craft):
    """``run(x, shape)``: ``x.reshape(shape)`` (one entry may be -1).

    Example:
        >>> Reshape()(torch.zeros(2, 4, 4), (-1, 16)).shape
        torch.Size([2, 16])
    """

    def __init__(self, scope: str = "RESHAPE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        try:
            return x.reshape(tuple(shape))
        except RuntimeError as err:
            raise _fail(self, x, f"reshape to {tuple(shape)}", err) from err


class Permute(Craft):
    """``run(x, order)``: ``x.permute(order)``."""

    def __init__(self, scope: str = "PERMUTE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
        try:
            return x.permute(tuple(order))
        except RuntimeError as err:
            raise _fail(self, x, f"permute with order {tuple(order)}", err) from err


class Expand(Craft):
    """``run(x, axis=0)``: insert a size-1 axis (unsqueeze)."""

    def __init__(self, scope: str = "EXPAND") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, axis: int = 0) -> torch.Tensor:
        try:
            return x.unsqueeze(axis)
        except IndexError as err:
            raise _fail(self, x, f"insert axis {axis}", err) from err


class Squash(Craft):
    """``run(x, axis=None)``: drop size-1 axes (all of them, or ``axis``)."""

    def __init__(self, scope: str = "SQUASH") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, axis: int | None = None) -> torch.Tensor:
        if axis is None:
            return x.squeeze()
        try:
            if x.shape[axis] != 1:
                raise ValueError(f"axis {axis} has size {x.shape[axis]}, not 1")
            return x.squeeze(axis)
        except (IndexError, ValueError) as err:
            raise _fail(self, x, f"squeeze axis {axis}", err) from err


class Tile(Craft):
    """``run(x, times)``: repeat ``x`` ``times[i]`` times along each axis (``Tensor.repeat``)."""

    def __init__(self, scope: str = "TILE") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor, times: Sequence[int]) -> torch.Tensor:
        try:
            return x.repeat(*times)
        except RuntimeError as err:
            raise _fail(self, x, f"tile {tuple(times)} times", err) from err


class Roll(Craft):
    """``run(x, shift, axis=None)``: ``torch.roll`` (flattened when ``axis`` is None)."""

    def __init__(self, scope: str = "ROLL") -> None:
        super().__init__(scope)

    def run(
        self, x: torch.Tensor, shift: int | Sequence[int], axis: int | Sequence[int] | None = None
    ) -> torch.Tensor:
        try:
            return torch.roll(x, shift, axis)  # type: ignore[arg-type]
        except (RuntimeError, IndexError) as err:
            raise _fail(self, x, f"roll by {shift} on axis {axis}", err) from err


class Concat(Craft):
    """``run(tensors, axis=-1)``: ``torch.cat``."""

    def __init__(self, scope: str = "CONCAT") -> None:
        super().__init__(scope)

    def run(self, tensors: Sequence[torch.Tensor], axis: int = -1) -> torch.Tensor:
        try:
            return torch.cat(list(tensors), axis)
        except RuntimeError as err:
            shapes = [tuple(t.shape) for t in tensors]
            raise ValueError(
                f"{self.scope} (Concat): cannot concatenate shapes {shapes} on axis {axis}: {err}"
            ) from err


class Stack(Craft):
    """``run(tensors, axis=-1)``: ``torch.stack``."""

    def __init__(self, scope: str = "STACK") -> None:
        super().__init__(scope)

    def run(self, tensors: Sequence[torch.Tensor], axis: int = -1) -> torch.Tensor:
        try:
            return torch.stack(list(tensors), axis)
        except RuntimeError as err:
            shapes = [tuple(t.shape) for t in tensors]
            raise ValueError(
                f"{self.scope} (Stack): cannot stack shapes {shapes} on axis {axis}: {err}"
            ) from err


_PAD_MODES = {PadMode.CONSTANT: "constant", PadMode.REFLECT: "reflect", PadMode.REPLICATE: "replicate"}


class Pad(Craft):
    """Pad with an ``F.pad`` tuple (last dimension first, as ``autoPad`` returns).

    Args:
        padding: the flat padding tuple.
        mode: CONSTANT=10, REFLECT=11 or REPLICATE=12.
        value: the fill value of CONSTANT.
        scope: the craft's name.

    Example:
        >>> Pad((1, 1))(torch.zeros(1, 1, 3)).shape
        torch.Size([1, 1, 5])
    """

    def __init__(
        self, padding: Sequence[int], mode: int = PadMode.CONSTANT, value: float = 0.0, scope: str = "PAD"
    ) -> None:
        super().__init__(scope)
        if mode not in _PAD_MODES:
            raise ValueError(
                f"{scope}: 'mode' must be CONSTANT=10, REFLECT=11 or REPLICATE=12 (got {mode!r})"
            )
        if isinstance(padding, int) or not isinstance(padding, Sequence):
            raise TypeError(
                f"{scope}: 'padding' must be a flat tuple of (before, after) pairs, e.g. (1, 1) (got {padding!r})"
            )
        if len(padding) % 2:
            raise ValueError(
                f"{scope}: 'padding' must be a flat tuple of (before, after) pairs (got {padding!r})"
            )
        self.padding, self.mode, self.value = tuple(padding), _PAD_MODES[PadMode(mode)], value

    def run(self, x: torch.Tensor) -> torch.Tensor:
        try:
            if self.mode == "constant":
                return F.pad(x, self.padding, "constant", self.value)
            return F.pad(x, self.padding, self.mode)
        except (RuntimeError, NotImplementedError) as err:
            raise _fail(self, x, f"{self.mode}-pad by {self.padding}", err) from err


class Identity(Craft):
    """Returns its input."""

    def __init__(self, scope: str = "IDENTITY") -> None:
        super().__init__(scope)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return x
