"""The brochure's `depot` module: Tank, Comburant, the augmentation ops, and pack_samples (writing what Tank reads
from any samples)."""

from __future__ import annotations

from ._collate import default_collate
from ._comburant import HW2CHW, HWC2CHW, Comburant, Random
from ._constants import CUBIC, GAUSSIAN, HORIZONTAL, LINEAR, NEAREST, POISSON, VERTICAL
from ._ops_colour import Brighten, Contrast, Hue, Saturate, brighten, contrast, saturate
from ._ops_filters import JPEG, Blur, Noise, Whiten
from ._ops_geometry import (
    Crop,
    Flip,
    Pad,
    Resize,
    Rotate,
    Sampling,
    crop,
    flip,
    flip_lr,
    flip_ud,
    rotate,
    sampling,
)
from ._rng import worker_rng
from ._samples import pack_samples
from ._tank import Tank

__all__ = [
    "CUBIC",
    "GAUSSIAN",
    "HORIZONTAL",
    "HW2CHW",
    "HWC2CHW",
    "JPEG",
    "LINEAR",
    "NEAREST",
    "POISSON",
    "VERTICAL",
    "Blur",
    "Brighten",
    "Comburant",
    "Contrast",
    "Crop",
    "Flip",
    "Hue",
    "Noise",
    "Pad",
    "Random",
    "Resize",
    "Rotate",
    "Sampling",
    "Saturate",
    "Tank",
    "Whiten",
    "brighten",
    "contrast",
    "crop",
    "default_collate",
    "flip",
    "flip_lr",
    "flip_ud",
    "pack_samples",
    "rotate",
    "sampling",
    "saturate",
    "worker_rng",
]
