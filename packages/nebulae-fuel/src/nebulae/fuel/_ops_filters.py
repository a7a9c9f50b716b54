"""Filter ops of Comburant: Blur, Noise, JPEG re-encoding and Whiten (mean/std normalisation)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ._comburant import Op, Rng
from ._frames import per_frame_pil, to_uint8
from ._validate import int_in, number_in, one_of, sequence_of


def _gauss_kernel(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = np.arange(size, dtype=np.float32) - radius
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _separable(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    r = len(kernel) // 2
    x = stack.astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(x, pad, mode="reflect" if x.shape[axis] > r else "edge")
        n = x.shape[axis]
        acc = np.zeros_like(x)
        for t, w in enumerate(kernel):
            acc += w * np.take(padded, np.arange(t, t + n), axis=axis)
        x = acc
    return x


class Blur(Op):
    """Gaussian blur with a (2r+1)-tap kernel; `radius` an int >= 1 or a (lo, hi) range of ints."""

    def __init__(self, radius: Any) -> None:
        if isinstance(radius, (tuple, list)):
            expected = "a (lo, hi) range of ints with 1 <= lo <= hi"
            self.radius: Any = sequence_of(
                "radius", radius, 2, 1, expected=expected, ints=True, ordered=True, owner="Blur"
            )
        else:
            self.radius = int_in("radius", radius, 1, expected="an int >= 1 or a range", owner="Blur")

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.py.randint(*self.radius) if isinstance(self.radius, tuple) else self.radius

    def apply(self, stack: np.ndarray, r: Any) -> np.ndarray:
        return to_uint8(_separable(stack, _gauss_kernel(r)))


class Noise(Op):
    """Additive noise: GAUSSIAN (30) with sigma = theta*255, or POISSON (31) with photon scale 1/theta."""

    def __init__(self, theta: float, distrib: int = 30) -> None:
        self.theta = number_in("theta", theta, 0, owner="Noise")
        self.distrib = int(one_of("distrib", distrib, (30, 31), "GAUSSIAN (30) or POISSON (31)", "Noise"))

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return int(rng.gen.integers(2**63))

    def apply(self, stack: np.ndarray, seed: Any) -> np.ndarray:
        if self.theta == 0:
            return stack
        out = []
        for frame in stack:  # the same field on every frame of the call
            gen = np.random.default_rng(seed)
            x = frame.astype(np.float32)
            if self.distrib == 30:
                x += gen.normal(0.0, self.theta * 255.0, size=x.shape).astype(np.float32)
            else:
                scale = 1.0 / self.theta
                x = gen.poisson(x * scale).astype(np.float32) / np.float32(scale)
            out.append(to_uint8(x))
        return np.stack(out)


class JPEG(Op):
    """Re-encode with a JPEG quality in [1, 99] (or a range) and decode again."""

    def __init__(self, quality: Any) -> None:
        expected = "an int in [1, 99] or a range"
        if isinstance(quality, (tuple, list)):
            lo, hi = sequence_of(
                "quality", quality, 2, 1, 99, expected=expected, ints=True, ordered=True, owner="JPEG"
            )
        else:
            lo = hi = int_in("quality", quality, 1, 99, expected=expected, owner="JPEG")
        self.quality = (lo, hi)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.py.randint(*self.quality)

    def apply(self, stack: np.ndarray, q: Any) -> np.ndarray:
        def codec(im: Any) -> Any:
            from PIL import Image

            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=q)
            return Image.open(io.BytesIO(buf.getvalue()))

        return per_frame_pil(stack, codec)


class Whiten(Op):
    """`(x - mean) / std` on CHW (or HWC) float input; uint8 input is first scaled to [0, 1]."""

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if np.any(self.std == 0):
            raise ValueError(f"Whiten: 'std' must be non-zero (got {std!r})")

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        x = (
            stack.astype(np.float32) / 255.0
            if stack.dtype == np.uint8
            else stack.astype(np.float32, copy=False)
        )
        mean, std = self.mean, self.std
        if mean.ndim == 1:
            # per channel: CHW stacks are (T, C, H, W), HWC stacks (T, H, W, C)
            chw = x.shape[1] == mean.shape[0] and x.shape[-1] != mean.shape[0]
            mean = mean[:, None, None] if chw else mean
            std = std[:, None, None] if chw else std
        return (x - mean) / std
