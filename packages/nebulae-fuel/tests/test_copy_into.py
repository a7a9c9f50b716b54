"""Batch rows from C x H x W views of H x W x C memory (what the usual prep gives), through OpenCV when installed."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, Tank, _collate, default_collate
from nebulae.fuel._collate import copy_into

DTYPES = ["uint8", "int8", "uint16", "int16", "int32", "float32", "float64"]


class SpyCV:
    """Counts the channel splits done through OpenCV."""

    def __init__(self, cv2):
        self.cv2, self.calls = cv2, 0

    def split(self, *args):
        self.calls += 1
        return self.cv2.split(*args)


@pytest.fixture
def spy(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    spy = SpyCV(cv2)
    monkeypatch.setattr(_collate, "_cv2", spy)
    return spy


def channels_last(c, h, w, dtype, seed=0):
    """A c x h x w view of h x w x c memory filled with random bits (NaN payloads and -0.0 included)."""
    raw = np.random.default_rng(seed).integers(0, 256, (h, w, c * np.dtype(dtype).itemsize), dtype=np.uint8)
    return raw.view(dtype).reshape(h, w, c).transpose(2, 0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [2, 3, 4])
def test_opencv_copy_is_bit_exact_for_every_dtype_and_channel_count(spy, dtype, c):
    src = channels_last(c, 7, 5, dtype, seed=c)
    dst = np.zeros((3, c, 7, 5), dtype)
    copy_into(dst[1], src)
    assert spy.calls == 1
    assert dst[1].tobytes() == np.ascontiguousarray(src).tobytes()
    assert not dst[0].any() and not dst[2].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_copy_without_opencv_gives_the_same_rows(monkeypatch, dtype):
    monkeypatch.setattr(_collate, "_cv2", False)
    src = channels_last(3, 6, 4, dtype)
    dst = np.zeros((3, 6, 4), dtype)
    copy_into(dst, src)
    assert dst.tobytes() == np.ascontiguousarray(src).tobytes()


@pytest.mark.parametrize(
    "case",
    [
        "c_ordered",
        "five_channels",
        "one_channel",
        "other_dtype",
        "float16",
        "strided_dst",
        "two_dims",
        "empty",
    ],
)
def test_other_layouts_take_numpys_copy(spy, case):
    src = channels_last(3, 6, 4, "float32")
    dst = np.zeros((3, 6, 4), np.float32)
    if case == "c_ordered":
        src = np.ascontiguousarray(src)
    elif case == "five_channels":
        src, dst = channels_last(5, 6, 4, "float32"), np.zeros((5, 6, 4), np.float32)
    elif case == "one_channel":
        src, dst = channels_last(1, 6, 4, "float32"), np.zeros((1, 6, 4), np.float32)
    elif case == "other_dtype":
        dst = np.zeros((3, 6, 4), np.float64)
    elif case == "float16":
        src, dst = channels_last(3, 6, 4, "float16"), np.zeros((3, 6, 4), np.float16)
    elif case == "strided_dst":
        dst = np.zeros((3, 6, 8), np.float32)[:, :, ::2]
    elif case == "two_dims":
        src, dst = channels_last(3, 6, 4, "float32")[0], np.zeros((6, 4), np.float32)
    elif case == "empty":
        src, dst = channels_last(3, 0, 4, "float32"), np.zeros((3, 0, 4), np.float32)
    copy_into(dst, src)
    assert spy.calls == 0
    np.testing.assert_array_equal(dst, src.astype(dst.dtype))


def test_an_opencv_that_returns_its_own_planes_is_dropped_and_the_row_still_copied(monkeypatch):
    class Allocating:
        calls = 0

        def split(self, m, mv=None):
            self.calls += 1
            return tuple(np.ascontiguousarray(m[..., k]) for k in range(m.shape[2]))

    fake = Allocating()
    monkeypatch.setattr(_collate, "_cv2", fake)
    src = channels_last(3, 6, 4, "float32")
    dst = np.zeros((3, 6, 4), np.float32)
    copy_into(dst, src)
    assert fake.calls == 1 and _collate._cv2 is False
    assert dst.tobytes() == np.ascontiguousarray(src).tobytes()


def to_chw_float(item):
    item["image"] = np.transpose(item["image"], (2, 0, 1)).astype("float32")  # the brochure's prep
    return item


@pytest.mark.parametrize(("nworker", "worker_type"), [(0, None), (2, "thread")])
def test_tank_batches_of_the_brochure_prep_go_through_opencv_and_equal_default_collation(
    spy, photo_dir, tmp_path, nworker, worker_type
):
    path = tmp_path / "p.hdf5"
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(
        str(path), 96, 96, encode="PNG", nworker=1, verbose=False
    )
    with Tank(
        str(path),
        {"image": "vuint8", "label": "int64"},
        4,
        shuffle=False,
        prep_fn=to_chw_float,
        nworker=nworker,
        worker_type=worker_type,
        verbose=False,
    ) as tank:
        batches = [tank.next() for _ in range(tank.MPE)]
        # 96 x 96 x 3 float32 rows (108 KB) stream into the batch buffer, each through one split
        assert spy.calls >= 4 * tank.MPE
        for mile, batch in enumerate(batches):
            items = [
                to_chw_float(
                    {"image": tank.data["image"][int(i)], "label": np.int64(tank.data["label"][int(i)])}
                )
                for i in tank.indices(0, mile)
            ]
            want = default_collate(items)
            assert batch["image"].flags.c_contiguous and batch["image"].shape == (4, 3, 96, 96)
            assert batch["image"].tobytes() == want["image"].tobytes()
            np.testing.assert_array_equal(batch["label"], want["label"])
