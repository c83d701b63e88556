"""The bad-input table, through the library and through the launched app's API.

Each input either works right or fails with a message a user can act on, and afterwards a
normal request still works.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from conftest import draw_gesture, running_app, write_class_folders, write_kaggle_layout, zip_folder
from rps.datasets import open_dataset
from rps.errors import RpsError
from rps.images import MAX_FILE_BYTES, load_rgb
from rps.prediction import Predictor

# Integration tests (the bad-input table through the launched app): CI runs them;
# `-m "not slow"` skips them.
pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "rock-1.png"


def encoded(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def exif_rotated_jpeg() -> bytes:
    """Stored 40x20, left red and right blue, tagged 'rotate 90 degrees clockwise to view'."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.fromarray(pixels), "JPEG", exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    frames = [draw_gesture("rock", 64, seed=1), draw_gesture("paper", 64, seed=2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def palette_with_transparency() -> bytes:
    image = draw_gesture("rock", 64).convert("P")
    image.info["transparency"] = 0
    return encoded(image)


GOOD = {
    "one-pixel.png": lambda: encoded(Image.new("RGB", (1, 1), (10, 20, 30))),
    "sixteen-bit.png": lambda: encoded(Image.fromarray(np.full((32, 32), 40000, np.uint16))),
    "cmyk.jpg": lambda: encoded(draw_gesture("rock", 64).convert("CMYK"), "JPEG"),
    "palette-transparent.png": palette_with_transparency,
    "animated.gif": animated_gif,
    "exif-rotated.jpg": exif_rotated_jpeg,
    "grayscale.png": lambda: encoded(draw_gesture("rock", 64).convert("L")),
}
BAD = {
    "empty.png": (lambda: b"", "empty"),
    "text.png": (lambda: b"just some words", "not a readable image|not a usable image"),
    "truncated.png": (lambda: encoded(draw_gesture("rock", 64))[:100], "truncated|corrupt|not a usable"),
    "truncated.jpg": (lambda: encoded(draw_gesture("rock", 64), "JPEG")[:300], "truncated|corrupt|not a usable"),
    "bomb.png": (bomb_png, "megapixels|bomb|not a usable"),
    "too-large.png": (lambda: encoded(Image.new("RGB", (8, 8))) + b"\0" * (MAX_FILE_BYTES + 10), "limit"),
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model)


@pytest.mark.parametrize("name", GOOD)
def test_library_accepts_unusual_but_valid_images(predictor, tmp_path, name):
    probabilities = predictor.predict(write(tmp_path, name, GOOD[name]()))
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_exif_rotated_photo_is_classified_upright(tmp_path):
    upright = load_rgb(write(tmp_path, "rotated.jpg", exif_rotated_jpeg()))
    assert upright.shape == (40, 20, 3)
    assert upright[2, 10, 0] > 200 and upright[-3, 10, 2] > 200  # red on top, blue below


@pytest.mark.parametrize("name", BAD)
def test_library_refuses_bad_images_clearly_and_keeps_working(predictor, tmp_path, name):
    make, message = BAD[name]
    with pytest.raises(RpsError, match=message):
        predictor.predict(write(tmp_path, name, make()))
    assert predictor.predict(EXAMPLE)


# --- zips ------------------------------------------------------------------------------------


def zip_with_member(path: Path, name: str, data: bytes, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, data)
    return path


def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(3):
            archive.writestr(f"rock/{index}.png", b"\0" * 400_000_000)
    return path


def non_utf8_names(tmp_path: Path) -> Path:
    """A zip whose member names are raw bytes that are not UTF-8 (an old Windows zipper)."""
    archive = zip_folder(write_class_folders(tmp_path / "raw", per_class=3), tmp_path / "raw.zip")
    data = archive.read_bytes()
    for label in ("paper", "rock", "scissors"):
        old = f"{label}/{label}01-000.png".encode()
        data = data.replace(old, old.replace(b"01-000", b"\xe9\xe8-\xff00"))
    archive.write_bytes(data)
    return archive


def no_images(tmp_path: Path) -> Path:
    for label in ("paper", "rock"):
        folder = tmp_path / "noimg" / label
        folder.mkdir(parents=True)
        (folder / "readme.txt").write_text("hi")
    return zip_folder(tmp_path / "noimg", tmp_path / "noimg.zip")


