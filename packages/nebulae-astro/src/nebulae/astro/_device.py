"""``coat`` and ``shell``: move data onto the current engine's device and back out."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from nebulae.kit import current_engine

__all__ = ["coat", "shell"]


def _target_device(engine: Any) -> torch.device:
    if engine is None or str(engine.device).upper() != "GPU":
        return torch.device("cpu")
    if engine.rank < 0:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(engine.chip[engine.local_rank])


def coat(datum: Any, as_const: bool = True, sync: bool = True) -> torch.Tensor:
    """Turn ``datum`` into a tensor on the current engine's device (CPU before any Engine exists).

    Args:
        datum: a Python number or bool, a list/tuple of numbers, a NumPy array or scalar, or a tensor.
        as_const: True gives an untrainable tensor; False sets ``requires_grad`` (floating data only).
        sync: False copies with ``non_blocking=True``.

    Returns:
        A leaf tensor on the engine's device. NumPy input on CPU shares its memory (a read-only
        array is copied first).

    Raises:
        TypeError: for other inputs, or ``as_const=False`` on non-floating data.

    Example:
        >>> coat([1.0, 2.0], as_const=False).requires_grad
        True
    """
    if isinstance(datum, torch.Tensor):
        tensor = datum.detach()
    elif isinstance(datum, (np.ndarray, np.generic)):
        if datum.dtype.kind not in "biufc":
            raise TypeError(f"coat() takes numeric NumPy data (got dtype {datum.dtype})")
        array = np.asarray(datum)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    elif isinstance(datum, (bool, numbers.Number)) and not isinstance(datum, complex):
        tensor = torch.tensor(datum)
    elif isinstance(datum, (list, tuple)):
        try:
            tensor = torch.tensor(datum)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"coat() takes lists/tuples of numbers (could not convert: {err})") from None
    else:
        raise TypeError(
            "coat() takes an int, float, bool, list/tuple of numbers, NumPy array or scalar, or a torch "
            f"tensor (got {type(datum).__name__})"
        )
    tensor = tensor.to(_target_device(current_engine()), non_blocking=not sync)
    if not as_const and not (tensor.is_floating_point() or tensor.is_complex()):
        raise TypeError(f"as_const=False needs floating data to carry gradients (got dtype {tensor.dtype})")
    return tensor.requires_grad_(not as_const)


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
    if not isinstance(datum, torch.Tensor):
        raise TypeError(f"shell() takes a torch tensor (got {type(datum).__name__})")
    datum = datum.detach()
    if sync and datum.is_cuda:
        torch.cuda.synchronize(datum.device)
    if not as_np:
        return datum
    array = datum.cpu().numpy()
    return array[()] if array.ndim == 0 else array
