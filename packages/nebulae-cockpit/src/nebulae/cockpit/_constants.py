"""Device and gearbox constants of the cockpit (strings for devices, ints for gearbox modes)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CPU", "DYNAMIC", "FIXED", "GPU", "STATIC", "Gearbox", "normalize_device", "normalize_gearbox"]

CPU = "CPU"
GPU = "GPU"


class Gearbox(IntEnum):
    """How ``Craft.gear`` runs a model: eager, compiled for dynamic shapes, or compiled for fixed shapes."""

    DYNAMIC = 20
    STATIC = 21
    FIXED = 22


DYNAMIC = Gearbox.DYNAMIC
STATIC = Gearbox.STATIC
FIXED = Gearbox.FIXED


def normalize_device(device: object) -> str:
    """Return ``'CPU'`` or ``'GPU'`` for any case of those strings or the legacy ints 0/1.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(device, bool):
        raise ValueError(f"'device' must be 'CPU' or 'GPU' (any case) or 0/1 (got {device!r})")
    if isinstance(device, int) and device in (0, 1):
        return (CPU, GPU)[device]
    if isinstance(device, str) and device.upper() in (CPU, GPU):
        return device.upper()
    raise ValueError(f"'device' must be 'CPU' or 'GPU' (any case) or 0/1 (got {device!r})")


def normalize_gearbox(gearbox: object) -> Gearbox:
    """Return the :class:`Gearbox` member for ``gearbox`` (DYNAMIC=20, STATIC=21, FIXED=22).

    Raises:
        ValueError: for any other value.
    """
    if not isinstance(gearbox, bool) and isinstance(gearbox, int) and gearbox in set(Gearbox):
        return Gearbox(gearbox)
    raise ValueError(
        f"'gearbox' must be DYNAMIC (20), STATIC (21) or FIXED (22) from nebulae.cockpit (got {gearbox!r})"
    )
