"""A wrong type is a TypeError and a wrong value a ValueError, each naming the argument."""

from __future__ import annotations

import pytest
import torch

from nebulae.astro import dock

WRONG_TYPES = [
    (lambda: dock.Dense("3", 2), "'in_chs' must be an int"),
    (lambda: dock.Dense(3, 2, axis=1.0), "'axis' must be a non-zero int"),
    (lambda: dock.Embed(10, 4.0), "'token_dim' must be an int"),
    (lambda: dock.SubPix(2.0), "'scale' must be an int"),
    (lambda: dock.SurPix(True), "'scale' must be an int"),
    (lambda: dock.StepLR("10", 0.5), "'period' must be a positive number"),
    (lambda: dock.Conv(3, 4, (3.0, 3)), "'kernel' must be a tuple of 1, 2 or 3 ints"),
    (lambda: dock.MaxPool(2), "'kernel' must be a tuple of 1 to 3 ints"),
    (lambda: dock.Pad(1), "'padding' must be a flat tuple"),
    (lambda: dock.Dense(2, 2).lowp("float16"), "lowp\\(\\) takes a floating torch dtype"),
]

WRONG_VALUES = [
    (lambda: dock.Dense(0, 2), "'in_chs' must be an int >= 1"),
    (lambda: dock.SubPix(0), "'scale' must be an int >= 1"),
    (lambda: dock.StepLR(-1, 0.5), "'period' must be a positive number"),
    (lambda: dock.Conv(3, 4, (3, 0)), "'kernel' must be 1 to 3 positive ints"),
    (lambda: dock.MaxPool((2, 2, 2, 2)), "'kernel' must be a tuple of 1 to 3 ints"),
    (lambda: dock.Pad((1, 1, 1)), "'padding' must be a flat tuple"),
    (lambda: dock.Dense(2, 2).lowp(torch.int8), "lowp\\(\\) takes a floating torch dtype"),
]


@pytest.mark.parametrize(
    ("build", "message"),
    WRONG_TYPES,
    ids=[
        "Dense-in_chs",
        "Dense-axis",
        "Embed-token_dim",
        "SubPix-scale",
        "SurPix-scale",
        "StepLR-period",
        "Conv-kernel",
        "MaxPool-kernel",
        "Pad-padding",
        "lowp-dtype",
    ],
)
def test_a_wrong_type_is_a_type_error(build, message):
    with pytest.raises(TypeError, match=message):
        build()


@pytest.mark.parametrize(
    ("build", "message"),
    WRONG_VALUES,
    ids=[
        "Dense-in_chs",
        "SubPix-scale",
        "StepLR-period",
        "Conv-kernel",
        "MaxPool-kernel",
        "Pad-padding",
        "lowp-dtype",
    ],
)
def test_a_wrong_value_is_a_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()
