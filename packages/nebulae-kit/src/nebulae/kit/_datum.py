"""Data onto a device as a tensor (astro's ``coat``, cockpit's ``Engine.coat``) and back out (``shell``)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["coat_to", "shell_from"]

# bool, unsigned and signed ints, floats, complex: the NumPy kinds torch.from_numpy can hold
_NUMERIC_KINDS = "biufc"


def coat_to(datum: Any, device: Any, as_const: bool = True, sync: bool = True) -> torch.Tensor:
    """Turn ``datum`` into a leaf tensor on ``device``; torch is imported here, so kit never needs it.

    NumPy data keeps its dtype and, on the CPU, shares its memory (a read-only or byte-swapped array
    is copied first); a tensor is detached from its graph. The flag ``requires_grad`` is set after the
    move, so a GPU copy is a leaf whose ``.grad`` fills.

    Args:
        datum: a Python int, float or bool, a list/tuple of numbers, a numeric NumPy array or scalar, or
            a tensor.
        device: where the tensor goes (a ``torch.device`` or its name, e.g. ``target_device(engine)``).
        as_const: True gives an untrainable tensor; False sets ``requires_grad`` (floating data only).
        sync: False copies with ``non_blocking=True``.

    Returns:
        A leaf tensor on ``device``.

    Raises:
        TypeError: any other input (strings, objects, non-numeric arrays), or ``as_const=False`` on
            non-floating data.

    Example:
        >>> coat_to([1.0, 2.0], "cpu", as_const=False).requires_grad
        True
    """
    import torch

    if isinstance(datum, torch.Tensor):
        tensor = datum.detach()
    elif isinstance(datum, np.ndarray | np.generic):
        if datum.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(
                f"coat() takes numeric NumPy data (got dtype {datum.dtype}): convert it with .astype() first"
            )
        array = np.asarray(datum)
        if not array.dtype.isnative:  # torch holds native byte order only (big-endian files)
            array = array.astype(array.dtype.newbyteorder("="))
        elif not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(array)
    elif isinstance(datum, bool | numbers.Number | list | tuple) and not isinstance(datum, complex):
        try:
            tensor = torch.tensor(datum)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"coat() takes numbers or lists/tuples of numbers (could not convert: {exc})"
            ) from None
    else:
        raise TypeError(
            "coat() takes an int, float, bool, list/tuple of numbers, NumPy array or scalar, or a torch "
            f"tensor (got {type(datum).__name__})"
        )
    if not as_const and not (tensor.is_floating_point() or tensor.is_complex()):
        raise TypeError(
            f"coat(as_const=False) needs floating data to carry gradients (got dtype {tensor.dtype}): "
            "pass floats or convert the data first"
        )
    return tensor.to(device, non_blocking=not sync).requires_grad_(not as_const)


def shell_from(datum: Any, as_np: bool = True, sync: bool = False) -> Any:
    """Take a tensor out of the graph and, with ``as_np``, off its device as NumPy.

    Args:
        datum: a torch tensor.
        as_np: True returns a NumPy array (a 0-d tensor gives a NumPy scalar); False the detached tensor
            on its device.
        sync: on GPU, wait for the device's pending work first.

    Raises:
        TypeError: if ``datum`` is not a tensor.

    Example:
        >>> import torch
        >>> shell_from(torch.tensor(3.0))
        np.float32(3.0)
    """
    import torch

    if not isinstance(datum, torch.Tensor):
        raise TypeError(f"shell() takes a torch tensor (got {type(datum).__name__})")
    tensor = datum.detach()
    if sync and tensor.is_cuda:
        torch.cuda.synchronize(tensor.device)
    if not as_np:
        return tensor
    array = tensor.cpu().numpy()
    return array[()] if array.ndim == 0 else array
