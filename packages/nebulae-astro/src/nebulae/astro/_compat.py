"""The private torch names astro relies on, each reached only here.

torch offers no public way to do these two things. Both are covered by ``tests/test_compat.py``, which
fails naming the torch version in use when one of them disappears or changes shape.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["TORCH_WRITTEN_AGAINST", "compiled_original", "registered_child"]

# the torch releases these internals were read from and tested with
TORCH_WRITTEN_AGAINST = "2.11-2.13"


def compiled_original(module: Any) -> torch.nn.Module | None:
    """The module that ``torch.compile`` wrapped in ``module``, or None when ``module`` is not compiled."""
    if not isinstance(module, torch.nn.Module):
        return None
    original = getattr(module, "_orig_mod", None)
    return original if isinstance(original, torch.nn.Module) else None


def registered_child(module: torch.nn.Module, name: str) -> torch.nn.Module | None:
    """The submodule registered as ``name``, read without ``Module.__getattr__``.

    Safe inside a ``__getattr__`` override, also while the module is being built or unpickled (before
    ``Module.__init__`` has made its registry).
    """
    child = module.__dict__.get("_modules", {}).get(name)
    return child if isinstance(child, torch.nn.Module) else None
