"""Turn whatever a user hands us into one upright RGB uint8 array, safely.

This is the one decoder of the project: ``Predictor``, ``python -m rps predict/evaluate``,
training (both input modes) and every app tab call ``load_rgb``, so one file gives the same
pixels through every door.

Photos arrive as paths, bytes, PIL images or arrays, in every mode PIL knows (RGBA, palette,
1-bit, 16-bit, float, CMYK, EXIF-rotated JPEG), and as HEIC/HEIF (through ``pillow-heif``),
AVIF, WebP and TIFF.  The model was trained on opaque RGB hands on white, so transparency is
composited onto white.  Huge images are refused from their header, before the pixels are
decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rps.errors import ImageError

try:  # HEIC/HEIF photos (iPhones' default) need libheif, which pillow-heif wheels bundle.
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    HEIF_SUPPORTED = False
else:
    register_heif_opener()
    HEIF_SUPPORTED = True

ImageInput = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

# 50 megapixels covers any phone camera (a 48 MP sensor is 8000x6000) with room to spare,
# while a 60000x60000 bomb (3.6 gigapixels) is refused before decoding.
MAX_PIXELS = 50_000_000
# Uploads above this are refused before they are read; 40 MB fits a raw 12 MP PNG.
MAX_FILE_BYTES = 40 * 1024 * 1024

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif",
                    ".avif")
HEIF_EXTENSIONS = (".heic", ".heif")
# What the messages suggest; every extension above is read.
FORMATS_TEXT = "a PNG, JPEG, BMP, GIF, WebP, TIFF, HEIC or AVIF photo"
# A frame whose every channel stays within this many levels shows nothing: a webcam sends
# black frames while it starts, and a covered lens gives one colour.
BLANK_SPREAD = 8

_WHITE = (255, 255, 255)


def _open(source: ImageInput) -> Image.Image:
    """Open lazily (header only) so size checks come before decoding."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError(f"The file is empty: upload {FORMATS_TEXT}.")
        if len(source) > MAX_FILE_BYTES:
            raise ImageError(_too_big_file_message(len(source)))
        stream = io.BytesIO(source)
        name = "the upload"
    else:
        path = Path(source)
        try:
            if path.is_dir():
                raise ImageError(f"{path} is a folder; give image files.")
            if not path.is_file():
                raise ImageError(f"{path} does not exist or is not a file.")
            size = path.stat().st_size
        except OSError as error:  # a name too long for the file system, a permission problem
            raise ImageError(f"{path.name[:60]} cannot be read ({error.strerror or error}).") from None
        if size == 0:
            raise ImageError(f"{path.name} is empty: use {FORMATS_TEXT}.")
        if size > MAX_FILE_BYTES:
            raise ImageError(_too_big_file_message(size))
        stream = path
        name = path.name
    return _open_header(stream, name)


def _open_header(stream, name: str) -> Image.Image:
    """``Image.open`` (reads the header only), any failure as an ``ImageError`` naming ``name``.

    Pillow's own bomb guard warns from 89 megapixels and raises from 179; ``_check_pixels``
    refuses from ``MAX_PIXELS`` with a message, so Pillow's warning is silenced here.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)
    except Image.DecompressionBombError as error:
        raise ImageError(_bomb_message(name, error)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        if not HEIF_SUPPORTED and name.lower().endswith(HEIF_EXTENSIONS):
            raise ImageError(
                f"HEIC photos are not supported here: {name} needs pillow-heif (pip install "
                "pillow-heif). Or export it as JPEG."
            ) from None
        if isinstance(error, UnidentifiedImageError):
            raise ImageError(
                f"{_subject(name)} is not a readable image: its format is not one this reader knows; it "
                f"may be another kind of file, or corrupt. Use {FORMATS_TEXT}."
            ) from None
        raise ImageError(
            f"{_subject(name)} is not a readable image ({_one_line(error)}); it may be corrupt or "
            f"truncated. Use {FORMATS_TEXT}."
        ) from None


def _subject(name: str) -> str:
    """``name`` at the start of a sentence: "The upload", but a file name exactly as it is."""
    return name[:1].upper() + name[1:] if name in ("the upload", "the image") else name


def _one_line(text: str) -> str:
    """A decoder's own message inside ours: one line, however the library printed it."""
    return " ".join(str(text).split())


