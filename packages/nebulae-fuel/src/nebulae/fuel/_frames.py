"""Frame stacks for the augmentation ops: walk a (nested) list of frames, run PIL per frame, round to uint8."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _leaves(tree: Any, out: list[np.ndarray]) -> None:
    if isinstance(tree, list):
        for item in tree:
            _leaves(item, out)
    else:
        out.append(tree)


def _rebuild(tree: Any, it: Any) -> Any:
    if isinstance(tree, list):
        return [_rebuild(item, it) for item in tree]
    return next(it)


_STACK_LIMIT = 1 << 15  # elements per frame below which stacking frames beats per-frame calls


def map_frames(tree: Any, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
    """Apply `fn` to (T, H, W, C) stacks: small equal-shape frames in one stack, others one by one.

    The kernels are vectorised either way; stacking only saves per-call overhead, and for large frames the
    copy into a fresh stack costs more than it saves (measured in bench/bench_fuel.py).
    """
    items: list[np.ndarray] = []
    _leaves(tree, items)
    if not items:
        return tree
    first = items[0]
    if (
        len(items) > 1
        and first.size <= _STACK_LIMIT
        and all(a.shape == first.shape and a.dtype == first.dtype for a in items)
    ):
        done = list(fn(np.stack(items)))
    else:
        done = [fn(a[None])[0] for a in items]
    if not isinstance(tree, list):
        return done[0]
    return _rebuild(tree, iter(done))


def first_leaf(tree: Any) -> np.ndarray | None:
    """The first frame of a (nested) list of frames, or None when there is none."""
    while isinstance(tree, list):
        if not tree:
            return None
        tree = tree[0]
    return tree


def per_frame_pil(stack: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    """Run a PIL transform on each frame (and each channel when Pillow has no matching mode)."""
    from PIL import Image

    out = []
    for frame in stack:
        c = frame.shape[2]
        if c in (1, 3):
            img = Image.fromarray(frame[:, :, 0] if c == 1 else frame)
            res = np.asarray(fn(img))
            out.append(res[:, :, None] if res.ndim == 2 else res)
        else:
            chans = [np.asarray(fn(Image.fromarray(np.ascontiguousarray(frame[:, :, k])))) for k in range(c)]
            out.append(np.stack(chans, axis=2))
    return np.stack(out)


def to_uint8(stack: np.ndarray) -> np.ndarray:
    """Round and clip a float stack to uint8; uint8 passes through."""
    return stack if stack.dtype == np.uint8 else np.clip(np.rint(stack), 0, 255).astype(np.uint8)
