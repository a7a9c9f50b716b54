"""Nebulae aerolog: a terminal dashboard for training runs, with live ASCII curves and CSV/PNG logs."""

from __future__ import annotations

from .__about__ import __version__
from ._board import DashBoard
from ._curve import curve2str
from ._sinks import MLflowSink, TensorBoardSink
from ._warnings import AerologWarning

__all__ = ["AerologWarning", "DashBoard", "MLflowSink", "TensorBoardSink", "__version__", "curve2str"]
