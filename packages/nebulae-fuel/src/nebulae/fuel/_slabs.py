"""Shared-memory slabs: where a worker process puts a batch's arrays, and how the parent maps them back."""

from __future__ import annotations

import contextlib
import mmap
import os
import uuid
from typing import Any

import numpy as np

from ._buffers import BumpAlloc
from ._collate import aligned
from ._compat import shm_fd

SLAB_PREFIX = "nebfuel"


class Leaf:
    """Placeholder for an array living in a slab: (offset, shape, dtype)."""

    __slots__ = ("dtype", "offset", "shape")

    def __init__(self, offset: int, shape: tuple[int, ...], dtype: str) -> None:
        self.offset, self.shape, self.dtype = offset, shape, dtype


def _map_tree(tree: Any, fn: Any) -> Any:
    """Rebuild dicts, (plain) tuples and lists with `fn` applied to every other node."""
    if isinstance(tree, dict):
        return {k: _map_tree(v, fn) for k, v in tree.items()}
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_map_tree(v, fn) for v in tree)
    if isinstance(tree, list):
        return [_map_tree(v, fn) for v in tree]
    return fn(tree)


def to_leaves(tree: Any, placed: dict[int, Any]) -> Any:
    """Replace arrays written into a slab by Leaf placeholders."""
    return _map_tree(
        tree, lambda x: Leaf(*placed[id(x)]) if isinstance(x, np.ndarray) and id(x) in placed else x
    )


def from_leaves(tree: Any, make: Any) -> Any:
    """Replace Leaf placeholders by arrays made with `make(leaf)`."""
    return _map_tree(tree, lambda x: make(x) if isinstance(x, Leaf) else x)


class WorkerSlabs:
    """The slabs one worker process owns; it alone creates and unlinks them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.slabs: dict[str, Any] = {}
        self.busy: set[str] = set()
        self.views: dict[str, np.ndarray] = {}

    def acquire(self, nbytes: int) -> str:
        from multiprocessing import shared_memory

        free = [n for n in self.slabs if n not in self.busy and self.slabs[n].size >= nbytes]
        if free:
            name = min(free, key=lambda n: self.slabs[n].size)
        else:
            name = f"{self.tag}_{len(self.slabs)}_{uuid.uuid4().hex[:8]}"
            size = max(aligned(nbytes + nbytes // 8), 1 << 16)
            shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            self.slabs[name] = shm
            self.views[name] = map_slab(name, shm)
        self.busy.add(name)
        return name

    def cleanup(self) -> None:
        self.views.clear()
        for shm in self.slabs.values():
            shm.close()
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()
        self.slabs.clear()


class SlabSink:
    """A worker slab opened for one batch while it is built (see BatchBuilder.build)."""

    def __init__(self, slabs: WorkerSlabs) -> None:
        self.slabs = slabs
        self.name = ""
        self.alloc: BumpAlloc | None = None

    def open(self, nbytes: int) -> BumpAlloc:
        self.name = self.slabs.acquire(nbytes)
        self.alloc = BumpAlloc(0, self.slabs.slabs[self.name].size, None, self.slabs.views[self.name])
        return self.alloc

    def abort(self) -> None:
        self.slabs.busy.discard(self.name)
        self.name, self.alloc = "", None


def map_slab(name: str, shm: Any = None) -> np.ndarray:
    """A uint8 array over a slab through a mapping of our own, so SharedMemory.close() never meets live views."""
    from multiprocessing import shared_memory

    own = shm is None
    if own:
        shm = shared_memory.SharedMemory(name=name)
    mapped = mmap.mmap(shm_fd(shm), shm.size)
    if own:
        shm.close()
    return np.frombuffer(mapped, dtype=np.uint8)


def unlink_leftovers(tag: str) -> None:
    """Remove slabs a worker could not unlink itself (it was killed)."""
    shm_dir = "/dev/shm"
    if not os.path.isdir(shm_dir):
        return
    for name in os.listdir(shm_dir):
        if name.startswith(tag):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(shm_dir, name))
