"""The rest of the dock set (issue 6): math, linalg, sparse, graph, recurrent, attention."""

from __future__ import annotations

from ._attention import MHAttn
from ._graph import GraphConvAdj, GraphConvEig, GraphConvLap
from ._linalg import FFT, IFFT, QR, Eigen, MaxEigen
from ._math import (
    Argmax,
    Argmin,
    Clip,
    Cos,
    Dot,
    Exp,
    Gather,
    Grad,
    Log,
    Max,
    Maxele,
    Mean,
    Min,
    Minele,
    Scatter,
    Sin,
    Sqrt,
    Sum,
)
from ._recurrent import LSTM, RNN, BiLSTM, BiRNN
from ._sparse import D2S, S2D, SpDot

__all__ = [
    "D2S",
    "FFT",
    "IFFT",
    "LSTM",
    "QR",
    "RNN",
    "S2D",
    "Argmax",
    "Argmin",
    "BiLSTM",
    "BiRNN",
    "Clip",
    "Cos",
    "Dot",
    "Eigen",
    "Exp",
    "Gather",
    "Grad",
    "GraphConvAdj",
    "GraphConvEig",
    "GraphConvLap",
    "Log",
    "MHAttn",
    "Max",
    "MaxEigen",
    "Maxele",
    "Mean",
    "Min",
    "Minele",
    "Scatter",
    "Sin",
    "SpDot",
    "Sqrt",
    "Sum",
]
