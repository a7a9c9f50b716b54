"""Image helpers that need Pillow or matplotlib, imported only when called."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import require

__all__ = ["byte2arr", "join_imgs", "plot_in_one", "rgb2y"]


def byte2arr(buf: Any, as_np: bool = True) -> Any:
    """Decode an encoded image buffer (JPEG/PNG bytes or a 1-D uint8 array).

    Returns:
        RGB uint8 ``H×W×3`` (gray as ``H×W×1``), or a PIL image when ``as_np=False``.

    Raises:
        ValueError: the buffer is not a decodable image.
    """
    image_mod = require("PIL.Image", "image", "byte2arr")
    data = buf.tobytes() if isinstance(buf, np.ndarray) else bytes(buf)
    try:
        image = image_mod.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises several unrelated types for corrupt data
        raise ValueError(f"byte2arr: the {len(data)}-byte buffer is not a decodable image ({exc})") from None
    if not as_np:
        return image
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode in ("1", "I", "I;16", "F", "LA") else "RGB")
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def rgb2y(pil_img: Any, as_np: bool = True) -> Any:
    """Return the luma (Y of YCbCr) channel of a PIL image, as uint8 ``H×W`` or a PIL image."""
    require("PIL.Image", "image", "rgb2y")
    luma = pil_img.convert("YCbCr").getchannel("Y")
    return np.asarray(luma) if as_np else luma


def join_imgs(imgs: Any, nrow: int, ncol: int) -> np.ndarray:
    """Tile an ``N×H×W×C`` batch into one grid image with black margins.

    Margins are ``max(1, H//20)`` between rows and ``max(1, W//20)`` between columns.

    Raises:
        ValueError: ``N != nrow·ncol`` or ``N < 2``, or the batch is not 4-D.
    """
    batch = np.asarray(imgs)
    if batch.ndim != 4:
        raise ValueError(f"'imgs' must be N×H×W×C (got shape {batch.shape})")
    n, h, w, c = batch.shape
    if n < 2 or n != nrow * ncol:
        raise ValueError(f"join_imgs needs N == nrow·ncol > 1 (got N={n}, nrow={nrow}, ncol={ncol})")
    mh, mw = max(1, h // 20), max(1, w // 20)
    grid = np.zeros((nrow * h + (nrow - 1) * mh, ncol * w + (ncol - 1) * mw, c), dtype=batch.dtype)
    for k in range(n):
        r, q = divmod(k, ncol)
        grid[r * (h + mh) : r * (h + mh) + h, q * (w + mw) : q * (w + mw) + w] = batch[k]
    return grid


def plot_in_one(crv_names: Sequence[str], crv_files: Sequence[str], dst_path: str | os.PathLike[str]) -> str:
    """Plot >= 2 headerless two-column CSV curves (x, y) into one image with a legend.

    The image is written atomically; the path is returned.
    """
    if len(crv_names) != len(crv_files) or len(crv_files) < 2:
        raise ValueError(
            f"plot_in_one needs >= 2 curves and one name per file (got {len(crv_names)} names, "
            f"{len(crv_files)} files)"
        )
    matplotlib = require("matplotlib", "plot", "plot_in_one")
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    for name, path in zip(crv_names, crv_files, strict=True):
        data = np.loadtxt(path, delimiter=",", ndmin=2)
        if data.shape[1] != 2:
            raise ValueError(f"{path}: expected two columns (x, y), got {data.shape[1]}")
        axes.plot(data[:, 0], data[:, 1], label=name)
    axes.legend()
    axes.grid(alpha=0.3)
    target = os.fspath(dst_path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=os.path.splitext(target)[1].lstrip(".") or "png")
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target
