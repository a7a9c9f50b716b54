"""Nebulae: pack images, stream batches, train, watch and checkpoint, on PyTorch.

Every library is imported on first use (PEP 562), so ``import nebulae`` is cheap
and a missing library only fails when it is touched, naming what to install.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import importlib as _importlib

from .__about__ import __version__ as __version__

# attribute -> the distribution that provides it
_PROVIDERS = {
    "aerolog": "nebulae-aerolog",
    "astro": "nebulae-astro",
    "cockpit": "nebulae-cockpit",
    "fuel": "nebulae-fuel",
    "kit": "nebulae-kit",
}

__all__ = ["Law", "aerolog", "astro", "cockpit", "fuel", "kit", "law"]


def _import_library(name: str):
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        # Only translate the failure of the library itself; a missing
        # third-party dependency inside it keeps its own message.
        if exc.name not in (f"{__name__}.{name}", __name__):
            raise
        dist = _PROVIDERS[name]
        raise ImportError(
            f"nebulae.{name} is not installed: it is provided by the '{dist}' "
            f"distribution (pip install {dist}, or pip install nebulae for everything)",
            name=f"{__name__}.{name}",
        ) from exc


def __getattr__(name: str):
    if name in _PROVIDERS:
        module = _import_library(name)
    elif name == "law":
        module = _importlib.import_module(f"{__name__}.law")
    elif name == "Law":
        module = _import_library("kit").Law
    else:
        raise AttributeError(f"module 'nebulae' has no attribute {name!r}")
    globals()[name] = module
    return module


def __dir__():
    return sorted(set(globals()) | set(__all__))
