"""A craft's weights in a checkpoint: wrappers stripped, entries filtered by scope, loaded in place."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ._compat import compiled_original
from ._warnings import CockpitWarning

__all__ = ["craft_scope", "in_memory", "in_scope", "load_checkpoint", "load_net", "scope_prefix", "unwrap"]


def unwrap(craft: Any) -> Any:
    """Strip ``DataParallel``/``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    seen = 0
    while seen < 16:
        seen += 1
        if isinstance(craft, torch.nn.DataParallel | torch.nn.parallel.DistributedDataParallel):
            craft = craft.module
        elif (original := compiled_original(craft)) is not None:
            craft = original
        else:
            break
    return craft


def scope_prefix(scope: str | None, argument: str) -> str | None:
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise TypeError(f"'{argument}' must be a '/'-separated attribute path or None (got {scope!r})")
    prefix = ".".join(part for part in scope.strip("/").split("/") if part)
    return prefix or None


def in_scope(key: str, prefix: str | None) -> bool:
    # Boundary-safe: scope 'fc' keeps 'fc.weight' but not 'fc2.weight'.
    return prefix is None or key == prefix or key.startswith(prefix + ".")


def craft_scope(craft: Any) -> str:
    scope = getattr(craft, "scope", None)
    if scope is None:
        scope = getattr(unwrap(craft), "scope", None)
    if not isinstance(scope, str) or not scope:
        raise TypeError(
            f"the craft needs a non-empty str 'scope' to name its checkpoints (got {scope!r}); "
            "pass file='name.pth' or give the model a scope"
        )
    return scope


def load_net(module: Any, state: dict[str, Any], ckpt_scope: str | None, frozen: bool, path: str) -> None:
    prefix = scope_prefix(ckpt_scope, "ckpt_scope")
    wanted = {key: value for key, value in state.items() if in_scope(key, prefix)}
    if not wanted:
        raise ValueError(f"'ckpt_scope' {ckpt_scope!r} matches no entry of {path!r}")
    own = module.state_dict()
    unexpected = sorted(key for key in wanted if key not in own)
    mismatched = sorted(
        f"{key} (file {tuple(wanted[key].shape)}, model {tuple(own[key].shape)})"
        for key in wanted
        if key in own and hasattr(wanted[key], "shape") and tuple(wanted[key].shape) != tuple(own[key].shape)
    )
    if frozen:
        missing = sorted(key for key in own if in_scope(key, prefix) and key not in wanted)
        if missing or unexpected or mismatched:
            parts = [
                f"{label}: {', '.join(keys)}"
                for label, keys in (
                    ("missing", missing),
                    ("unexpected", unexpected),
                    ("shape mismatch", mismatched),
                )
                if keys
            ]
            raise RuntimeError(
                f"frozen=True needs {path!r} to match the craft exactly under scope {ckpt_scope!r}; "
                + "; ".join(parts)
                + " (pass frozen=False to load the matching part only)"
            )
    elif mismatched:
        warnings.warn(
            f"{path!r}: skipped {len(mismatched)} entries whose shape differs from the craft: "
            + ", ".join(mismatched),
            CockpitWarning,
            stacklevel=3,
        )
    loadable = {
        key: value
        for key, value in wanted.items()
        if key in own and (not hasattr(value, "shape") or tuple(value.shape) == tuple(own[key].shape))
    }
    module.load_state_dict(loadable, strict=False)


def load_checkpoint(path: str) -> Any:
    # mmap: the tensors are read straight from the page cache while load_state_dict copies them,
    # instead of into fresh buffers first. The mapping is private, so nothing writes to the file.
    # Legacy (non-zip) torch.save files cannot be mapped and are read the ordinary way.
    with open(path, "rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"
    return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)


def in_memory(obj: Any) -> Any:
    """Copy the tensors of a mapped checkpoint entry into memory.

    Optimizers may keep the tensors they are given; mapped ones would pin the file on disk after
    rotation deletes it.
    """
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {key: in_memory(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(in_memory(value) for value in obj)
    return obj
