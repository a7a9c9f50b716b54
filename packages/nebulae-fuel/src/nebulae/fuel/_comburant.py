"""Comburant: an ordered chain of augmentation ops with shared randomness over frames (SPEC 2.4)."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

import numpy as np

from ._image import byte2arr
from ._rng import worker_rng


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


# -- tree helpers ---------------------------------------------------------------------------------------


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


def _first_leaf(tree: Any) -> np.ndarray | None:
    while isinstance(tree, list):
        if not tree:
            return None
        tree = tree[0]
    return tree


# -- parameter helpers ----------------------------------------------------------------------------------


def _factor_range(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not 0 <= value[0] <= value[1]:
            raise ValueError(f"{name}: a range must be (lo, hi) with 0 <= lo <= hi (got {value!r})")
        return float(value[0]), float(value[1])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name}: factor must be a number >= 0 or a (lo, hi) range (got {value!r})")
    return max(0.0, 1.0 - value), 1.0 + value


def _interp(value: Any, name: str) -> int:
    from ._constants import Interp

    try:
        return int(Interp(value))
    except ValueError:
        raise ValueError(
            f"{name}: interp must be fuel's NEAREST=10, LINEAR=11 or CUBIC=12 (got {value!r}; "
            "dock's interpolation constants are different)"
        ) from None


def _pil_filter(interp: int) -> Any:
    from PIL import Image

    return {10: Image.Resampling.NEAREST, 11: Image.Resampling.BILINEAR, 12: Image.Resampling.BICUBIC}[interp]


def _per_frame_pil(stack: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
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


def _size(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"{name}: size must be (h, w) with positive ints (got {value!r})")
    return int(value[0]), int(value[1])


def _to_uint8(stack: np.ndarray) -> np.ndarray:
    return stack if stack.dtype == np.uint8 else np.clip(np.rint(stack), 0, 255).astype(np.uint8)


# -- ops ------------------------------------------------------------------------------------------------


class Op:
    """Base of the augmentation ops: `draw` parameters once per call, `apply` them to a (T,H,W,C) stack."""

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return None

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        raise NotImplementedError

    def on_tree(self, tree: Any, rng: Rng) -> Any:
        first = _first_leaf(tree)
        if first is None:
            return tree
        params = self.draw(rng, first.shape)
        return map_frames(tree, lambda stack: self.apply(stack, params))

    def __call__(self, src: Any, rng: Any = None) -> Any:
        return Comburant(self, end=False, rng=rng)(src)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Flip(Op):
    """Mirror: HORIZONTAL (20) reverses rows (upside-down), VERTICAL (21) reverses columns (left-right).

    Example:
        >>> Flip(VERTICAL)(img)  # doctest: +SKIP
    """

    def __init__(self, axial: int) -> None:
        if axial not in (20, 21) or isinstance(axial, bool):
            raise ValueError(f"Flip: 'axial' must be HORIZONTAL (20) or VERTICAL (21) (got {axial!r})")
        self.axial = int(axial)

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
        import math

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
        return _per_frame_pil(part, lambda im: im.resize((w, h), flt))


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
        return _per_frame_pil(stack, lambda im: im.resize((w, h), flt))


class Pad(Op):
    """Zero padding `(top, bottom, left, right)`."""

    def __init__(self, padding: Any) -> None:
        if (
            not isinstance(padding, (tuple, list))
            or len(padding) != 4
            or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)
        ):
            raise ValueError(
                f"Pad: 'padding' must be 4 ints >= 0 (top, bottom, left, right) (got {padding!r})"
            )
        self.padding = tuple(padding)

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        top, bottom, left, right = self.padding
        return np.pad(stack, ((0, 0), (top, bottom), (left, right), (0, 0)))


class Rotate(Op):
    """Rotate counter-clockwise by an angle drawn from [-d, d] (or a (lo, hi) range) about the centre."""

    def __init__(self, degree: Any, intact: bool = False, interp: int = 10) -> None:
        if isinstance(degree, (tuple, list)):
            if len(degree) != 2 or not -360 <= degree[0] <= degree[1] <= 360:
                raise ValueError(
                    f"Rotate: a range must be (lo, hi) with -360 <= lo <= hi <= 360 (got {degree!r})"
                )
            self.degree = (float(degree[0]), float(degree[1]))
        else:
            if isinstance(degree, bool) or not isinstance(degree, (int, float)) or not 0 <= degree <= 360:
                raise ValueError(f"Rotate: 'degree' must be in [0, 360] or a (lo, hi) range (got {degree!r})")
            self.degree = (-float(degree), float(degree))
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
        return _per_frame_pil(
            stack, lambda im: im.rotate(angle, resample=flt, expand=self.intact, fillcolor=0)
        )


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
        return _to_uint8(stack.astype(np.float32) * np.float32(f))


class Contrast(_Factor):
    """Scale around the image's mean luma: `clip(round(m + f * (img - m)))`."""

    def apply(self, stack: np.ndarray, f: Any) -> np.ndarray:
        m = _luma(stack).mean(axis=(1, 2, 3), keepdims=True)
        return _to_uint8(m + np.float32(f) * (stack.astype(np.float32) - m))