def one_class(tmp_path: Path) -> Path:
    return zip_folder(write_class_folders(tmp_path / "one", classes=("rock",)), tmp_path / "one.zip")


def empty_class(tmp_path: Path) -> Path:
    root = write_class_folders(tmp_path / "empty", per_class=3)
    for file in (root / "paper").iterdir():
        file.unlink()
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root).as_posix() + ("/" if path.is_dir() else ""))
    return tmp_path / "empty.zip"


BAD_ZIPS = {
    "dotdot": (lambda tmp: zip_with_member(tmp / "z.zip", "../evil/rock/x.png", b"x"), "outside"),
    "symlink": (lambda tmp: zip_with_member(tmp / "z.zip", "rock/x.png", b"/etc/passwd", symlink=True), "symlink"),
    "gigabytes": (lambda tmp: zip_bomb(tmp / "bomb.zip"), "zip bomb|expands"),
    "no-images": (no_images, "not an image"),
    "one-class": (one_class, "only one class"),
    "empty-class": (empty_class, "empty"),
}


@pytest.mark.parametrize("case", BAD_ZIPS)
def test_library_refuses_bad_zips(tmp_path, case):
    make, message = BAD_ZIPS[case]
    with pytest.raises(RpsError, match=message):
        open_dataset(make(tmp_path), unpack_to=tmp_path / "unpacked")
    assert not (tmp_path / "evil").exists()


def test_non_utf8_member_names_still_open(tmp_path):
    dataset = open_dataset(non_utf8_names(tmp_path), unpack_to=tmp_path / "unpacked")
    assert dataset.class_names == ("paper", "rock", "scissors") and len(dataset.train) == 9


# --- the same through the launched app --------------------------------------------------------


@pytest.fixture(scope="module")
def client(tiny_model, tmp_path_factory):
    from rps.service import ModelService

    state = tmp_path_factory.mktemp("bad-inputs-state")
    with running_app(ModelService(state, bundled_model=tiny_model), state) as demo:
        yield Client(demo.local_url, verbose=False)


def classify(client, path):
    return client.predict(handle_file(str(path)), api_name="/classify")[0]


@pytest.mark.parametrize("name", GOOD)
def test_app_accepts_unusual_but_valid_images(client, tmp_path, name):
    assert classify(client, write(tmp_path, name, GOOD[name]()))["label"]


@pytest.mark.parametrize("name", BAD)
def test_app_refuses_bad_images_clearly_and_keeps_serving(client, tmp_path, name):
    make, message = BAD[name]
    with pytest.raises(Exception, match=message):
        classify(client, write(tmp_path, name, make()))
    assert classify(client, EXAMPLE)["label"]


def train_through_app(client, archive: Path, **overrides):
    arguments = dict(source_kind="Upload a .zip", upload_path=handle_file(str(archive)), folder="",
                     token_text="", arch="baseline", n_epochs=1, batch=8, rate=0.001, size=32,
                     augment="none", input_mode="image")
    arguments.update(overrides)
    return client.predict(**arguments, api_name="/train")


@pytest.mark.parametrize("case", BAD_ZIPS)
def test_app_refuses_bad_zips_and_keeps_serving(client, tmp_path, case):
    make, message = BAD_ZIPS[case]
    with pytest.raises(Exception, match=message):
        train_through_app(client, make(tmp_path))
    assert classify(client, EXAMPLE)["label"]


@pytest.mark.parametrize(
    "overrides, message",
    # A negative rate is stopped by the form's own minimum, with Gradio's message.
    [({"n_epochs": 0}, "Epochs must"), ({"batch": 0}, "Batch size must"), ({"rate": -0.1}, "minimum value 0"),
     ({"size": 7}, "Image size must"), ({"size": 10000}, "Image size must")],
)
def test_app_refuses_out_of_range_training_settings(client, tmp_path, overrides, message):
    archive = zip_folder(write_kaggle_layout(tmp_path / "ok"), tmp_path / "ok.zip")
    with pytest.raises(Exception, match=message):
        train_through_app(client, archive, **overrides)
    assert classify(client, EXAMPLE)["label"]
