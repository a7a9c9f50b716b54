"""``coat`` and ``shell``: move data onto the current engine's device and back out."""

from __future__ import annotations

from typing import Any

import torch

from nebulae.kit import coat_to, current_engine, shell_from, target_device

__all__ = ["coat", "shell"]


def coat(datum: Any, as_const: bool = True, sync: bool = True) -> torch.Tensor:
    """Turn ``datum`` into a tensor on the current engine's device (CPU before any Engine exists).

    Args:
        datum: a Python number or bool, a list/tuple of numbers, a numeric NumPy array or scalar, or a
            tensor (detached from its graph).
        as_const: True gives an untrainable tensor; False sets ``requires_grad`` (floating data only).
        sync: False copies with ``non_blocking=True``.

    Returns:
        A leaf tensor on the engine's device. NumPy input keeps its dtype and on CPU shares its memory
        (a read-only array is copied first).

    Raises:
        TypeError: for other inputs (non-numeric arrays included), or ``as_const=False`` on
            non-floating data.

    Example:
        >>> coat([1.0, 2.0], as_const=False).requires_grad
        True
    """
    return coat_to(datum, target_device(current_engine()), as_const, sync)


def shell(datum: torch.Tensor, as_np: bool = True, sync: bool = False) -> Any:
    """Take a tensor out of the graph (and off the device).

    Args:
        datum: a torch tensor.
        as_np: True returns a NumPy array (a 0-d tensor gives a NumPy scalar); False the detached tensor.
        sync: on GPU, wait for the device's pending work first.

    Raises:
        TypeError: if ``datum`` is not a tensor.

    Example:
        >>> shell(torch.tensor(3.0))
        np.float32(3.0)
    """
    return shell_from(datum, as_np, sync)