class Saturate(_Factor):
    """Blend with per-pixel luma: `clip(round(f * img + (1 - f) * luma))`; gray input is unchanged."""

    def apply(self, stack: np.ndarray, f: Any) -> np.ndarray:
        if stack.shape[-1] < 3:
            return stack
        return _to_uint8(np.float32(f) * stack.astype(np.float32) + np.float32(1 - f) * _luma(stack))


class Hue(Op):
    """Rotate the hue by h * 360 degrees, h drawn from [-x, x] (x <= 0.5) or a range; gray is unchanged."""

    def __init__(self, factor: Any) -> None:
        if isinstance(factor, (tuple, list)):
            if len(factor) != 2 or not -0.5 <= factor[0] <= factor[1] <= 0.5:
                raise ValueError(f"Hue: a range must lie in [-0.5, 0.5] with lo <= hi (got {factor!r})")
            self.factor: Any = (float(factor[0]), float(factor[1]))
            self._range = self.factor
        else:
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 0.5:
                raise ValueError(f"Hue: 'factor' must be in [0, 0.5] or a range (got {factor!r})")
            self.factor = float(factor)
            self._range = (-float(factor), float(factor))

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
            if (
                len(radius) != 2
                or not all(isinstance(v, int) for v in radius)
                or not 1 <= radius[0] <= radius[1]
            ):
                raise ValueError(f"Blur: a range must be (lo, hi) ints with 1 <= lo <= hi (got {radius!r})")
            self.radius: Any = (int(radius[0]), int(radius[1]))
        else:
            if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
                raise ValueError(f"Blur: 'radius' must be an int >= 1 or a range (got {radius!r})")
            self.radius = int(radius)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.py.randint(*self.radius) if isinstance(self.radius, tuple) else self.radius

    def apply(self, stack: np.ndarray, r: Any) -> np.ndarray:
        return _to_uint8(_separable(stack, _gauss_kernel(r)))


class Noise(Op):
    """Additive noise: GAUSSIAN (30) with sigma = theta*255, or POISSON (31) with photon scale 1/theta."""

    def __init__(self, theta: float, distrib: int = 30) -> None:
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta < 0:
            raise ValueError(f"Noise: 'theta' must be a number >= 0 (got {theta!r})")
        if distrib not in (30, 31):
            raise ValueError(f"Noise: 'distrib' must be GAUSSIAN (30) or POISSON (31) (got {distrib!r})")
        self.theta = float(theta)
        self.distrib = int(distrib)

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
            out.append(_to_uint8(x))
        return np.stack(out)


class JPEG(Op):
    """Re-encode with a JPEG quality in [1, 99] (or a range) and decode again."""

    def __init__(self, quality: Any) -> None:
        lo, hi = quality if isinstance(quality, (tuple, list)) else (quality, quality)
        if (
            not all(isinstance(q, int) and not isinstance(q, bool) for q in (lo, hi))
            or not 1 <= lo <= hi <= 99
        ):
            raise ValueError(f"JPEG: 'quality' must be an int in [1, 99] or a range (got {quality!r})")
        self.quality = (lo, hi)

    def draw(self, rng: Rng, shape: tuple[int, ...]) -> Any:
        return rng.py.randint(*self.quality)

    def apply(self, stack: np.ndarray, q: Any) -> np.ndarray:
        import io

        def codec(im: Any) -> Any:
            from PIL import Image

            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=q)
            return Image.open(io.BytesIO(buf.getvalue()))

        return _per_frame_pil(stack, codec)


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


class HWC2CHW(Op):
    """Transpose H x W x C to C x H x W."""

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


class HW2CHW(Op):
    """Turn H x W (or H x W x 1) into 1 x H x W."""

    def apply(self, stack: np.ndarray, params: Any) -> np.ndarray:
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


class Sampling(Op):
    """Keep max(1, T // theta) frames of a T-frame list, frame i drawn from [i*theta, min((i+1)*theta, T) - 1]."""

    def __init__(self, theta: int) -> None:
        if isinstance(theta, bool) or not isinstance(theta, int) or theta < 1:
            raise ValueError(f"Sampling: 'theta' must be an int >= 1 (got {theta!r})")
        self.theta = theta

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


class Random(Op):
    """Apply `op` with probability `p`, or pick exactly one of `ops` with probabilities `p`.

    Example:
        >>> Random(0.5, Flip(VERTICAL))  # doctest: +SKIP
        >>> Random([0.3, 0.7], [Blur(1), JPEG(50)])  # doctest: +SKIP
    """

    def __init__(self, p: Any, op: Any) -> None:
        if isinstance(p, (list, tuple)):
            if not isinstance(op, (list, tuple)) or len(op) != len(p) or not p:
                raise ValueError("Random: give as many ops as probabilities")
            if any(x < 0 for x in p) or abs(sum(p) - 1) > 1e-6:
                raise ValueError(f"Random: probabilities must be >= 0 and sum to 1 (got {list(p)})")
            self.p: Any = [float(x) for x in p]
            self.op: Any = list(op)
        else:
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError(f"Random: 'p' must be in [0, 1] (got {p!r})")
            if not callable(op):
                raise TypeError(f"Random: 'op' must be callable (got {type(op).__name__})")
            self.p, self.op = float(p), op
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
flip, crop, rotate, brighten, contrast, saturate, sampling = (
    Flip,
    Crop,
    Rotate,
    Brighten,
    Contrast,
    Saturate,
    Sampling,
)
