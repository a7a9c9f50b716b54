"""The warning class of nebulae-cockpit."""

from __future__ import annotations

__all__ = ["CockpitWarning"]


class CockpitWarning(UserWarning):
    """Warnings emitted by nebulae-cockpit (skipped checkpoints, device mismatches, ...)."""
