"""The current-engine registry shared by nebulae-astro and nebulae-cockpit, and the device it computes on.

cockpit's ``Engine`` registers itself here when constructed; astro's ``coat``,
``shell`` and ``Craft.gear`` read it. Neither package imports the other: they
agree on the duck-typed attributes listed in :class:`EngineLike`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

__all__ = ["ENGINE_ATTRIBUTES", "EngineLike", "current_engine", "set_current_engine", "target_device"]

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


def target_device(engine: Any) -> torch.device:
    """Return the ``torch.device`` that data for ``engine`` belongs on.

    The CPU when ``engine`` is None (no Engine yet) or runs on CPU; on GPU, ``chip[local_rank]`` in a
    distributed run (rank >= 0) and CUDA's current device otherwise, which is where ``Craft.gear``
    puts the model (``Module.cuda()``). torch is imported here, so kit itself never needs it.

    Args:
        engine: an object with the attributes of :class:`EngineLike`, or None.

    Raises:
        ValueError: a distributed GPU engine whose ``chip`` has no entry for its ``local_rank``.

    Example:
        >>> target_device(None)
        device(type='cpu')
    """
    import torch

    if engine is None or str(engine.device).upper() != "GPU":
        return torch.device("cpu")
    if engine.rank < 0:
        return torch.device("cuda", torch.cuda.current_device())
    chips = list(engine.chip)
    if not 0 <= engine.local_rank < len(chips):
        raise ValueError(
            f"a distributed GPU engine computes on chip[local_rank], but its local_rank is "
            f"{engine.local_rank} and its chip lists {len(chips)} device(s): set LOCAL_RANK and "
            "LOCAL_WORLD_SIZE for this node before creating the Engine"
        )
    return torch.device(chips[engine.local_rank])


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
