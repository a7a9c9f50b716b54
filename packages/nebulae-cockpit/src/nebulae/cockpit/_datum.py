"""Moving data onto an engine's device (coat) and back to NumPy (shell)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["coat_to", "shell_from"]


def coat_to(datum: Any, device: torch.device, as_const: bool = True, sync: bool = True) -> torch.Tensor:
    """Turn ``datum`` into a tensor on ``device``; ``as_const=False`` makes it a leaf that requires grad.

    Raises:
        TypeError: an unsupported type, or ``as_const=False`` for a non-floating dtype.
    """
    if isinstance(datum, torch.Tensor):
        tensor = datum
    elif isinstance(datum, np.ndarray):
        tensor = torch.from_numpy(datum if datum.flags.writeable else datum.copy())
    elif isinstance(datum, np.generic | bool | int | float | list | tuple):
        try:
            tensor = torch.tensor(datum.item() if isinstance(datum, np.generic) else datum)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"coat() cannot turn {datum!r} into a tensor: {exc}") from None
    else:
        raise TypeError(
            "coat() takes numbers, lists/tuples of numbers, NumPy arrays or torch tensors "
            f"(got {type(datum).__name__})"
        )
    if not as_const and not (tensor.is_floating_point() or tensor.is_complex()):
        raise TypeError(
            f"coat(as_const=False) needs a floating dtype to carry gradients (got {tensor.dtype})"
        )
    tensor = tensor.to(device, non_blocking=not sync)
    if not as_const:
        tensor = tensor.detach().requires_grad_(True)
    elif tensor.requires_grad:
        tensor = tensor.detach()
    return tensor


def shell_from(datum: Any, as_np: bool = True, sync: bool = False) -> Any:
    """Detach ``datum``; with ``as_np`` return a NumPy array (a NumPy scalar for a 0-d tensor).

    Raises:
        TypeError: ``datum`` is not a tensor.
    """
    if not isinstance(datum, torch.Tensor):
        raise TypeError(f"shell() takes a torch tensor (got {type(datum).__name__})")
    tensor = datum.detach()
    if sync and tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)
    if not as_np:
        return tensor
    array = tensor.cpu().numpy()
    return array[()] if array.ndim == 0 else array
