"""Turn whatever a user hands us into one upright RGB uint8 array, safely.

Photos arrive as paths, bytes, PIL images or arrays, in every mode PIL knows (RGBA, palette,
16-bit, CMYK, EXIF-rotated JPEG).  The model was trained on opaque RGB hands on white, so
transparency is composited onto white.  Huge images are refused from their header, before the
pixels are decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rps.errors import ImageError

ImageInput = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

# 50 megapixels covers any phone camera (a 48 MP sensor is 8000x6000) with room to spare,
# while a 60000x60000 bomb (3.6 gigapixels) is refused before decoding.
MAX_PIXELS = 50_000_000
# Uploads above this are refused before they are read; 40 MB fits a raw 12 MP PNG.
MAX_FILE_BYTES = 40 * 1024 * 1024

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# A frame whose every channel stays within this many levels shows nothing: a webcam sends
# black frames while it starts, and a covered lens gives one colour.
BLANK_SPREAD = 8

_WHITE = (255, 255, 255)


def _open(source: ImageInput) -> Image.Image:
    """Open lazily (header only) so size checks come before decoding."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError("The file is empty: upload a PNG, JPEG, BMP or GIF photo.")
        if len(source) > MAX_FILE_BYTES:
            raise ImageError(_too_big_file_message(len(source)))
        stream = io.BytesIO(source)
        name = "the upload"
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path} does not exist or is not a file.")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{path.name} is empty: use a PNG, JPEG, BMP or GIF photo.")
        if size > MAX_FILE_BYTES:
            raise ImageError(_too_big_file_message(size))
        stream = path
        name = path.name
    try:
        return Image.open(stream)
    except Image.DecompressionBombError as error:
        raise ImageError(f"Refused a decompression bomb: {error} Resize it first.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"{name} is not a readable image ({error}); it may be corrupt or truncated. "
            "Use a PNG, JPEG, BMP or GIF photo."
        ) from None


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
        gray = np.clip(np.asarray(image, dtype=np.float64), 0, 255).astype(np.uint8)
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
    """Return the image as an upright HxWx3 uint8 array, or raise ``ImageError``."""
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source)
    _check_pixels(*image.size)
    try:
        # Animated GIFs and multi-page files: the first frame is the photo.
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
        array = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as error:
        raise ImageError(f"Refused a decompression bomb: {error} Resize it first.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"The image could not be decoded ({error}); the file may be truncated or corrupt."
        ) from None
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageError(f"The image decoded to an unexpected shape {array.shape}.")
    return array


def is_image_file(path: Path) -> bool:
    """True for files whose extension the data pipeline can decode."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def is_blank(frame: np.ndarray) -> bool:
    """True for an RGB frame of (nearly) one colour, which no hand gesture can be."""
    frame = np.asarray(frame)
    sample = frame[::4, ::4].reshape(-1, frame.shape[-1])
    return bool(sample.size == 0 or np.ptp(sample, axis=0).max() <= BLANK_SPREAD)
