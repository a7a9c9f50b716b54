"""The warning class of nebulae-kit."""

from __future__ import annotations

__all__ = ["KitWarning"]


class KitWarning(UserWarning):
    """Warnings emitted by nebulae-kit (no GPU to monitor, short sampling period, ...)."""
