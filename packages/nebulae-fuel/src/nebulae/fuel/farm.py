"""Alias of `depot` (the brochure's Multiverse example imports `farm`): exactly the same names."""

from __future__ import annotations

from .depot import *  # noqa: F403
from .depot import __all__  # noqa: F401
