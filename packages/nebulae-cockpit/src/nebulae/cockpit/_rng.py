"""The random number generators' states (Python, NumPy's global, torch CPU and CUDA) as weights_only data."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Every global generator's state, made of ints, floats, lists and tensors only.

    ``torch.load(weights_only=True)`` refuses NumPy arrays and arbitrary tuples, hence the lists.
    """
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "words": [int(w) for w in words], "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what :func:`rng_state` returned; CUDA states are restored on as many devices as both have."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["words"]), python["gauss"]))
    numpy = state["numpy"]
    keys = np.asarray(numpy["keys"].numpy(), dtype=np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["pos"], numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"].clone())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        for device, saved in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(saved.clone(), device)
