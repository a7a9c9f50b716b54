"""Colour ops of Comburant: Brighten, Contrast, Saturate and Hue."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._comburant import Op, Rng
from ._frames import to_uint8
from ._validate import number_in, sequence_of


def _factor_range(value: Any, owner: str) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        expected = "a (lo, hi) range with 0 <= lo <= hi"
        lo, hi = sequence_of("factor", value, 2, 0, expected=expected, ordered=True, owner=owner)
        return lo, hi
    x = number_in("factor", value, 0, expected="a number >= 0 or a (lo, hi) range", owner=owner)
    return max(0.0, 1.0 - x), 1.0 + x


class _Factor(Op):
    def __init__(self, factor: Any) -> None:
        self.factor = factor
        self._range = _factor_range(factor, type(self).__name__)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.uniform(*self._range)


def _luma(stack: np.ndarray) -> np.ndarray:
    if stack.shape[-1] < 3:
        return stack[..., :1].astype(np.float32)
    w = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    return (stack[..., :3].astype(np.float32) @ w)[..., None]


class Brighten(_Factor):
    """Multiply by a factor drawn from [1-x, 1+x] (or a range): `clip(round(img * f))`."""

    def apply(self, stack: np.ndarray, f: Any) -> np.ndarray:
        return to_uint8(stack.astype(np.float32) * np.float32(f))


class Contrast(_Factor):
    """Scale around the image's mean luma: `clip(round(m + f * (img - m)))`."""

    def apply(self, stack: np.ndarray, f: Any) -> np.ndarray:
        m = _luma(stack).mean(axis=(1, 2, 3), keepdims=True)
        return to_uint8(m + np.float32(f) * (stack.astype(np.float32) - m))


class Saturate(_Factor):
    """Blend with per-pixel luma: `clip(round(f * img + (1 - f) * luma))`; gray input is unchanged."""

    def apply(self, stack: np.ndarray, f: Any) -> np.ndarray:
        if stack.shape[-1] < 3:
            return stack
        return to_uint8(np.float32(f) * stack.astype(np.float32) + np.float32(1 - f) * _luma(stack))


class Hue(Op):
    """Rotate the hue by h * 360 degrees, h drawn from [-x, x] (x <= 0.5) or a range; gray is unchanged."""

    def __init__(self, factor: Any) -> None:
        if isinstance(factor, (tuple, list)):
            expected = "a range within [-0.5, 0.5] with lo <= hi"
            self.factor: Any = sequence_of(
                "factor", factor, 2, -0.5, 0.5, expected=expected, ordered=True, owner="Hue"
            )
            self._range = self.factor
        else:
            self.factor = number_in("factor", factor, 0, 0.5, expected="in [0, 0.5] or a range", owner="Hue")
            self._range = (-self.factor, self.factor)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.uniform(*self._range)

    def apply(self, stack: np.ndarray, h: Any) -> np.ndarray:
        if stack.shape[-1] != 3 or h == 0:
            return stack
        from PIL import Image

        shift = round(h * 256) % 256
        out = []
        for frame in stack:
            hsv = np.array(Image.fromarray(np.ascontiguousarray(frame)).convert("HSV"))
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + shift) % 256
            out.append(np.asarray(Image.fromarray(hsv, "HSV").convert("RGB")))
        return np.stack(out)


# lowercase names of the brochure
brighten, contrast, saturate = Brighten, Contrast, Saturate
