"""Default NumPy collation, planned first so that batches can be written into reused buffers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Alloc = Callable[[tuple[int, ...], np.dtype], np.ndarray]
ALIGN = 64

_cv2: Any = None  # OpenCV once resolved, False when it is not usable
# depths OpenCV's split takes, in native byte order
_CV_DTYPES = frozenset(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "int32", "float32", "float64")
)


def _opencv() -> Any:
    """cv2 (the `cv` extra) when it imports, else False; resolved once per process."""
    global _cv2
    if _cv2 is None:
        try:
            import cv2

            _cv2 = cv2
        except Exception:  # not installed, or a broken install (e.g. opencv-python without libGL)
            _cv2 = False
    return _cv2


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """`dst[...] = src`, exactly, for a C-contiguous `dst` row of a batch.

    `np.transpose(img, (2, 0, 1)).astype('float32')`, the usual prep, gives a C x H x W array whose memory is still
    H x W x C (`astype` keeps the strides). NumPy copies that into a C-contiguous row element by element (~85 us
    for 224x224x3 float32 here); with OpenCV installed (the `cv` extra) its vectorised channel split writes the C
    planes of the row directly (~36 us). Any other layout, or no OpenCV, takes NumPy's copy.
    """
    if src.ndim == 3 and 2 <= src.shape[0] <= 4 and _cv2 is not False:
        hwc = src.transpose(1, 2, 0)
        if (
            hwc.flags.c_contiguous
            and src.shape == dst.shape
            and src.dtype == dst.dtype
            and src.dtype in _CV_DTYPES
            and dst.flags.c_contiguous
            and dst.flags.writeable
            and src.size
        ):
            cv2 = _opencv()
            if cv2:
                planes = list(dst)
                out = cv2.split(hwc, planes)
                if len(out) == len(planes) and all(o is p for o, p in zip(out, planes, strict=True)):
                    return
                _disable_opencv()  # it returned planes of its own instead of filling ours
    dst[...] = src


def _disable_opencv() -> None:
    global _cv2
    _cv2 = False


def aligned(n: int) -> int:
    """`n` rounded up to the buffer alignment (every array of a batch buffer starts on a 64-byte boundary)."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Stack:
    """A pending np.stack of equal-shape arrays."""

    __slots__ = ("arrays", "dtype", "shape")

    def __init__(self, arrays: list[np.ndarray], dtype: np.dtype) -> None:
        self.arrays = arrays
        self.dtype = dtype
        self.shape = (len(arrays), *arrays[0].shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


class Prefilled(Stack):
    """A stack whose rows were already written into the batch buffer while the items were made."""

    def __init__(self, region: np.ndarray) -> None:
        self.arrays = None  # type: ignore[assignment]
        self.region = region
        self.dtype = region.dtype
        self.shape = region.shape


def plan(items: list[Any]) -> Any:
    """The collated structure of `items`, with every stack still pending."""
    first = items[0]
    if isinstance(first, dict):
        return {k: plan([it[k] for it in items]) for k in first}
    if isinstance(first, tuple) and not hasattr(first, "_fields"):
        return tuple(plan(list(col)) for col in zip(*items, strict=True))
    if isinstance(first, (np.ndarray, np.generic, int, float, bool)) and not isinstance(first, (str, bytes)):
        arrays = [np.asarray(x) for x in items]
        shape = arrays[0].shape
        if all(a.shape == shape and a.dtype.kind not in "OUSV" for a in arrays):
            return Stack(arrays, np.result_type(*arrays))
    return list(items)


def leaves(tree: Any) -> list[Stack]:
    """Every pending stack of a plan (Prefilled ones already have their memory)."""
    if isinstance(tree, Prefilled):
        return []
    if isinstance(tree, Stack):
        return [tree]
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in leaves(v)]
    if isinstance(tree, (tuple, list)):
        return [s for v in tree for s in leaves(v)]
    return []


def plan_nbytes(tree: Any) -> int:
    """Bytes of batch buffer that the pending stacks of a plan need."""
    return sum(aligned(s.nbytes) for s in leaves(tree))


def materialise(tree: Any, alloc: Alloc | None = None) -> Any:
    """Run the pending stacks, into arrays from `alloc(shape, dtype)` (fresh ones by default)."""
    if isinstance(tree, Prefilled):
        return tree.region
    if isinstance(tree, Stack):
        if hasattr(tree, "fill"):  # gathered straight from storage
            out = np.empty(tree.shape, tree.dtype) if alloc is None else alloc(tree.shape, tree.dtype)
            return tree.fill(out)
        if isinstance(tree.arrays, np.ndarray):  # an already stacked block
            if alloc is None:
                return tree.arrays
            out = alloc(tree.shape, tree.dtype)
            out[...] = tree.arrays
            return out
        out = np.empty(tree.shape, tree.dtype) if alloc is None else alloc(tree.shape, tree.dtype)
        if out.ndim > 1:
            for i, a in enumerate(tree.arrays):
                copy_into(out[i], a)
        else:
            for i, a in enumerate(tree.arrays):
                out[i] = a
        return out
    if isinstance(tree, dict):
        return {k: materialise(v, alloc) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(materialise(v, alloc) for v in tree)
    if isinstance(tree, list):
        return [materialise(v, alloc) for v in tree]
    return tree


def default_collate(items: list[Any]) -> Any:
    """Collate a list of items into a batch.

    Dicts collate per key and tuples per position, recursively; numbers and equal-shape arrays are stacked
    with NumPy; str, bytes, None, ragged arrays and other objects stay a list.

    Args:
        items: the prepared items of one batch.

    Returns:
        The batch.

    Example:
        >>> default_collate([{'x': np.zeros(2)}, {'x': np.ones(2)}])['x'].shape
        (2, 2)
    """
    if not items:
        return []
    return materialise(plan(items))
