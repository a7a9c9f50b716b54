"""The brochure's ``dock`` module: Craft, gradient contexts, coat/shell/autoPad and every layer."""

from __future__ import annotations

from ._craft import Craft
from ._initializers import Normal, Ones, Orthog, Uniform, Void, XavierNorm, XavierUnif, Zeros

# --- the rest of the set (issue 6) ---

from . import _rest
from ._rest import (
    D2S,
    FFT,
    IFFT,
    LSTM,
    QR,
    RNN,
    S2D,
    Argmax,
    Argmin,
    BiLSTM,
    BiRNN,
    Clip,
    Cos,
    Dot,
    Eigen,
    Exp,
    Gather,
    Grad,
    GraphConvAdj,
    GraphConvEig,
    GraphConvLap,
    Log,
    MHAttn,
    Max,
    MaxEigen,
    Maxele,
    Mean,
    Min,
    Minele,
    Retroact,
    Scatter,
    Sin,
    SpDot,
    Sqrt,
    Sum,
)

__all__ = [
    "Craft",
    "Normal",
    "Ones",
    "Orthog",
    "Uniform",
    "Void",
    "XavierNorm",
    "XavierUnif",
    "Zeros",
]
__all__ = sorted({*__all__, *_rest.__all__})
