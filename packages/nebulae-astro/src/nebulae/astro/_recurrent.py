"""Recurrent crafts (Elman RNN and LSTM, one- or two-directional), sequence-first."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ._craft import Craft
from ._opcheck import check_positive_int, check_tensor, shape_of

__all__ = ["LSTM", "RNN", "BiLSTM", "BiRNN"]


class _Recurrent(Craft):
    _cell: Any  # nn.RNN or nn.LSTM
    _bidirectional: bool

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int, scope: str) -> None:
        super().__init__(scope)
        check_positive_int(scope, "in_chs", in_chs)
        check_positive_int(scope, "hid_chs", hid_chs)
        check_positive_int(scope, "nlayers", nlayers)
        self.in_chs, self.hid_chs, self.nlayers = in_chs, hid_chs, nlayers
        self.rnn = type(self)._cell(in_chs, hid_chs, nlayers, bidirectional=type(self)._bidirectional)

    def _state_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        layers = self.nlayers * (2 if type(self)._bidirectional else 1)
        return (layers, self.hid_chs) if x.dim() == 2 else (layers, x.shape[1], self.hid_chs)

    def _check(self, x: torch.Tensor, **states: torch.Tensor | None) -> None:
        check_tensor(self.scope, "x", x, (2, 3))
        if x.shape[-1] != self.in_chs:
            raise ValueError(
                f"{self.scope}: 'x' must be T×N×{self.in_chs} (sequence first) or T×{self.in_chs} "
                f"(got {shape_of(x)})"
            )
        want = self._state_shape(x)
        for name, s in states.items():
            if s is not None and tuple(check_tensor(self.scope, name, s).shape) != want:
                raise ValueError(f"{self.scope}: '{name}' must have shape {want} (got {shape_of(s)})")

    def weights(self) -> torch.Tensor:
        """The first layer's input-to-hidden weight."""
        return cast(torch.Tensor, self.rnn.weight_ih_l0)


class RNN(_Recurrent):
    """Elman RNN (tanh): ``run(x, h=None) -> (y, h)``.

    ``x`` is ``T×N×in_chs`` (sequence first, as torch defaults) or unbatched ``T×in_chs``;
    ``h`` is ``nlayers×N×hid_chs`` (zeros when None). ``y`` is ``T×N×hid_chs``.

    Example:
        >>> y, h = RNN(4, 8)(torch.zeros(5, 2, 4))
        >>> tuple(y.shape), tuple(h.shape)
        ((5, 2, 8), (1, 2, 8))
    """

    _cell = nn.RNN
    _bidirectional = False

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "RNN") -> None:
        super().__init__(in_chs, hid_chs, nlayers, scope)

    def run(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x, h=h)
        y, h = self.rnn(x, h)
        return y, h


class BiRNN(RNN):
    """Two-directional :class:`RNN`: ``y`` is ``T×N×2·hid_chs``, ``h`` is ``2·nlayers×N×hid_chs``."""

    _bidirectional = True

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BIRNN") -> None:
        super().__init__(in_chs, hid_chs, nlayers, scope)


class LSTM(_Recurrent):
    """Long short-term memory: ``run(x, h=None, c=None) -> (y, h, c)``.

    Shapes as :class:`RNN`; a missing ``h`` or ``c`` starts at zeros.

    Example:
        >>> y, h, c = LSTM(4, 8, nlayers=2)(torch.zeros(5, 2, 4))
        >>> tuple(c.shape)
        (2, 2, 8)
    """

    _cell = nn.LSTM
    _bidirectional = False

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "LSTM") -> None:
        super().__init__(in_chs, hid_chs, nlayers, scope)

    def run(
        self, x: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self._check(x, h=h, c=c)
        state = None
        if h is not None or c is not None:
            zeros = torch.zeros(self._state_shape(x), dtype=x.dtype, device=x.device)
            state = (zeros if h is None else h, zeros if c is None else c)
        y, (h, c) = self.rnn(x, state)
        return y, h, c


class BiLSTM(LSTM):
    """Two-directional :class:`LSTM`: ``y`` is ``T×N×2·hid_chs``, ``h``/``c`` are ``2·nlayers×N×hid_chs``."""

    _bidirectional = True

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BILSTM") -> None:
        super().__init__(in_chs, hid_chs, nlayers, scope)
