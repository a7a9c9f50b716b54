"""Optional torch adapter for Tank (torch is imported only here)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _to_tensor(tree: Any) -> Any:
    import torch

    if isinstance(tree, np.ndarray) and tree.dtype.kind not in "OUSV":
        return torch.from_numpy(np.array(tree))
    if isinstance(tree, dict):
        return {k: _to_tensor(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_tensor(v) for v in tree)
    return tree


def TankDataset(tank: Any) -> Any:
    """Wrap `tank` in a torch IterableDataset of one epoch of batches (tensors on the CPU)."""
    try:
        import torch.utils.data as tud
    except ImportError:
        raise ImportError("Tank.as_torch() needs torch: pip install 'nebulae-fuel[torch]'") from None

    class _TankDataset(tud.IterableDataset):
        def __init__(self, source: Any) -> None:
            self.tank = source

        def __iter__(self) -> Any:
            for batch in self.tank:
                yield _to_tensor(batch)

        def __len__(self) -> int:
            return int(self.tank.MPE)

    return _TankDataset(tank)
