"""The DistributedDataParallel wrapper that Multiverse.sync returns, still usable like the Craft inside."""

from __future__ import annotations

from typing import Any

from torch.nn.parallel import DistributedDataParallel

from ._compat import registered_child

__all__ = ["SyncedCraft"]


class SyncedCraft(DistributedDataParallel):
    """DistributedDataParallel that forwards unknown attributes and ``craft['key']`` to the wrapped model.

    ``gear(True/False)`` switches train/eval mode; ``gear(engine)`` is passed to the model.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = registered_child(self, "module")
            if inner is None:
                raise
            return getattr(inner, name)

    def __getitem__(self, key: Any) -> Any:
        return self.module[key]

    def gear(self, mode: Any = True, *args: Any, **kwargs: Any) -> Any:
        """``gear(bool)``: train (True) or eval (False) mode, returning this wrapper; else the model's gear."""
        if isinstance(mode, bool):
            self.train(mode)
            return self
        return self.module.gear(mode, *args, **kwargs)
