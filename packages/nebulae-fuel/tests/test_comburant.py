"""Comburant and its ops (SPEC 2.4): semantics, shared randomness, reproducibility, validation."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

import nebulae.fuel as fuel
from nebulae.fuel import (
    HORIZONTAL,
    HW2CHW,
    HWC2CHW,
    JPEG,
    VERTICAL,
    Blur,
    Brighten,
    Comburant,
    Contrast,
    Crop,
    Flip,
    Hue,
    Noise,
    Pad,
    Random,
    Resize,
    Rotate,
    Sampling,
    Saturate,
    Whiten,
    depot,
)


@pytest.fixture
def img():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def run(op, src, seed=0, end=False):
    return Comburant(op, end=end, rng=random.Random(seed))(src)


def test_lowercase_brochure_names_are_the_same_classes():
    assert (
        depot.flip,
        depot.crop,
        depot.rotate,
        depot.brighten,
        depot.contrast,
        depot.saturate,
        depot.sampling,
    ) == (Flip, Crop, Rotate, Brighten, Contrast, Saturate, Sampling)


def test_flip_names_follow_the_original(img):
    np.testing.assert_array_equal(run(Flip(HORIZONTAL), img), img[::-1])
    np.testing.assert_array_equal(run(Flip(VERTICAL), img), img[:, ::-1])
    np.testing.assert_array_equal(run(fuel.flip_lr(), img), img[:, ::-1])
    with pytest.raises(ValueError, match="'axial'"):
        Flip(1)


def test_plain_crop_pads_small_images_and_cuts_the_size(img):
    out = run(Crop((24, 10)), img)
    assert out.shape == (24, 10, 3)
    np.testing.assert_array_equal(run(Crop((10, 10), central=True), img), img[5:15, 10:20])


def test_random_resized_crop_returns_the_size(img):
    out = run(Crop((8, 8), area_ratio=(0.3, 0.6), aspect_ratio=(0.5, 2)), img)
    assert out.shape == (8, 8, 3)
    with pytest.raises(ValueError, match="area_ratio"):
        Crop((8, 8), area_ratio=(0, 1))
    with pytest.raises(ValueError, match="interp"):
        Crop((8, 8), interp=1)  # dock's LINEAR is not fuel's


def test_rotate_keeps_size_or_grows_canvas(img):
    assert run(Rotate(30), img).shape == img.shape
    grown = run(Rotate((45, 45), intact=True), img)
    assert grown.shape[0] > 20 and grown.shape[1] > 30
    np.testing.assert_array_equal(run(Rotate((90, 90), intact=True), img), np.rot90(img))


def test_color_ops_follow_their_formulas(img):
    f = 1.25
    np.testing.assert_array_equal(run(Brighten((f, f)), img), np.clip(np.rint(img * np.float32(f)), 0, 255))
    luma = img.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    m = luma.mean()
    expect = np.clip(np.rint(m + np.float32(0.5) * (img.astype(np.float32) - m)), 0, 255)
    np.testing.assert_allclose(run(Contrast((0.5, 0.5)), img), expect, atol=1)
    gray = img[:, :, :1]
    np.testing.assert_array_equal(run(Saturate((0.2, 0.2)), gray), gray[:, :, 0][:, :, None])
    np.testing.assert_array_equal(
        run(Saturate((0.0, 0.0)), img)[..., 0], run(Saturate((0.0, 0.0)), img)[..., 1]
    )


def test_brighten_scalar_draws_around_one(img):
    outs = {int(run(Brighten(0.1), img, seed=s).astype(int).sum()) for s in range(5)}
    base = int(img.astype(int).sum())
    assert len(outs) > 1 and all(0.85 * base < o < 1.15 * base for o in outs)


def test_one_parameter_draw_applies_to_every_frame_and_pair(img):
    clip = [img, img.copy(), img.copy()]
    out = run([Crop((9, 9)), Rotate(40), Brighten(0.5), Noise(0.05)], clip, seed=3)
    assert all((o == out[0]).all() for o in out)
    pair = [[img, img], [img]]
    res = run(Crop((5, 5)), pair, seed=4)
    assert (res[0][0] == res[1][0]).all()


def test_sampling_picks_from_each_window_with_shared_indices():
    frames = [np.full((2, 2, 1), i, np.uint8) for i in range(10)]
    out = run(Sampling(3), frames, seed=1)
    picks = [int(f[0, 0, 0]) for f in out]
    assert len(picks) == 3 and all(3 * i <= p <= 3 * i + 2 for i, p in enumerate(picks))
    nested = run(Sampling(3), [frames, frames], seed=1)
    assert [int(f[0, 0, 0]) for f in nested[0]] == [int(f[0, 0, 0]) for f in nested[1]] == picks
    with pytest.raises(TypeError, match="list of frames"):
        run(Sampling(2), frames[0])
    with pytest.raises(ValueError):
        Sampling(0)


def test_end_gives_float_in_unit_range_and_chw_ops(img):
    out = Comburant(HWC2CHW(), end=True)(img)
    assert out.dtype == np.float32 and out.shape == (3, 20, 30) and out.max() <= 1
    gray = img[:, :, 0]
    assert Comburant(HW2CHW(), end=False)(gray).shape == (1, 20, 30)
    assert Comburant(Flip(VERTICAL), end=False)(gray).shape == (20, 30)


def test_float_input_is_taken_as_unit_range(img):
    out = Comburant(end=False)(img / 255.0)
    np.testing.assert_array_equal(out, img)


def test_encoded_buffers_are_decoded_to_rgb_and_arrays_pass_through(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    enc = np.frombuffer(buf.getvalue(), np.uint8)
    cbr = Comburant(Flip(VERTICAL), is_encoded=True, end=False)
    np.testing.assert_array_equal(cbr(enc), img[:, ::-1])
    np.testing.assert_array_equal(cbr(img), img[:, ::-1])


def test_random_applies_with_probability_or_picks_one(img):
    never = run(Random(0.0, Flip(VERTICAL)), img)
    always = run(Random(1.0, Flip(VERTICAL)), img)
    np.testing.assert_array_equal(never, img)
    np.testing.assert_array_equal(always, img[:, ::-1])
    picked = run(Random([0.0, 1.0], [Flip(VERTICAL), Flip(HORIZONTAL)]), img)
    np.testing.assert_array_equal(picked, img[::-1])
    with pytest.raises(ValueError, match="sum to 1"):
        Random([0.5, 0.6], [Flip(20), Flip(21)])


def test_same_seed_same_result_and_user_callables(img):
    ops = [Crop((10, 10)), Rotate(20), Hue(0.2), Blur((1, 2)), JPEG((50, 90)), lambda x: x]
    a = Comburant(*ops, rng=random.Random(5))(img)
    b = Comburant(*ops, rng=random.Random(5))(img)
    np.testing.assert_array_equal(a, b)
    random.seed(9)
    c = Comburant(*ops)(img)
    random.seed(9)
    np.testing.assert_array_equal(c, Comburant(*ops)(img))


def test_resize_pad_blur_noise_whiten_jpeg_shapes_and_values(img):
    assert run(Resize((7, 9)), img).shape == (7, 9, 3)
    padded = run(Pad((1, 2, 3, 4)), img)
    assert padded.shape == (23, 37, 3) and padded[0].sum() == 0
    flat = np.full((9, 9, 1), 100, np.uint8)
    np.testing.assert_array_equal(run(Blur(2), flat), flat)
    noisy = run(Noise(0.1), flat).astype(int)
    assert noisy.std() > 5 and noisy.min() >= 0
    assert run(Noise(0.1, fuel.POISSON), flat).shape == flat.shape
    white = Comburant(HWC2CHW(), Whiten([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]))(img)
    np.testing.assert_allclose(white, (np.transpose(img, (2, 0, 1)) / 255.0 - 0.5) / 0.25, atol=1e-5)
    assert run(JPEG(60), img).shape == img.shape
    assert np.array_equal(run(Hue((0.0, 0.0)), img), img)


def test_hue_rotates_colours_but_leaves_gray_alone(img):
    assert not np.array_equal(run(Hue((0.3, 0.3)), img), img)
    gray = img[:, :, :1]
    np.testing.assert_array_equal(run(Hue(0.3), gray), gray)