def _bomb_message(name: str, error: Exception) -> str:
    """Pillow refuses images over twice its own limit while reading the header; its message
    gives the pixel count, which the user's message repeats in megapixels."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f" is {int(found.group(1)) / 1e6:,.0f} megapixels;" if found else " is too large:"
    return (f"{_subject(name)}{size} the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Resize it "
            "first (an image this large in a small file is also how decompression bombs work).")


def _too_big_file_message(size: int) -> str:
    return (
        f"The file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB. "
        "Resize or compress the photo first."
    )


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Resize it first."
        )
    if width < 1 or height < 1:
        raise ImageError("The image has no pixels.")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency onto white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit data spans 0..65535; scale it rather than clip it to 255.
        if values.max(initial=0) > 255:
            values = values / 257.0
        gray = np.clip(values, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError("The image holds NaN or infinite values; it is not a usable photo.")
        # Float images are stored as 0..1 (scientific and HDR tools) or as 0..255.
        if values.max(initial=0) <= 1.0:
            values = values * 255.0
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, _WHITE + (255,))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(
            f"An image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {array.shape}."
        )
    _check_pixels(array.shape[1], array.shape[0])
    if array.dtype.kind not in "biuf":
        raise ImageError(f"An image array must hold numbers (bool, integer or float), not {array.dtype}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError("The image array holds NaN or infinite values; it is not a usable photo.")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0)
    elif np.issubdtype(array.dtype, np.floating):
        # Floats in [0, 1] are the usual convention; anything larger is taken as 0..255.
        array = array * 255.0 if array.max(initial=0) <= 1.0 else array
    elif array.dtype == np.bool_:
        array = array.astype(np.float64) * 255.0
    array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def load_rgb(source: ImageInput) -> np.ndarray:
    """Return the image as an upright (H, W, 3) uint8 RGB array, or raise ``ImageError``.

    ``source``: a path, the file's bytes, a PIL image, or an array (NumPy, or a ``tf.Tensor``,
    converted with ``.numpy()``).  Arrays are taken as RGB(A), channels last: (H, W),
    (H, W, 1), (H, W, 3) or (H, W, 4); uint8, uint16 (0..65535), bool, or float in 0..1 or
    0..255.  OpenCV's BGR frames must be converted first (``cv2.cvtColor``).  Files are turned
    upright by their EXIF orientation; transparency is composited onto white; 16-bit and float
    images are scaled to 0..255; palette, 1-bit, CMYK and YCbCr images are expanded to RGB.
    Animated files give their first frame.  Images over ``MAX_PIXELS`` are refused from their
    header, before decoding.
    """
    if not isinstance(source, np.ndarray) and callable(getattr(source, "numpy", None)):
        source = np.asarray(source.numpy())  # a tf.Tensor or an eager tensor of another library
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        image, name = source, "the image"
    elif isinstance(source, (str, os.PathLike, bytes, bytearray)):
        image = _open(source)
        name = "the upload" if isinstance(source, (bytes, bytearray)) else Path(source).name
    else:
        raise ImageError(
            f"Cannot read an image from a {type(source).__name__}: give a file path, the file's "
            "bytes, a PIL image or an RGB array."
        )
    opened_here = not isinstance(source, Image.Image)
    try:
        _check_pixels(*image.size)
        # Animated GIFs and multi-page files: the first frame is the photo.
        image.seek(0)
        upright = ImageOps.exif_transpose(image)
        array = np.asarray(_to_rgb(upright), dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageError(_bomb_message(name, error)) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"{_subject(name)} could not be decoded ({_one_line(error)}); the file may be truncated "
            "or corrupt."
        ) from None
    finally:
        if opened_here:
            image.close()  # the file handle; the pixels are in the array
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageError(f"{_subject(name)} decoded to an unexpected shape {array.shape}.")
    return array


def check_header(source: ImageInput) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding pixels.

    Raises ``ImageError`` for a file that is empty, too large, not an image, or over
    ``MAX_PIXELS``: what a dataset check or an upload guard needs before a full decode.
    """
    image = _open(source)
    try:
        _check_pixels(*image.size)
        return image.size
    finally:
        image.close()


def is_image_file(path: Path) -> bool:
    """True for files whose extension the data pipeline can decode."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def is_blank(frame: np.ndarray) -> bool:
    """True for an RGB frame of (nearly) one colour, which no hand gesture can be."""
    frame = np.asarray(frame)
    sample = frame[::4, ::4].reshape(-1, frame.shape[-1])
    return bool(sample.size == 0 or np.ptp(sample, axis=0).max() <= BLANK_SPREAD)
