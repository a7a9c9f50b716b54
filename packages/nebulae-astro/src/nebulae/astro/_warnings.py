"""The warning class of nebulae-astro."""

from __future__ import annotations

__all__ = ["AstroWarning"]


class AstroWarning(UserWarning):
    """Warnings emitted by nebulae-astro (ignored arguments, precision fallbacks, ...)."""
