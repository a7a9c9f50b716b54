"""The warning class of nebulae-aerolog."""

from __future__ import annotations

__all__ = ["AerologWarning"]


class AerologWarning(UserWarning):
    """Warnings emitted by nebulae-aerolog (unknown terminal width, ...)."""
