"""Image encoding for the generator and decoding for Tank (Pillow, optionally simplejpeg)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

_JPEG_MAGIC = b"\xff\xd8"
_simplejpeg: Any = None


def _fast_jpeg() -> Any:
    """simplejpeg when installed (the `fast` extra), else False; resolved once per process."""
    global _simplejpeg
    if _simplejpeg is None:
        try:
            import simplejpeg

            _simplejpeg = simplejpeg
        except ImportError:
            _simplejpeg = False
    return _simplejpeg


def byte2arr(buf: Any, as_np: bool = True) -> Any:
    """Decode an encoded image buffer.

    Args:
        buf: the encoded file bytes (bytes or a 1-D uint8 array), JPEG, PNG or any format Pillow reads.
        as_np: return an ndarray (True) or a PIL image (False).

    Returns:
        RGB uint8 `H x W x 3`, gray images as `H x W x 1`; or the PIL image.

    Raises:
        ValueError: the buffer is not a decodable image.

    Example:
        >>> img = byte2arr(tank_data['image'][0])  # doctest: +SKIP
    """
    if isinstance(buf, np.ndarray):
        # a contiguous uint8 row (what h5py and Tank hand out) is read in place; anything else as its bytes
        plain = buf.dtype == np.uint8 and buf.ndim == 1 and buf.flags.c_contiguous
        data: Any = buf if plain else buf.tobytes()
    else:
        data = bytes(buf)
    if as_np and bytes(data[:2]) == _JPEG_MAGIC:
        sj = _fast_jpeg()
        if sj:
            try:
                header = sj.decode_jpeg_header(data)
                gray = header[2] == "Gray"
                return sj.decode_jpeg(data, colorspace="GRAY" if gray else "RGB")
            except ValueError:
                pass  # unusual JPEG variants: let Pillow try
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"buffer of {len(data)} bytes is not a decodable image ({exc})") from None
    if not as_np:
        return img
    if img.mode in ("L", "LA", "1", "I;16", "I", "F"):
        return np.asarray(img.convert("L"))[:, :, None]
    return np.asarray(img.convert("RGB"))


@dataclass(frozen=True)
class EncodeSpec:
    """How the generator processes each image."""

    encode: str  # 'JPEG' | 'PNG' | 'RAW'
    height: int
    width: int
    channel: int
    keep_exif: bool
    jpeg_quality: int = 95
    png_level: int = 1
    bilinear: bool = False
    max_pixels: int | None = None  # None: no cap of fuel's own (Pillow's limit still applies)
    # a JPEG source that already is what would be stored is kept byte for byte (see `_as_is`); off for presets that
    # ask for a particular JPEG quality
    passthrough: bool = True


class ImageError(ValueError):
    """A source image could not be read or processed; `reason` says why in one word (for the skip report)."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


_JPEG_END = b"\xff\xd9"


def _as_is(img: Any, path: str, spec: EncodeSpec) -> np.ndarray | None:
    """The source file's bytes when they can be stored unchanged, else None.

    That is a JPEG target and a JPEG source of the target size (or any size when sizes are kept) and channel count
    whose EXIF block, if any, is to be kept. Decoding and encoding it again would only lose quality and time. The
    file must end with the JPEG end marker: a truncated file goes through the decoder, which reports it.
    """
    if not (spec.passthrough and spec.encode == "JPEG" and img.format == "JPEG" and isinstance(path, str)):
        return None
    if spec.height and spec.width and img.size != (spec.width, spec.height):
        return None
    if img.mode != ("RGB" if spec.channel == 3 else "L") or (img.info.get("exif") and not spec.keep_exif):
        return None
    with open(path, "rb") as fh:
        data = fh.read()
    if data.rstrip(b"\x00\r\n ")[-2:] != _JPEG_END:
        return None
    return np.frombuffer(data, dtype=np.uint8).copy()


def load_pixels(path: str, spec: EncodeSpec, as_is: bool = False) -> Any:
    """Open, convert and resize one image; return (PIL image, exif bytes or None).

    With `as_is`, a source that can be stored unchanged comes back as (None, its bytes) instead.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(path, str) and os.path.getsize(path) == 0:
            raise ImageError(f"{path!r} is empty (0 bytes)", "empty")
    except FileNotFoundError:
        raise ImageError(f"{path!r} does not exist", "missing") from None
    try:
        img: Any = Image.open(path)  # reads the header only: the size is known before any pixel is decoded
        if spec.max_pixels is not None and img.size[0] * img.size[1] > spec.max_pixels:
            w, h = img.size
            img.close()
            raise ImageError(
                f"{path!r} is {w}x{h} = {w * h} pixels, more than max_pixels={spec.max_pixels} (a decompression "
                "bomb?); pass a larger max_pixels to generate() if the image is genuine",
                "too large",
            )
        if as_is:
            stored = _as_is(img, path, spec)
            if stored is not None:
                img.close()
                return None, stored
        if spec.encode == "JPEG" and img.format == "JPEG" and spec.height and spec.width:
            # draft() lets libjpeg downscale by 2^k in the DCT while keeping at least the target size; the LANCZOS
            # resize then starts from fewer pixels (visually the same result, much less work)
            img.draft(img.mode, (spec.width, spec.height))
        exif = img.info.get("exif")
        img = img.convert("RGB" if spec.channel == 3 else "L")
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit (its warning becomes an error under `-W error`); fuel never changes that global
        raise ImageError(
            f"{path!r} is larger than Pillow's limit PIL.Image.MAX_IMAGE_PIXELS ({exc}); raise that limit in your "
            "program if the image is genuine",
            "too large",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path!r} is not a readable image ({exc})") from None
    if spec.height and spec.width and img.size != (spec.width, spec.height):
        resample = Image.Resampling.BILINEAR if spec.bilinear else Image.Resampling.LANCZOS
        img = img.resize((spec.width, spec.height), resample)
    return img, exif


def encode_image(path: str, spec: EncodeSpec) -> np.ndarray:
    """Process one source image into the stored element (encoded bytes, or HxWxC pixels for RAW)."""
    img, exif = load_pixels(path, spec, as_is=True)
    if img is None:
        return exif  # the source's own bytes
    if spec.encode == "RAW":
        arr = np.asarray(img)
        return arr[:, :, None] if arr.ndim == 2 else arr
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if spec.keep_exif and exif:
        kwargs["exif"] = exif
    if spec.encode == "JPEG":
        img.save(out, "JPEG", quality=spec.jpeg_quality, **kwargs)
    else:
        img.save(out, "PNG", compress_level=spec.png_level, **kwargs)
    return np.frombuffer(out.getbuffer(), dtype=np.uint8).copy()
