"""Comburant: an ordered chain of augmentation ops with shared randomness over frames.

The base of every op (`Op`, `Rng`), the choice op `Random`, the layout ops and the chain itself live here; the
ops by family live in `_ops_geometry`, `_ops_colour` and `_ops_filters`, which import this module (never the
other way round).
"""

from __future__ import annotations

import random as _random
from typing import Any

import numpy as np

from ._frames import first_leaf, map_frames
from ._image import byte2arr
from ._rng import worker_rng
from ._validate import instance_of, number_in


class Rng:
    """The two generators an op draws from: Python's for parameters, NumPy's for noise fields."""

    def __init__(self, py: Any, gen: np.random.Generator | None = None) -> None:
        self.py = py
        self._gen = gen

    @property
    def gen(self) -> np.random.Generator:
        if self._gen is None:
            self._gen = np.random.default_rng(self.py.getrandbits(64))
        return self._gen

    def uniform(self, lo: float, hi: float) -> float:
        return lo if lo == hi else self.py.uniform(lo, hi)


def current_rng(override: Any = None) -> Rng:
    """Comburant's rng=, else the Tank batch generators, else the global `random`."""
    if override is not None:
        return Rng(override)
    pair = worker_rng()
    if pair is not None:
        return Rng(pair[0], pair[1])
    return Rng(_random)


class Op:
    """Base of the augmentation ops: `draw` parameters once per call, `apply` them to a (T,H,W,C) stack."""

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return None

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        raise NotImplementedError

    def on_tree(self, tree: Any, rng: Rng) -> Any:
        first = first_leaf(tree)
        if first is None:
            return tree
        params = self.draw(rng, first.shape)
        return map_frames(tree, lambda stack: self.apply(stack, params))

    def __call__(self, src: Any, rng: Any = None) -> Any:
        return Comburant(self, end=False, rng=rng)(src)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class HWC2CHW(Op):
    """Transpose H x W x C to C x H x W."""

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


class HW2CHW(Op):
    """Turn H x W (or H x W x 1) into 1 x H x W."""

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


class Random(Op):
    """Apply `op` with probability `p`, or pick exactly one of `ops` with probabilities `p`.

    Example:
        >>> Random(0.5, Flip(VERTICAL))  # doctest: +SKIP
        >>> Random([0.3, 0.7], [Blur(1), JPEG(50)])  # doctest: +SKIP
    """

    def __init__(self, p: Any, op: Any) -> None:
        if isinstance(p, (list, tuple)):
            expected = "a list of ops when 'p' is a list of probabilities"
            instance_of("op", op, (list, tuple), expected, owner="Random")
            if len(op) != len(p) or not p:
                raise ValueError("Random: give as many ops as probabilities")
            if any(x < 0 for x in p) or abs(sum(p) - 1) > 1e-6:
                raise ValueError(f"Random: probabilities must be >= 0 and sum to 1 (got {list(p)})")
            self.p: Any = [float(x) for x in p]
            self.op: Any = list(op)
        else:
            self.p = number_in("p", p, 0, 1, expected="in [0, 1]", owner="Random")
            if not callable(op):
                raise TypeError(f"Random: 'op' must be callable (got {type(op).__name__})")
            self.op = op
        for o in self.op if isinstance(self.op, list) else [self.op]:
            if not callable(o):
                raise TypeError(f"Random: every op must be callable (got {type(o).__name__})")

    def on_tree(self, tree: Any, rng: Rng) -> Any:
        u = rng.py.random()
        if isinstance(self.p, list):
            acc = 0.0
            chosen = self.op[-1]
            for p, op in zip(self.p, self.op, strict=True):
                acc += p
                if u < acc:
                    chosen = op
                    break
            return _run(chosen, tree, rng)
        return _run(self.op, tree, rng) if u < self.p else tree


def _run(op: Any, tree: Any, rng: Rng) -> Any:
    if isinstance(op, Op):
        return op.on_tree(tree, rng)
    return op(tree)


def _prepare(src: Any, is_encoded: bool) -> Any:
    if isinstance(src, (list, tuple)):
        return [_prepare(s, is_encoded) for s in src]
    arr = src if isinstance(src, np.ndarray) else np.asarray(src)
    if is_encoded and arr.ndim == 1:
        return byte2arr(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"Comburant expects H x W or H x W x C images (got shape {arr.shape})")
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f":
            arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _finish(tree: Any, end: bool, squeeze: bool) -> Any:
    if isinstance(tree, list):
        return [_finish(t, end, squeeze) for t in tree]
    if not isinstance(tree, np.ndarray):
        return tree
    if squeeze and tree.ndim == 3 and tree.shape[2] == 1:
        tree = tree[:, :, 0]
    if end and tree.dtype == np.uint8:
        return tree.astype(np.float32) * np.float32(1 / 255)
    return tree


def _was_2d(src: Any) -> bool:
    while isinstance(src, (list, tuple)):
        if not src:
            return False
        src = src[0]
    return isinstance(src, np.ndarray) and src.ndim == 2


class Comburant:
    """An ordered chain of augmentation ops; each op draws its parameters once per call.

    Args:
        *ops: ops (Flip, Crop, Rotate, ...) or any callable `f(img_or_list)`.
        is_encoded: decode 1-D encoded buffers first (decoded arrays pass through).
        end: return float32 in [0, 1] (True) or uint8 (False).
        rng: a `random.Random` to draw from (default: the Tank batch generator, else `random`).

    Example:
        >>> cbr = Comburant(Crop((200, 200)), Random(0.5, Flip(VERTICAL)), Brighten(0.1))  # doctest: +SKIP
        >>> out = cbr(img)  # doctest: +SKIP
    """

    def __init__(self, *ops: Any, is_encoded: bool = False, end: bool = True, rng: Any = None) -> None:
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = tuple(ops[0])
        for op in ops:
            if not callable(op):
                raise TypeError(f"Comburant ops must be callable (got {type(op).__name__})")
        self.ops = list(ops)
        self.is_encoded = bool(is_encoded)
        self.end = bool(end)
        self.rng = rng

    def __call__(self, src: Any) -> Any:
        rng = current_rng(self.rng)
        squeeze = _was_2d(src)
        tree = _prepare(src, self.is_encoded)
        for op in self.ops:
            if isinstance(op, (HWC2CHW, HW2CHW)):
                squeeze = False
            tree = _run(op, tree, rng)
        return _finish(tree, self.end, squeeze)

    def __repr__(self) -> str:
        return f"Comburant({', '.join(map(repr, self.ops))}, is_encoded={self.is_encoded}, end={self.end})"


# lowercase names of the brochure
