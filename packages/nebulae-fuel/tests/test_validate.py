"""One validation style across fuel: a wrong type is a TypeError, a wrong value a ValueError, both naming the argument."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nebulae.fuel import (
    JPEG,
    Blur,
    Brighten,
    Crop,
    Flip,
    FuelGenerator,
    Hue,
    Noise,
    Pad,
    Random,
    Resize,
    Rotate,
    Sampling,
    Tank,
    merge,
)
from nebulae.fuel._validate import int_in, number_in, one_of, positive_int, sequence_of

SPEC = {"image": "vuint8", "label": "int64"}


@pytest.fixture
def packed(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    paths = fg.generate(str(tmp_path / "v.hdf5"), 8, 8, encode="PNG", shards=2, nworker=1, verbose=False)
    return tmp_path, [os.path.basename(p) for p in paths]


def test_messages_name_the_argument_the_expectation_and_the_value():
    with pytest.raises(ValueError, match=r"^'batch_size' must be an int >= 1 \(got 0\)$"):
        positive_int("batch_size", 0)
    with pytest.raises(TypeError, match=r"^Sampling: 'theta' must be an int >= 1 \(got '2'\)$"):
        positive_int("theta", "2", owner="Sampling")
    with pytest.raises(ValueError, match=r"^'p' must be a number in \[0, 1\] \(got 2\); a hint$"):
        number_in("p", 2, 0, 1, hint="; a hint")


@pytest.mark.parametrize("flag", [True, False, np.bool_(True)])
def test_bools_are_never_numbers_even_though_bool_subclasses_int(flag):
    with pytest.raises(TypeError):
        int_in("n", flag, 0)
    with pytest.raises(TypeError):
        number_in("x", flag)
    with pytest.raises(TypeError):
        sequence_of("pair", (flag, 2), 2, expected="two ints", ints=True)
    with pytest.raises(ValueError):
        one_of("axial", flag, (0, 1, 20), "an axis")  # True == 1, but a flag is not a choice


def test_numpy_numbers_are_accepted_and_returned_as_python_numbers():
    assert type(int_in("n", np.int64(3), 0)) is int
    assert type(number_in("x", np.float32(0.5), 0, 1)) is float
    assert sequence_of("size", [np.int32(4), 5], 2, 1, expected="(h, w)", ints=True) == (4, 5)


def test_sequences_check_type_then_length_then_bounds_and_order():
    kw = {"expected": "a (lo, hi) range", "ordered": True}
    with pytest.raises(TypeError):
        sequence_of("r", 3, 2, **kw)
    with pytest.raises(ValueError):
        sequence_of("r", (1, 2, 3), 2, **kw)
    with pytest.raises(TypeError):
        sequence_of("r", (1, "2"), 2, **kw)
    with pytest.raises(ValueError):
        sequence_of("r", (2, 1), 2, **kw)
    with pytest.raises(ValueError):
        sequence_of("r", (-1, 1), 2, 0, **kw)
    assert sequence_of("r", [1, 2], 2, 0, 2, **kw) == (1.0, 2.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Sampling("2"), "Sampling: 'theta'"),
        (lambda: Sampling(True), "Sampling: 'theta'"),
        (lambda: Noise("0.1"), "Noise: 'theta'"),
        (lambda: Blur(1.5), "Blur: 'radius'"),
        (lambda: Blur((1, "2")), "Blur: 'radius'"),
        (lambda: JPEG("90"), "JPEG: 'quality'"),
        (lambda: JPEG((50, 90.5)), "JPEG: 'quality'"),
        (lambda: Pad(4), "Pad: 'padding'"),
        (lambda: Pad((1, 2, 3, "4")), "Pad: 'padding'"),
        (lambda: Crop("8"), "Crop: 'size'"),
        (lambda: Resize((8, 8.0)), "Resize: 'size'"),
        (lambda: Rotate("30"), "Rotate: 'degree'"),
        (lambda: Rotate((-10, "10")), "Rotate: 'degree'"),
        (lambda: Hue("0.1"), "Hue: 'factor'"),
        (lambda: Brighten("0.1"), "Brighten: 'factor'"),
        (lambda: Brighten((0.5, None)), "Brighten: 'factor'"),
        (lambda: Random("0.5", Flip(20)), "Random: 'p'"),
        (lambda: Random([0.5, 0.5], Flip(20)), "Random: 'op'"),
    ],
)
def test_ops_refuse_a_wrong_type_with_type_error(make, message):
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Sampling(0), "Sampling: 'theta'"),
        (lambda: Noise(-0.1), "Noise: 'theta'"),
        (lambda: Noise(0.1, distrib="normal"), "Noise: 'distrib'"),
        (lambda: Blur(0), "Blur: 'radius'"),
        (lambda: Blur((3, 1)), "Blur: 'radius'"),
        (lambda: JPEG(100), "JPEG: 'quality'"),
        (lambda: Pad((1, 2, 3)), "Pad: 'padding'"),
        (lambda: Pad((1, 2, 3, -4)), "Pad: 'padding'"),
        (lambda: Crop((8,)), "Crop: 'size'"),
        (lambda: Crop(0), "Crop: 'size'"),
        (lambda: Crop(8, interp="linear"), "Crop: 'interp'"),
        (lambda: Rotate(400), "Rotate: 'degree'"),
        (lambda: Hue(0.6), "Hue: 'factor'"),
        (lambda: Brighten(-1), "Brighten: 'factor'"),
        (lambda: Brighten((0.5, 0.2)), "Brighten: 'factor'"),
        (lambda: Flip("x"), "Flip: 'axial'"),
        (lambda: Random(1.5, Flip(20)), "Random: 'p'"),
        (lambda: Random([0.5, 0.5], [Flip(20)]), "as many ops"),
    ],
)
def test_ops_refuse_a_wrong_value_with_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": "4"}, TypeError, "'batch_size' must be an int >= 1"),
        ({"batch_size": True}, TypeError, "'batch_size'"),
        ({"batch_size": 0}, ValueError, "'batch_size'"),
        ({"seed": 1.5}, TypeError, "'seed' must be an int >= 0"),
        ({"nworker": "2"}, TypeError, "'nworker' must be an int >= 0"),
        ({"nworker": -1}, ValueError, "'nworker'"),
    ],
)
def test_tank_refuses_non_ints_with_type_error_and_bad_ints_with_value_error(packed, kwargs, error, message):
    d, names = packed
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(error, match=message):
        Tank(str(d / names[0]), SPEC, args.pop("batch_size"), verbose=False, **args)


def test_tank_seek_and_set_distributed_refuse_non_ints(packed):
    d, names = packed
    with Tank(str(d / names[0]), SPEC, 2, nworker=0, verbose=False) as tank:
        with pytest.raises(TypeError, match="'epoch'"):
            tank.seek("1", 0)
        with pytest.raises(TypeError, match="'nworld'"):
            tank.set_distributed(0, 2.0)


def test_generator_refuses_a_non_str_delimiter_and_a_non_int_nworker(photo_dir, tmp_path):
    with pytest.raises(TypeError, match="'delimiter' must be a one-character str"):
        FuelGenerator(str(photo_dir), "labels.csv", ["int64"], delimiter=1)
    with pytest.raises(ValueError, match="'delimiter' must be a one-character str"):
        FuelGenerator(str(photo_dir), "labels.csv", ["int64"], delimiter=";;")
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(TypeError, match="'nworker' must be None or an int >= 1"):
        fg.generate(str(tmp_path / "g.hdf5"), 8, 8, nworker="2", verbose=False)
    with pytest.raises(ValueError, match="'nworker' must be None or an int >= 1"):
        fg.generate(str(tmp_path / "g.hdf5"), 8, 8, nworker=0, verbose=False)
    assert not os.path.exists(tmp_path / "g.hdf5")


def test_merge_refuses_a_non_list_src_and_a_non_str_dtype_with_type_error(packed):
    d, names = packed
    with pytest.raises(TypeError, match="'src' must be a non-empty list"):
        merge(str(d), names[0], "all.hdf5", {"label": "int64"})
    with pytest.raises(ValueError, match="'src' must be a non-empty list"):
        merge(str(d), [], "all.hdf5", {"label": "int64"})
    with pytest.raises(TypeError, match=r"dtype\['label'\]"):
        merge(str(d), names, "all.hdf5", {"label": 64})
    with pytest.raises(ValueError, match=r"dtype\['label'\]"):
        merge(str(d), names, "all.hdf5", {"label": "int65"})
    assert not os.path.exists(d / "all.hdf5")
