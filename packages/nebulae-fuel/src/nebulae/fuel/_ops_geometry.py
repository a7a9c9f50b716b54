"""Geometry ops of Comburant: Flip, Crop, Resize, Pad, Rotate and frame Sampling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._comburant import Op, Rng
from ._constants import Interp
from ._frames import per_frame_pil
from ._validate import is_int, number_in, one_of, positive_int, sequence_of

_INTERPS = tuple(Interp)


def _interp(value: Any, owner: str) -> int:
    return int(
        one_of(
            "interp",
            value,
            _INTERPS,
            "fuel's NEAREST=10, LINEAR=11 or CUBIC=12",
            owner,
            hint="; dock's interpolation constants are different",
        )
    )


def _pil_filter(interp: int) -> Any:
    from PIL import Image

    return {10: Image.Resampling.NEAREST, 11: Image.Resampling.BILINEAR, 12: Image.Resampling.BICUBIC}[interp]


def _size(value: Any, owner: str) -> tuple[int, int]:
    if is_int(value):
        value = (value, value)
    h, w = sequence_of("size", value, 2, 1, expected="(h, w) with positive ints", ints=True, owner=owner)
    return h, w


class Flip(Op):
    """Mirror: HORIZONTAL (20) reverses rows (upside-down), VERTICAL (21) reverses columns (left-right).

    Example:
        >>> Flip(VERTICAL)(img)  # doctest: +SKIP
    """

    def __init__(self, axial: int) -> None:
        self.axial = int(one_of("axial", axial, (20, 21), "HORIZONTAL (20) or VERTICAL (21)", "Flip"))

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        return stack[:, ::-1] if self.axial == 20 else stack[:, :, ::-1]


def flip_ud() -> Flip:
    """Upside-down flip (rows reversed), i.e. Flip(HORIZONTAL)."""
    return Flip(20)


def flip_lr() -> Flip:
    """Left-right flip (columns reversed), i.e. Flip(VERTICAL)."""
    return Flip(21)


class Crop(Op):
    """Random (or central) crop of `size=(h, w)`; with area/aspect ranges, a random-resized crop.

    Example:
        >>> Crop((224, 224), area_ratio=(0.5, 1), aspect_ratio=(3 / 4, 4 / 3))  # doctest: +SKIP
    """

    def __init__(
        self,
        size: Any,
        area_ratio: tuple[float, float] = (1, 1),
        aspect_ratio: tuple[float, float] = (1, 1),
        central: bool = False,
        interp: int = 11,
    ) -> None:
        self.size = _size(size, "Crop")
        lo, hi = area_ratio
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"Crop: 'area_ratio' must satisfy 0 < lo <= hi <= 1 (got {area_ratio!r})")
        alo, ahi = aspect_ratio
        if not 0 < alo <= ahi:
            raise ValueError(f"Crop: 'aspect_ratio' must satisfy 0 < lo <= hi (got {aspect_ratio!r})")
        self.area_ratio = (float(lo), float(hi))
        self.aspect_ratio = (float(alo), float(ahi))
        self.central = bool(central)
        self.interp = _interp(interp, "Crop")

    @property
    def _plain(self) -> bool:
        return self.area_ratio == (1.0, 1.0) and self.aspect_ratio == (1.0, 1.0)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        H, W = shape[0], shape[1]
        h, w = self.size
        if self._plain:
            ph, pw = max(h - H, 0), max(w - W, 0)
            HH, WW = H + ph, W + pw
            if self.central:
                top, left = (HH - h) // 2, (WW - w) // 2
            else:
                top, left = rng.py.randint(0, HH - h), rng.py.randint(0, WW - w)
            return ("plain", ph, pw, top, left, h, w)
        for _ in range(10):
            s = rng.uniform(*self.area_ratio)
            r = rng.uniform(*self.aspect_ratio)
            cw = round(math.sqrt(s * H * W * r))
            ch = round(math.sqrt(s * H * W / r))
            if 0 < cw <= W and 0 < ch <= H:
                if self.central:
                    top, left = (H - ch) // 2, (W - cw) // 2
                else:
                    top, left = rng.py.randint(0, H - ch), rng.py.randint(0, W - cw)
                return ("resized", top, left, ch, cw)
        aspect = min(max(W / H, self.aspect_ratio[0]), self.aspect_ratio[1])
        if aspect < W / H:
            ch, cw = H, max(1, round(H * aspect))
        else:
            ch, cw = max(1, round(W / aspect)), W
        return ("resized", (H - ch) // 2, (W - cw) // 2, ch, cw)

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        if params[0] == "plain":
            _, ph, pw, top, left, h, w = params
            if ph or pw:
                stack = np.pad(stack, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
            return stack[:, top : top + h, left : left + w]
        _, top, left, ch, cw = params
        part = stack[:, top : top + ch, left : left + cw]
        h, w = self.size
        if (ch, cw) == (h, w):
            return part
        flt = _pil_filter(self.interp)
        return per_frame_pil(part, lambda im: im.resize((w, h), flt))


class Resize(Op):
    """Resize to `size=(h, w)`."""

    def __init__(self, size: Any, interp: int = 11) -> None:
        self.size = _size(size, "Resize")
        self.interp = _interp(interp, "Resize")

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        h, w = self.size
        if stack.shape[1:3] == (h, w):
            return stack
        flt = _pil_filter(self.interp)
        return per_frame_pil(stack, lambda im: im.resize((w, h), flt))


class Pad(Op):
    """Zero padding `(top, bottom, left, right)`."""

    def __init__(self, padding: Any) -> None:
        expected = "4 ints >= 0 (top, bottom, left, right)"
        self.padding = sequence_of("padding", padding, 4, 0, expected=expected, ints=True, owner="Pad")

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        top, bottom, left, right = self.padding
        return np.pad(stack, ((0, 0), (top, bottom), (left, right), (0, 0)))


class Rotate(Op):
    """Rotate counter-clockwise by an angle drawn from [-d, d] (or a (lo, hi) range) about the centre."""

    def __init__(self, degree: Any, intact: bool = False, interp: int = 10) -> None:
        if isinstance(degree, (tuple, list)):
            expected = "a (lo, hi) range with -360 <= lo <= hi <= 360"
            self.degree = sequence_of(
                "degree", degree, 2, -360, 360, expected=expected, ordered=True, owner="Rotate"
            )
        else:
            d = number_in(
                "degree", degree, 0, 360, expected="in [0, 360] or a (lo, hi) range", owner="Rotate"
            )
            self.degree = (-d, d)
        self.intact = bool(intact)
        self.interp = _interp(interp, "Rotate")

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.uniform(*self.degree)

    def apply(self, stack: np.ndarray, angle: Any) -> np.ndarray:
        if angle == 0:
            return stack
        flt = _pil_filter(self.interp)
        if flt not in (0, 2, 3):
            flt = 2
        return per_frame_pil(
            stack, lambda im: im.rotate(angle, resample=flt, expand=self.intact, fillcolor=0)
        )


class Sampling(Op):
    """Keep max(1, T // theta) frames of a T-frame list, frame i drawn from [i*theta, min((i+1)*theta, T) - 1]."""

    def __init__(self, theta: int) -> None:
        self.theta = positive_int("theta", theta, owner="Sampling")

    def on_tree(self, tree: Any, rng: Rng) -> Any:
        if not isinstance(tree, list):
            raise TypeError(f"Sampling works on a list of frames (got {type(tree).__name__})")
        nested = bool(tree) and isinstance(tree[0], list)
        seqs = tree if nested else [tree]
        t = len(seqs[0])
        n = max(1, t // self.theta)
        picks = [rng.py.randint(i * self.theta, min((i + 1) * self.theta, t) - 1) for i in range(n)]
        if nested:
            return [[seq[min(p, len(seq) - 1)] for p in picks] for seq in seqs]
        return [tree[p] for p in picks]


# lowercase names of the brochure
flip, crop, rotate, sampling = Flip, Crop, Rotate, Sampling
