"""Lazy imports of optional dependencies that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the nebulae-kit extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'nebulae-kit[{extra}]'"
        ) from exc
