"""FuelGenerator's settings: their names, defaults, the check of each value, and the encoding they ask for."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._constants import Quality
from ._dtype import check_dtypes
from ._image import EncodeSpec
from ._validate import instance_of, int_in

DEFAULTS: dict[str, Any] = {
    "file_dir": None,
    "file_list": None,
    "dtype": None,
    "is_seq": False,
    "delimiter": None,
    "quotechar": '"',
    "dst_path": None,
    "height": 0,
    "width": 0,
    "channel": 3,
    "encode": "JPEG",
    "shards": 1,
    "keep_exif": True,
    "max_pixels": None,
    "on_error": "raise",
}
ON_ERROR = ("raise", "skip")
_ENCODES = {"JPEG": "JPEG", "JPG": "JPEG", "PNG": "PNG", "RAW": "RAW"}


def check_setting(key: str, value: Any) -> Any:
    """Validate one stored setting; return its normalised value."""
    if key == "dtype":
        return check_dtypes(value) if value is not None else None
    if key in ("file_dir", "file_list", "dst_path"):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{key!r} must be a path str (got {type(value).__name__})")
        if key == "file_dir" and value is not None and not os.path.isdir(value):
            raise FileNotFoundError(f"'file_dir' {os.fspath(value)!r} is not an existing directory")
        return os.fspath(value) if value is not None else None
    if key in ("is_seq", "keep_exif"):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{key!r} must be a bool (got {value!r})")
        return bool(value)
    if key in ("delimiter", "quotechar"):
        if key == "delimiter" and value is None:
            return None
        instance_of(key, value, str, "a one-character str")
        if len(value) != 1:
            raise ValueError(f"{key!r} must be a one-character str (got {value!r})")
        return value
    if key in ("height", "width", "shards", "channel"):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{key!r} must be an int (got {value!r})")
        value = int(value)
        if key in ("height", "width") and value < 0:
            raise ValueError(f"{key!r} must be >= 0 (got {value}); 0 keeps each image's own size")
        if key == "shards" and value < 1:
            raise ValueError(f"'shards' must be >= 1 (got {value})")
        if key == "channel" and value not in (1, 3):
            raise ValueError(f"'channel' must be 1 or 3 (got {value}); RGBA is not supported")
        return value
    if key == "max_pixels":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"'max_pixels' must be an int or None (got {value!r})")
        if value < 1:
            raise ValueError(
                f"'max_pixels' must be >= 1 (got {value}); None uses Pillow's limit PIL.Image.MAX_IMAGE_PIXELS"
            )
        return int(value)
    if key == "on_error":
        if value not in ON_ERROR:
            raise ValueError(
                f"'on_error' must be 'raise' (stop at the first bad file) or 'skip' (leave bad files out and list "
                f"them in a report) (got {value!r})"
            )
        return value
    if key == "encode":
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value.upper() not in _ENCODES:
            raise ValueError(f"'encode' must be one of 'JPEG', 'PNG', 'RAW' or None (got {value!r})")
        return _ENCODES[value.upper()]
    raise KeyError(f"unknown FuelGenerator setting {key!r}; valid keys: {', '.join(DEFAULTS)}")


def encode_spec(s: dict[str, Any], quality: Any) -> tuple[EncodeSpec | None, str | None]:
    enc = s["encode"]
    jpeg_q, png_level, bilinear = 95, 1, False
    if quality is not None:
        try:
            q = Quality(quality)
        except ValueError:
            raise ValueError(
                f"'quality' must be one of NA=0, FAST=1, GOOD=2, OPTIM=3, LOSSLESS=4 (got {quality!r})"
            ) from None
        enc = {Quality.NA: None, Quality.FAST: "JPEG", Quality.GOOD: "JPEG"}.get(q, "PNG")
        jpeg_q, bilinear = (75, True) if q == Quality.FAST else (95, False)
        png_level = 0 if q == Quality.LOSSLESS else 1
    h, w = s["height"], s["width"]
    if (h == 0) != (w == 0):
        raise ValueError(f"'height' and 'width' must both be > 0, or both 0 to keep sizes (got {h}, {w})")
    if enc == "RAW" and not (h and w):
        raise ValueError("encode='RAW' needs height > 0 and width > 0 (all rows share one array shape)")
    if enc is None:
        return None, None
    max_pixels = s["max_pixels"]
    if max_pixels is None:
        from PIL import Image

        max_pixels = Image.MAX_IMAGE_PIXELS  # read, never set: it is process-wide
    # FAST asks for quality 75 (smaller files): its JPEGs are always encoded; otherwise a source that already is
    # the target JPEG is stored as it is
    passthrough = quality is None or Quality(quality) != Quality.FAST
    spec = EncodeSpec(
        enc, h, w, s["channel"], s["keep_exif"], jpeg_q, png_level, bilinear, max_pixels, passthrough
    )
    return spec, enc


def check_nworker(nworker: Any) -> int:
    if nworker is None:
        return os.cpu_count() or 1
    return int_in("nworker", nworker, 1, expected="None or an int >= 1")
