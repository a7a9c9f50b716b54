"""The current-engine registry shared by nebulae-astro and nebulae-cockpit.

cockpit's ``Engine`` registers itself here when constructed; astro's ``coat``,
``shell`` and ``Craft.gear`` read it. Neither package imports the other: they
agree on the duck-typed attributes listed in :class:`EngineLike`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

__all__ = ["ENGINE_ATTRIBUTES", "EngineLike", "current_engine", "set_current_engine"]

ENGINE_ATTRIBUTES = ("device", "chip", "rank", "local_rank", "gearbox", "multi_piston")


@runtime_checkable
class EngineLike(Protocol):
    """What an engine exposes to the libraries that read the registry.

    Attributes:
        device: ``'CPU'`` or ``'GPU'``.
        chip: the ``torch.device`` objects this process may use (``[cpu]`` on CPU).
        rank: the global rank, -1 when not distributed.
        local_rank: the device index inside the node (``chip[local_rank]`` when rank >= 0).
        gearbox: the compilation mode (cockpit's ``DYNAMIC``/``STATIC``/``FIXED``).
        multi_piston: wrap models in ``DataParallel`` when not distributed.
    """

    device: str
    chip: list[Any]
    rank: int
    local_rank: int
    gearbox: int
    multi_piston: bool


_lock = threading.Lock()
_current: Any = None


def set_current_engine(engine: Any) -> None:
    """Make ``engine`` the one that ``coat``/``shell``/``Craft.gear`` use (the last one set wins).

    Args:
        engine: an object with the attributes of :class:`EngineLike`, or None to clear.

    Raises:
        TypeError: if ``engine`` lacks one of those attributes.

    Example:
        >>> set_current_engine(None)
        >>> current_engine() is None
        True
    """
    global _current
    if engine is not None:
        missing = [name for name in ENGINE_ATTRIBUTES if not hasattr(engine, name)]
        if missing:
            raise TypeError(
                f"an engine must have the attributes {', '.join(ENGINE_ATTRIBUTES)}; "
                f"{type(engine).__name__} lacks {', '.join(missing)}"
            )
    with _lock:
        _current = engine


def current_engine() -> Any:
    """Return the engine registered last, or None before any Engine was created."""
    return _current
