"""The ``state={name: object}`` of a resumable checkpoint: checks, per-rank gathering, and restoring."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from nebulae.kit import get_rank

from ._model_state import in_memory

__all__ = [
    "check_loadable",
    "gathered",
    "load_ranked",
    "ranked_names",
    "restore_objects",
    "resumable_objects",
    "stored_names",
    "world",
]

# What torch.load(weights_only=True) reads back; anything else would make the checkpoint unloadable.
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


def resumable_objects(state: Any) -> dict[str, Any] | None:
    """``state`` checked: a dict of str names to objects with ``state_dict()`` and ``load_state_dict()``."""
    if state is None:
        return None
    if not isinstance(state, Mapping):
        raise TypeError(
            f"'state' must be a dict {{name: object with state_dict()}}, e.g. {{'train': tank}} "
            f"(got {type(state).__name__})"
        )
    for name, obj in state.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"'state' keys must be non-empty str names (got {name!r})")
        for method in ("state_dict", "load_state_dict"):
            if not callable(getattr(obj, method, None)):
                raise TypeError(f"'state' entry {name!r} has no {method}() (got {type(obj).__name__})")
    return dict(state)


def ranked_names(objects: Mapping[str, Any], ranked: Iterable[str] | None) -> list[str]:
    """The entries whose state differs per rank: ``ranked`` as given, else those that shard by rank.

    A data source that shards by rank has ``set_distributed()`` (a Tank does); its state is gathered
    from every rank, the others' come from rank 0 like the model's.
    """
    if ranked is None:
        return [name for name, obj in objects.items() if callable(getattr(obj, "set_distributed", None))]
    if isinstance(ranked, str):
        ranked = (ranked,)
    names = list(ranked)
    unknown = sorted(set(names) - set(objects))
    if unknown:
        raise ValueError(f"'ranked' names {unknown}, which are not keys of 'state' ({sorted(objects)})")
    return names


def check_loadable(obj: Any, where: str) -> None:
    """Raise TypeError naming the entry of ``obj`` that ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            check_loadable(key, f"{where} key")
            check_loadable(value, f"{where}[{key!r}]")
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            check_loadable(value, f"{where}[{index}]")
    elif not isinstance(obj, _PLAIN):
        raise TypeError(
            f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot read back; "
            "state_dict() must return dicts, lists, str, numbers, None and tensors only"
        )


def world() -> tuple[int, int]:
    """``(rank, nworld)`` of the process group (``(0, 1)`` outside one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return max(get_rank(), 0), 1


def gathered(local: Any) -> list[Any]:
    """Every rank's ``local``, in rank order (a collective: every rank must call it)."""
    nworld = world()[1]
    if nworld == 1:
        return [local]
    everyone: list[Any] = [None] * nworld
    torch.distributed.all_gather_object(everyone, local)
    return everyone


def stored_names(states: Mapping[str, Any]) -> set[str]:
    names = set(states.get("state") or {})
    names.update(states.get("ranked") or {})
    return names


def load_ranked(obj: Any, states: list[Any]) -> None:
    """Restore a per-rank entry: this rank's own state when the number of ranks is the same; otherwise
    ``load_state_dict`` gets the list of every saved rank's state and splits the rest of the interrupted
    epoch over the new ranks itself (a Tank does, or says why it cannot)."""
    rank, nworld = world()
    obj.load_state_dict(states[rank] if len(states) == nworld else states)


def restore_objects(objects: dict[str, Any], states: Mapping[str, Any], path: str) -> None:
    """Call each object's ``load_state_dict`` with its stored state, once the names match exactly."""
    stored = stored_names(states)
    missing, extra = sorted(set(objects) - stored), sorted(stored - set(objects))
    if missing or extra:
        parts = [f"missing {missing}" if missing else "", f"not asked for {extra}" if extra else ""]
        raise KeyError(
            f"{path!r} stores the state of {sorted(stored)}, 'state' asks for {sorted(objects)} ("
            + ", ".join(p for p in parts if p)
            + "); pass exactly the names given to drop(state=...)"
        )
    shared, ranked = states.get("state") or {}, states.get("ranked") or {}
    for name, obj in objects.items():
        if name in ranked:
            load_ranked(obj, in_memory(ranked[name]))
        else:
            obj.load_state_dict(in_memory(shared[name]))
