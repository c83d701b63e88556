"""rps.images: every input mode becomes upright RGB; bad input is refused with a clear error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rps.errors import ImageError
from rps.images import MAX_FILE_BYTES, is_blank, load_rgb


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_rgb(image)[0, 0].tolist() == [255, 255, 255]


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] + [0] * 765)
    image.info["transparency"] = 0
    assert load_rgb(Image.open(io.BytesIO(encode(image))))[0, 0].tolist() == [255, 255, 255]


def test_16_bit_png_is_scaled_not_clipped():
    values = np.full((4, 4), 32768, dtype=np.uint16)
    image = Image.open(io.BytesIO(encode(Image.fromarray(values))))
    assert image.mode.startswith("I")
    assert 120 <= load_rgb(image)[0, 0, 0] <= 135


def test_grayscale_becomes_three_channels():
    assert load_rgb(Image.new("L", (5, 3), 77)).shape == (3, 5, 3)


def test_cmyk_jpeg_decodes_to_rgb():
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG")
    red, green, blue = load_rgb(data)[4, 4]
    assert red > 200 and green < 60 and blue < 60


def test_exif_rotated_jpeg_is_upright():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    data = encode(image, "JPEG", exif=exif.tobytes())
    assert load_rgb(data).shape == (40, 20, 3)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    red, green, _ = load_rgb(buffer.getvalue())[0, 0]
    assert red > 200 and green < 50


def test_path_bytes_pil_and_array_agree(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8))
    path = tmp_path / "x.png"
    image.save(path)
    reference = np.asarray(image)
    for source in (path, str(path), path.read_bytes(), image, reference):
        assert np.array_equal(load_rgb(source), reference)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((2, 2), 1.0), 255),  # float in [0, 1]
        (np.full((2, 2, 1), 65535, dtype=np.uint16), 255),
        (np.zeros((2, 2, 4), dtype=np.uint8), 255),  # fully transparent -> white
    ],
)
def test_arrays_of_any_dtype(array, expected):
    assert load_rgb(array)[0, 0, 0] == expected


@pytest.mark.parametrize(
    "source, message",
    [
        (b"", "empty"),
        (b"this is text, not a picture", "not a readable image"),
        (encode(Image.new("RGB", (64, 64), (9, 9, 9)))[:60], "truncated"),
        (encode(Image.new("RGB", (64, 64), (9, 9, 9)), "JPEG")[:200], "truncated"),
        (png_with_header_size(60000, 60000), "megapixels|bomb"),
        (b"\0" * (MAX_FILE_BYTES + 1), "limit"),
        (np.zeros((2, 2, 2)), "shape"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "bomb", "too-large", "bad-array"],
)
def test_bad_input_is_refused_clearly(source, message):
    with pytest.raises(ImageError, match=message):
        load_rgb(source)


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_rgb(tmp_path / "nope.png")


def test_one_pixel_image_works():
    assert load_rgb(Image.new("RGB", (1, 1), (1, 2, 3))).tolist() == [[[1, 2, 3]]]


def test_blank_frames_are_told_from_pictures():
    assert is_blank(np.zeros((480, 640, 3), np.uint8))
    assert is_blank(np.full((48, 64, 3), (200, 150, 120), np.uint8))  # one colour, a covered lens
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[10:30, 20:40] = (200, 150, 120)  # a hand-coloured patch on black
    assert not is_blank(picture)


@pytest.mark.parametrize("array, words", [
    (np.array([["a"]]), "must hold numbers"),
    (np.full((8, 8, 3), np.nan), "NaN or infinite"),
    (np.array([[[0.5, np.inf, 0.2]]]), "NaN or infinite"),
    (np.ones((4, 4, 3), complex), "must hold numbers"),
])
def test_arrays_that_are_not_pictures_are_refused_with_a_reason(array, words):
    from rps.errors import ImageError
    from rps.images import load_rgb

    with pytest.raises(ImageError, match=words):
        load_rgb(array)
