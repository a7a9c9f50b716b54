"""byte2arr: simplejpeg (the `fast` extra) and Pillow give the same pixels from bytes or arrays, read in place."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nebulae.fuel import _image, byte2arr

from .conftest import make_photo


@pytest.fixture(params=["simplejpeg", "pillow"])
def decoder(request, monkeypatch):
    if request.param == "simplejpeg":
        sj = pytest.importorskip("simplejpeg")
        calls = []

        class Spy:
            decode_jpeg_header = staticmethod(sj.decode_jpeg_header)

            @staticmethod
            def decode_jpeg(data, **kw):
                calls.append(data)
                return sj.decode_jpeg(data, **kw)

        monkeypatch.setattr(_image, "_simplejpeg", Spy())
        return calls
    monkeypatch.setattr(_image, "_simplejpeg", False)
    return None


def encoded(tmp_path, fmt, mode="RGB"):
    path = tmp_path / f"p.{fmt.lower()}"
    make_photo(path, 21, 34, seed=3, mode=mode)
    return np.frombuffer(path.read_bytes(), dtype=np.uint8).copy()


def pillow_pixels(buf):
    img = Image.open(io.BytesIO(buf.tobytes()))
    arr = np.asarray(img.convert("RGB" if img.mode != "L" else "L"))
    return arr if arr.ndim == 3 else arr[:, :, None]


@pytest.mark.parametrize(
    ("fmt", "mode", "channels"), [("JPEG", "RGB", 3), ("JPEG", "L", 1), ("PNG", "RGB", 3)]
)
def test_both_decoders_give_pillows_pixels_in_hwc(tmp_path, decoder, fmt, mode, channels):
    buf = encoded(tmp_path, fmt, mode)
    got = byte2arr(buf)
    assert got.dtype == np.uint8 and got.shape == (21, 34, channels)
    # libjpeg-turbo with the same (default) DCT and upsampling in both: the same pixels
    np.testing.assert_array_equal(got, pillow_pixels(buf))
    if decoder is not None and fmt == "JPEG":
        assert len(decoder) == 1


def test_a_contiguous_uint8_array_is_decoded_in_place(tmp_path, decoder):
    buf = encoded(tmp_path, "JPEG")
    byte2arr(buf)
    if decoder is not None:
        assert decoder[-1] is buf  # the array itself reached simplejpeg, no bytes copy
    before = buf.copy()
    np.testing.assert_array_equal(byte2arr(buf), byte2arr(buf.tobytes()))
    np.testing.assert_array_equal(buf, before)


@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "strided", "int8", "readonly"])
def test_other_buffers_decode_to_the_same_pixels(tmp_path, decoder, form):
    buf = encoded(tmp_path, "JPEG")
    want = pillow_pixels(buf)
    if form == "bytes":
        given = buf.tobytes()
    elif form == "bytearray":
        given = bytearray(buf.tobytes())
    elif form == "memoryview":
        given = memoryview(buf.tobytes())
    elif form == "strided":
        spaced = np.zeros(2 * buf.size, np.uint8)
        spaced[::2] = buf
        given = spaced[::2]
    elif form == "int8":
        given = buf.view(np.int8)
    else:
        given = buf.copy()
        given.flags.writeable = False
    np.testing.assert_array_equal(byte2arr(given), want)


@pytest.mark.parametrize("cut", [0, 2, 100])
def test_truncated_or_empty_buffers_are_a_value_error_naming_their_size(tmp_path, decoder, cut):
    buf = encoded(tmp_path, "JPEG")[:cut]
    with pytest.raises(ValueError, match=f"buffer of {cut} bytes is not a decodable image"):
        byte2arr(buf)


def test_as_np_false_gives_the_pil_image(tmp_path, decoder):
    img = byte2arr(encoded(tmp_path, "JPEG"), as_np=False)
    assert isinstance(img, Image.Image) and img.size == (34, 21)
