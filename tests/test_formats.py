"""One photo, one answer: the same file gives the same pixels through every door.

The doors are ``rps.images.load_rgb`` on a path, on the file's bytes and on a PIL image
(``Predictor``, ``python -m rps predict``), ``prepare_split`` (``evaluate`` and training in
both input modes), the streaming ``tf.data`` decoder (training on data too large for memory)
and the app's photo input.  Each format below is written from one fixed photo, a rendered rock
from ``assets/examples``; lossless formats must give its pixels exactly (as composited on white,
upright), lossy ones within their codec's error, and the shipped model must call each a rock.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rps.evaluation import prepare_split
from rps.images import load_rgb
from rps.preprocessing import Preprocessor

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "rock-1.png"
CASES = Path(__file__).resolve().parent / "data" / "cases"


def _rgb() -> Image.Image:
    return Image.open(EXAMPLE).convert("RGB")


def _grey_reference() -> np.ndarray:
    return np.repeat(np.asarray(_rgb().convert("L"))[..., None], 3, axis=-1)


def _transparent_backdrop(image: Image.Image) -> Image.Image:
    """The hand on a fully transparent backdrop: near-white pixels become alpha 0, and
    their colour is garbage (black) that a correct decoder must never show."""
    rgba = np.asarray(image.convert("RGBA")).copy()
    backdrop = np.asarray(image.convert("L")) > 235
    rgba[backdrop] = (0, 0, 0, 0)
    return Image.fromarray(rgba, "RGBA")


def _on_white(image: Image.Image) -> np.ndarray:
    rgba = np.asarray(image.convert("RGBA")).astype(np.float64)
    alpha = rgba[..., 3:] / 255
    return np.round(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


def _sideways(orientation: int) -> tuple[Image.Image, bytes]:
    """The photo stored rotated, with the EXIF tag that turns it upright again."""
    stored = _rgb().transpose(Image.ROTATE_90 if orientation == 6 else Image.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return stored, exif.tobytes()


def _save(path: Path, image: Image.Image, **options) -> None:
    image.save(path, **options)


def _write(name: str, path: Path) -> tuple[np.ndarray | None, int]:
    """Write format ``name`` to ``path``; return (expected pixels or None, tolerance).

    None: a lossy format, compared between doors exactly, and to the original photo (in grey
    for grey formats) within ``tolerance`` grey levels on average.
    """
    rgb = _rgb()
    grey = rgb.convert("L")
    if name == "png-rgb":
        _save(path, rgb)
        return np.asarray(rgb), 0
    if name == "png-rgba-transparent":
        image = _transparent_backdrop(rgb)
        _save(path, image)
        return _on_white(image), 0
    if name == "png-la-transparent":
        image = _transparent_backdrop(rgb).convert("LA")
        _save(path, image)
        return _on_white(image.convert("RGBA")), 0
    if name == "png-grey":
        _save(path, grey)
        return _grey_reference(), 0
    if name == "png-grey-16bit":
        _save(path, Image.fromarray(np.asarray(grey).astype(np.uint16) * 257))
        return _grey_reference(), 0
    if name == "png-palette":
        image = rgb.quantize(256)
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "png-palette-transparent":
        image = rgb.quantize(255)
        palette_index = np.asarray(image).copy()
        palette_index[np.asarray(grey) > 235] = 255
        indexed = Image.fromarray(palette_index, "P")
        indexed.putpalette(image.getpalette()[:765] + [0, 0, 0])
        indexed.info["transparency"] = 255
        _save(path, indexed, transparency=255)
        return _on_white(indexed.convert("RGBA")), 0
    if name == "png-1bit":
        image = rgb.convert("1")
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "bmp-rgb":
        _save(path, rgb)
        return np.asarray(rgb), 0
    if name == "bmp-palette-8bit":
        image = rgb.quantize(256)
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "bmp-1bit":
        image = rgb.convert("1")
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "bmp-rle8":
        shutil.copy(CASES / "rock-rle8.bmp", path)  # Pillow reads RLE8 but cannot write it
        with Image.open(CASES / "rock-rle8.bmp") as image:
            return np.asarray(image.convert("RGB")), 0
    if name == "gif":
        image = rgb.quantize(256)
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "webp-lossless":
        _save(path, rgb, lossless=True)
        return np.asarray(rgb), 0
    if name == "tiff-rgb":
        _save(path, rgb)
        return np.asarray(rgb), 0
    if name == "tiff-float-0-1":
        _save(path, Image.fromarray(np.asarray(grey, np.float32) / 255.0, "F"))
        return _grey_reference(), 0
    if name == "tiff-cmyk":
        image = rgb.convert("CMYK")
        _save(path, image)
        return np.asarray(image.convert("RGB")), 0
    if name == "jpeg":
        _save(path, rgb, quality=95)
        return None, 3
    if name == "jpeg-grey":
        _save(path, grey, quality=95)
        return None, 3
    if name == "jpeg-cmyk":
        _save(path, rgb.convert("CMYK"), quality=95)
        return None, 3
    if name in ("jpeg-exif-orientation-6", "jpeg-exif-orientation-8"):
        stored, exif = _sideways(int(name[-1]))
        _save(path, stored, quality=95, exif=exif)
        return None, 3
    if name == "webp-lossy":
        _save(path, rgb, quality=90)
        return None, 4
    if name == "heic":
        _save(path, rgb, format="HEIF", quality=90)
        return None, 4
    if name == "avif":
        _save(path, rgb, format="AVIF", quality=90)
        return None, 4
    raise AssertionError(name)


FORMATS = [
    ("png-rgb", ".png"), ("png-rgba-transparent", ".png"), ("png-la-transparent", ".png"),
    ("png-grey", ".png"), ("png-grey-16bit", ".png"), ("png-palette", ".png"),
    ("png-palette-transparent", ".png"), ("png-1bit", ".png"), ("bmp-rgb", ".bmp"),
    ("bmp-palette-8bit", ".bmp"), ("bmp-1bit", ".bmp"), ("bmp-rle8", ".bmp"), ("gif", ".gif"),
    ("webp-lossless", ".webp"), ("tiff-rgb", ".tif"), ("tiff-float-0-1", ".tiff"),
    ("tiff-cmyk", ".tif"), ("jpeg", ".jpg"), ("jpeg-grey", ".jpeg"), ("jpeg-cmyk", ".jpg"),
    ("jpeg-exif-orientation-6", ".jpg"), ("jpeg-exif-orientation-8", ".JPG"),
    ("webp-lossy", ".webp"), ("heic", ".heic"), ("avif", ".avif"),
]


def _doors(path: Path) -> dict[str, np.ndarray]:
    """The pixels each door decodes from ``path``."""
    import tensorflow as tf

    from ui.inputs import PhotoInput
    from gradio.data_classes import FileData
    from rps.pipeline import _load

    with Image.open(path) as image:
        from_pil = load_rgb(image)
    app_path = PhotoInput(type="filepath", image_mode=None).preprocess(
        FileData(path=str(path), orig_name=path.name))
    return {
        "path": load_rgb(path),
        "bytes": load_rgb(path.read_bytes()),
        "PIL image": from_pil,
        "app upload": load_rgb(app_path),
        "tf.data stream": tf.numpy_function(_load, [tf.constant(str(path))], tf.uint8).numpy(),
    }


@pytest.mark.parametrize("name,extension", FORMATS, ids=[name for name, _ in FORMATS])
def test_every_door_decodes_the_same_pixels(tmp_path, name, extension):
    path = tmp_path / f"photo{extension}"
    expected, tolerance = _write(name, path)
    doors = _doors(path)
    reference = doors["path"]
    assert reference.ndim == 3 and reference.shape[-1] == 3 and reference.dtype == np.uint8
    for door, pixels in doors.items():
        np.testing.assert_array_equal(pixels, reference, err_msg=f"{name} through {door}")
    if expected is not None:
        np.testing.assert_array_equal(reference, expected, err_msg=name)
    else:  # lossy: upright, not black, close to the photo on average
        original = _grey_reference() if "grey" in name else np.asarray(_rgb())
        gap = np.abs(reference.astype(int) - original.astype(int)).mean()
        assert gap <= tolerance, f"{name}: mean gap {gap:.1f} from the original"


@pytest.mark.parametrize("mode", ["hand", "image"])
def test_evaluation_and_training_prepare_what_serving_prepares(tmp_path, mode):
    """``prepare_split`` (evaluate, training) and ``Predictor.prepare`` (serving, the app) give
    the same model input for every format."""
    paths = []
    for name, extension in FORMATS:
        path = tmp_path / f"{name}{extension}"
        _write(name, path)
        paths.append(str(path))
    preprocessor = Preprocessor(64, mode)
    split = prepare_split(paths, preprocessor)
    for index, path in enumerate(paths):
        single = preprocessor(load_rgb(path))
        assert split.reasons[index] == single.reason, path
        if single.pixels is not None:
            np.testing.assert_array_equal(split.pixels[index], single.pixels, err_msg=path)


@pytest.fixture(scope="module")
def shipped():
    from rps.prediction import Predictor

    return Predictor()


@pytest.mark.parametrize("name,extension", FORMATS, ids=[name for name, _ in FORMATS])
def test_the_shipped_model_calls_every_format_rock(shipped, tmp_path, name, extension):
    path = tmp_path / f"photo{extension}"
    _write(name, path)
    prediction = shipped.predict(path)
    assert shipped.predict(path.read_bytes()).label == prediction.label
    if "1bit" in name:
        # Dithered to black and white, the hand can be lost (bench/grey_photos.py: 64 to 89% of
        # training photos keep it); then the answer is "no hand", never a wrong gesture.
        assert prediction.label == "rock" or prediction.reason == "no hand", (name, dict(prediction))
        return
    assert prediction.label == "rock", (name, prediction.reason, dict(prediction))
