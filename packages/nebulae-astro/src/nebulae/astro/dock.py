"""The brochure's ``dock`` module: Craft, gradient contexts, coat/shell/autoPad and every layer."""

from __future__ import annotations

from ._activation import Gelu, LRelu, PRelu, Relu, Sftm, Sftp, Sigm, Tanh
from ._constants import AREA, CONSTANT, CUBIC, LINEAR, NEAREST, REFLECT, REPLICATE, Interp, PadMode
from ._contexts import Nozzle, Prober, Rudder
from ._conv import Conv, TransConv
from ._craft import Craft
from ._dense import Dense, Embed
from ._device import coat, shell
from ._ema import EMA, Retroact
from ._formula import fn
from ._initializers import Normal, Ones, Orthog, Uniform, Void, XavierNorm, XavierUnif, Zeros
from ._loss import MAE, MSE, OHEM, Charbon, Huber, SftmXE, SigmXE
from ._metric import PSNR, SSIM, AccCls
from ._norm import BN, CBN, CIN, GN, IN, LN, SN, Dropout
from ._optim import Adam, AdamW, Lamb, Lion, Momentum, Nesterov, RMSProp
from ._padding import autoPad, autopad
from ._pool import AvgPool, MaxPool
from ._resample import SubPix, SurPix, Zoom
from ._schedule import CosLR, ExpLR, PolyLR, StepLR, WavyLR
from ._shape import Concat, Expand, Identity, Pad, Permute, Reshape, Roll, Squash, Stack, Tile

# --- the rest of the set (issue 6) ---
# isort: split

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
    "AREA",
    "BN",
    "CBN",
    "CIN",
    "CONSTANT",
    "CUBIC",
    "EMA",
    "GN",
    "IN",
    "LINEAR",
    "LN",
    "MAE",
    "MSE",
    "NEAREST",
    "OHEM",
    "PSNR",
    "REFLECT",
    "REPLICATE",
    "SN",
    "SSIM",
    "AccCls",
    "Adam",
    "AdamW",
    "AvgPool",
    "Charbon",
    "Concat",
    "Conv",
    "CosLR",
    "Craft",
    "Dense",
    "Dropout",
    "Embed",
    "ExpLR",
    "Expand",
    "Gelu",
    "Huber",
    "Identity",
    "Interp",
    "LRelu",
    "Lamb",
    "Lion",
    "MaxPool",
    "Momentum",
    "Nesterov",
    "Normal",
    "Nozzle",
    "Ones",
    "Orthog",
    "PRelu",
    "Pad",
    "PadMode",
    "Permute",
    "PolyLR",
    "Prober",
    "RMSProp",
    "Relu",
    "Reshape",
    "Retroact",
    "Roll",
    "Rudder",
    "Sftm",
    "SftmXE",
    "Sftp",
    "Sigm",
    "SigmXE",
    "Squash",
    "Stack",
    "StepLR",
    "SubPix",
    "SurPix",
    "Tanh",
    "Tile",
    "TransConv",
    "Uniform",
    "Void",
    "WavyLR",
    "XavierNorm",
    "XavierUnif",
    "Zeros",
    "Zoom",
    "autoPad",
    "autopad",
    "coat",
    "fn",
    "shell",
]
# the issue-6 names (the lead folds them into the sorted list above when merging)
__all__ += [
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
