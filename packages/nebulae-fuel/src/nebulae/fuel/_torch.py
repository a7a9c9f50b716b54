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


def _refuse_loader_workers(num_workers: int) -> ValueError:
    # Splitting the epoch between DataLoader workers is not done on purpose: each worker holds a copy of the
    # Tank whose epoch counter the parent never sees advance (every DataLoader pass would replay one order),
    # daemonic DataLoader workers may not start Tank's own worker processes, and a forked copy of a Tank that
    # already ran has no live worker threads.
    return ValueError(
        f"Tank.as_torch() cannot be read by DataLoader worker processes (got num_workers={num_workers}): "
        "each would replay the Tank's whole epoch on a copy of it. Tank builds its batches in workers of its "
        "own (Tank(..., nworker=N, worker_type='thread'|'process')): use "
        "DataLoader(tank.as_torch(), batch_size=None, num_workers=0)"
    )


def TankDataset(tank: Any) -> Any:
    """Wrap `tank` in a torch IterableDataset of one epoch of batches (tensors on the CPU).

    Each pass yields exactly `tank.MPE` batches (see `Tank.__iter__`). Only `DataLoader(..., num_workers=0)`
    can read it (a ValueError otherwise): the Tank runs its own workers.
    """
    try:
        import torch.utils.data as tud
    except ImportError:
        raise ImportError("Tank.as_torch() needs torch: pip install 'nebulae-fuel[torch]'") from None

    class _TankDataset(tud.IterableDataset):
        def __init__(self, source: Any) -> None:
            self.tank = source

        def __reduce__(self) -> Any:
            # spawn/forkserver DataLoader workers receive a pickled copy: a Tank (threads, pipes) does not
            # pickle, nor does this local class, so the copy is a Tank-less dataset that refuses to iterate
            return (TankDataset, (None,))

        def __iter__(self) -> Any:
            worker = tud.get_worker_info()
            if worker is not None:
                raise _refuse_loader_workers(worker.num_workers)
            if self.tank is None:
                raise ValueError(
                    "this Tank.as_torch() dataset is a copy made for another process and has no Tank: "
                    "call tank.as_torch() in the process that created the Tank"
                )
            for batch in self.tank:
                yield _to_tensor(batch)

        def __len__(self) -> int:
            return int(self.tank.MPE) if self.tank is not None else 0

    return _TankDataset(tank)
