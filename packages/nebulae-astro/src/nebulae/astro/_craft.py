"""``Craft``: the ``torch.nn.Module`` base class of every Nebulae network, layer and optimizer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nebulae.kit import current_engine

from ._formula import fn

__all__ = ["DYNAMIC", "FIXED", "STATIC", "Craft", "engine_device_type", "walk_path"]

# cockpit's gearbox constants (astro never imports cockpit, so the values are repeated here).
DYNAMIC, STATIC, FIXED = 20, 21, 22
_ENGINE_ATTRIBUTES = ("device", "chip", "rank", "local_rank", "gearbox", "multi_piston")
_AMP_DTYPES = (torch.float16, torch.bfloat16)


def engine_device_type(engine: Any = None) -> str:
    """Return ``'cuda'`` when ``engine`` (default: the current one) runs on GPU, else ``'cpu'``."""
    engine = current_engine() if engine is None else engine
    if engine is not None and str(engine.device).upper() == "GPU":
        return "cuda"
    return "cpu"


def walk_path(root: nn.Module, path: str) -> Any:
    """Follow the ``/``-separated attribute names of ``path`` from ``root`` and return the object reached.

    Raises:
        AttributeError: naming the first missing attribute and where it was looked up.
    """
    node: Any = root
    walked = getattr(root, "scope", type(root).__name__)
    for name in path.split("/"):
        if not name:
            continue
        if not hasattr(node, name):
            raise AttributeError(f"'{walked}' has no attribute '{name}' (while resolving the path '{path}')")
        node = getattr(node, name)
        walked = f"{walked}/{name}"
    return node


class Craft(nn.Module):
    """Base class of networks: a ``torch.nn.Module`` whose forward pass is written in ``run``.

    Args:
        scope: the craft's name, also the default base name of its checkpoint files.

    Raises:
        TypeError: if ``scope`` is not a str.

    Example:
        >>> class Net(Craft):
        ...     def __init__(self, scope='NET'):
        ...         super().__init__(scope)
        ...         self.fc = torch.nn.Linear(4, 2)
        ...     def run(self, x):
        ...         self['hidden'] = x
        ...         return self.fc(x)
        >>> net = Net()
        >>> net(torch.zeros(1, 4)).shape
        torch.Size([1, 2])
    """

    def __init__(self, scope: str) -> None:
        if not isinstance(scope, str):
            raise TypeError(f"'scope' must be a str naming the craft (got {type(scope).__name__}: {scope!r})")
        super().__init__()
        self.scope = scope
        self._store: dict[str, Any] = {}
        self._fns: list[fn] = []
        self._amp_dtype: torch.dtype | None = None

    # -- forward -------------------------------------------------------------------------------------------
    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The forward computation; subclasses implement it (``craft(x)`` calls it through ``forward``)."""
        raise NotImplementedError(f"{type(self).__name__} ('{self.scope}') must implement run()")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._amp_dtype is None:
            return self.run(*args, **kwargs)
        with torch.autocast(engine_device_type(), dtype=self._amp_dtype):
            return self.run(*args, **kwargs)

    # -- modes and devices ---------------------------------------------------------------------------------
    def gear(self, gr: Any) -> nn.Module:
        """Switch train/eval mode (a bool) or place the craft on an engine's device.

        Args:
            gr: True → ``train()``, False → ``eval()``; or an Engine (duck-typed: ``device``, ``chip``,
                ``rank``, ``local_rank``, ``gearbox``, ``multi_piston``).

        Returns:
            The module to use from then on: ``self``, unless the engine asks for compilation
            (``gearbox`` STATIC/FIXED) or ``DataParallel`` (``multi_piston``), in which case the
            wrapper is returned. Write ``net = net.gear(engine)``.

        Raises:
            TypeError: if ``gr`` is neither a bool nor an engine.
        """
        if isinstance(gr, bool):
            self.train(gr)
            return self
        missing = [name for name in _ENGINE_ATTRIBUTES if not hasattr(gr, name)]
        if missing:
            raise TypeError(
                f"gear() takes a bool (train/eval) or an Engine; {type(gr).__name__} lacks "
                f"{', '.join(missing)}"
            )
        module: nn.Module = self
        if engine_device_type(gr) == "cuda":
            if gr.rank < 0:
                self.cuda()
                if gr.multi_piston:
                    module = nn.DataParallel(self)
            else:
                self.to(gr.chip[gr.local_rank])
        else:
            self.cpu()
        if gr.gearbox == STATIC:
            module = torch.compile(module)  # type: ignore[assignment]
        elif gr.gearbox == FIXED:
            # fixed input shapes: no dynamic-shape guards; CUDA graphs on GPU
            mode = "reduce-overhead" if engine_device_type(gr) == "cuda" else "default"
            module = torch.compile(module, dynamic=False, mode=mode)  # type: ignore[assignment]
        elif gr.gearbox != DYNAMIC:
            raise ValueError(f"engine gearbox must be DYNAMIC=20, STATIC=21 or FIXED=22 (got {gr.gearbox!r})")
        return module

    def mixp(self, dtype: torch.dtype | None = torch.bfloat16) -> Craft:
        """Run ``run`` under ``torch.autocast`` with ``dtype`` from now on (None turns it off).

        Parameters stay float32. float16 training needs an optimizer craft built with ``mixp=True``.

        Raises:
            ValueError: if ``dtype`` is not torch.float16, torch.bfloat16 or None.
        """
        if dtype is not None and dtype not in _AMP_DTYPES:
            raise ValueError(f"mixp() takes torch.float16, torch.bfloat16 or None (got {dtype!r})")
        self._amp_dtype = dtype
        return self

    def lowp(self, dtype: torch.dtype = torch.float16) -> Craft:
        """Cast the floating parameters and buffers to ``dtype`` (default float16). Returns self."""
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"lowp() takes a floating torch dtype such as torch.float16 (got {dtype!r})")
        if not dtype.is_floating_point:
            raise ValueError(f"lowp() takes a floating torch dtype (got {dtype!r})")
        self.to(dtype)
        return self

    # -- parameters ----------------------------------------------------------------------------------------
    def vars(self) -> Iterator[nn.Parameter]:
        """The craft's parameters (``self.parameters()``)."""
        return self.parameters()

    def weights(self) -> torch.Tensor:
        """The main weight tensor of a single-layer craft; composite crafts raise NotImplementedError."""
        raise NotImplementedError(
            f"{type(self).__name__} ('{self.scope}') has no single main weight; use vars() for its parameters"
        )

    # -- value store ---------------------------------------------------------------------------------------
    def __setitem__(self, name: str, value: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"value-store keys are str (got {type(name).__name__})")
        if "/" in name:
            raise ValueError(
                f"value-store key {name!r} of '{self.scope}' contains '/'; store it on the sub-craft instead"
            )
        self._store[name] = value

    def __getitem__(self, path: str) -> Any:
        """``craft['a/b/name']``: the value ``name`` stored by sub-craft ``a.b`` (None if absent).

        A path ending in ``/`` returns the sub-craft itself.
        """
        if not isinstance(path, str):
            raise TypeError(f"value-store keys are str (got {type(path).__name__})")
        head, _, name = path.rpartition("/")
        node = walk_path(self, head) if head else self
        if not name:
            return node
        store = getattr(node, "_store", None)
        if not isinstance(store, dict):
            raise TypeError(f"'{head}' is a {type(node).__name__}, not a Craft with a value store")
        return store.get(name)

    # -- graph descriptions --------------------------------------------------------------------------------
    def formulate(self, *fns: fn) -> None:
        """Append ``fn`` graph descriptions of this craft (read by aerolog's Inspector)."""
        for item in fns:
            if not isinstance(item, fn):
                raise TypeError(f"formulate() takes fn nodes (got {type(item).__name__})")
        self._fns.extend(fns)

    @property
    def fns(self) -> list[fn]:
        """The graph descriptions given to ``formulate`` (a copy)."""
        return list(self._fns)

    def extra_repr(self) -> str:
        return f"scope={self.scope!r}"
