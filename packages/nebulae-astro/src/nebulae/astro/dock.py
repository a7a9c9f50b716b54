"""The brochure's ``dock`` module: Craft, gradient contexts, coat/shell/autoPad and every layer."""

from __future__ import annotations

from ._craft import Craft
from ._initializers import Normal, Ones, Orthog, Uniform, Void, XavierNorm, XavierUnif, Zeros

# --- the rest of the set (issue 6) ---

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
