"""Inputs that once failed when the product was tried as users do, each through every door.

The files in ``tests/data/cases`` are copies of the failing inputs (small, synthetic or from
CC BY-SA photos); the three large zips of that collection are regenerated here instead
(``_truncated_jpeg_zip``, ``_bmp_zip``).  Each test asserts the right answer: the right label,
the same pixels as serving, a trained model, or a sentence that says what is wrong.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import draw_gesture, zip_folder
from rps.cli import main
from rps.datasets import SPLIT_STRATIFIED, open_dataset
from rps.errors import ArchiveError, DatasetError, ImageError, RpsError
from rps.evaluation import prepare_split
from rps.images import load_rgb
from rps.preprocessing import Preprocessor
from rps.reports import TOP_CLASSES, model_summary
from rps.storage import ImageFiles
from ui.classify import classify_image
from ui.inputs import LiveFrameInput, PhotoInput, user_error

# Integration tests (every failing input through every door, trainings included):
# CI runs them all; `-m "not slow"` skips them.
pytestmark = pytest.mark.slow

CASES = Path(__file__).resolve().parent / "data" / "cases"
# Every photo case and the label the shipped model must give it.
PHOTOS = {
    "exif-orient8.jpg": "rock", "float32-unit.tif": "rock", "la-transparent.png": "rock",
    "paper-rgb565.bmp": "paper", "rgba-transparent-rock.png": "rock", "rock-16bit.png": "rock",
    "rock-1bit.bmp": "rock", "rock-gray16.png": "rock", "rock-rle8.bmp": "rock", "rock.heic": "rock",
}
HUGE = ("pal-13000x13000.png", "rgb-13000x13000.png")
# Zips that cannot be trained on, and the words their refusal must contain.
BAD_ZIPS = {
    "z14-file-dir-clash.zip": "both a file and a folder named 'rock'",
    "z15-encrypted-flag.zip": "password-protected",
    "z16-deflate64-method.zip": "Deflate64",
    "z17-long-name.zip": "bytes long",
    "z29-header-bomb-60000px.zip": "3,600 megapixels",
}
TINY = ["--arch", "baseline", "--input", "image", "--image-size", "32", "--epochs", "1",
        "--batch-size", "8", "--augmentation", "none"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(value) for value in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shipped():
    from rps.prediction import Predictor

    return Predictor()


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_photo_cases_get_their_label_from_predictor_cli_and_evaluate(shipped, capsys, tmp_path, name):
    label = PHOTOS[name]
    assert shipped.predict(CASES / name).label == label
    assert shipped.predict((CASES / name).read_bytes()).label == label
    code, out, _ = cli(capsys, "predict", "--json", CASES / name)
    assert code == 0 and json.loads(out)["label"] == label
    # evaluate: the same file in a labelled folder.
    folder = tmp_path / "labelled"
    (folder / label).mkdir(parents=True)
    (folder / label / name).write_bytes((CASES / name).read_bytes())
    code, out, _ = cli(capsys, "evaluate", "--json", "--data", folder)
    assert code == 0 and json.loads(out)["accuracy"] == 1.0


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_photo_cases_get_their_label_through_the_app(shipped, name):
    from gradio.data_classes import FileData

    class Service:  # what ModelService.classify does, without a state folder
        classify = staticmethod(shipped.predict)

    uploaded = PhotoInput(type="filepath", image_mode=None).preprocess(
        FileData(path=str(CASES / name), orig_name=name))
    label, seen = classify_image(Service(), uploaded)
    assert max(label, key=label.get) == PHOTOS[name] and seen is not None


@pytest.mark.parametrize("name", HUGE)
def test_huge_images_are_refused_with_a_sentence_through_every_door(shipped, capsys, name):
    import gradio as gr

    from gradio.data_classes import FileData

    with pytest.raises(ImageError, match="megapixels"):
        shipped.predict(CASES / name)
    code, _, err = cli(capsys, "predict", CASES / name)
    assert code == 2 and "megapixels" in err and "Traceback" not in err
    with pytest.raises(gr.Error, match="megapixels"):
        PhotoInput(type="filepath", image_mode=None).preprocess(FileData(path=str(CASES / name)))


@pytest.mark.parametrize("name", sorted(BAD_ZIPS))
def test_bad_zips_are_refused_with_a_sentence(capsys, tmp_path, name):
    with pytest.raises((ArchiveError, DatasetError), match=BAD_ZIPS[name]):
        open_dataset(CASES / name, unpack_to=tmp_path / "unpacked")
    code, _, err = cli(capsys, "train", "--data", CASES / name, *TINY, "--out", tmp_path / "run")
    assert code == 2 and BAD_ZIPS[name] in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_phone_names_train_with_a_stratified_split(capsys, tmp_path):
    """``IMG_1000.JPG``-style names are not rendered sequences: a seeded stratified split."""
    code, out, err = cli(capsys, "train", "--data", CASES / "z13-phone-names.zip", *TINY,
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert SPLIT_STRATIFIED in out
    metadata = json.loads((tmp_path / "run" / "model.json").read_text())
    assert metadata["dataset"]["validation_split"] == SPLIT_STRATIFIED
    assert metadata["dataset"]["validation"] >= 3  # one photo of each class at least


def test_a_zip_trained_from_the_cli_leaves_no_unpacked_copy(capsys, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    code, _, err = cli(capsys, "train", "--data", CASES / "z13-phone-names.zip", *TINY,
                       "--out", tmp_path / "run")
    assert code == 0, err
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("name", ["z24-exif-rotated.zip", "z25-rgba-transparent.zip"])
def test_training_sees_the_pixels_serving_sees(tmp_path, name):
    """Sideways phone photos and transparent cut-outs: training (both input modes, in memory
    and streamed) prepares exactly what ``Predictor.prepare`` does."""
    from rps.pipeline import make_dataset

    dataset = open_dataset(CASES / name, unpack_to=tmp_path)
    paths = list(dataset.train.paths)
    for mode in ("image", "hand"):
        preprocessor = Preprocessor(64, mode)
        split = prepare_split(paths, preprocessor)
        for index, path in enumerate(paths):
            served = preprocessor(load_rgb(path))
            assert split.reasons[index] == served.reason
            if served.pixels is not None:
                np.testing.assert_array_equal(split.pixels[index], served.pixels)
    streamed = np.concatenate([batch.numpy() for batch, _ in make_dataset(dataset.train, 64, 8, cache_budget=0)])
    served = np.stack([Preprocessor(64, "image").resize_whole(load_rgb(path)) for path in paths])
    np.testing.assert_array_equal(streamed.astype(np.uint8), served)


def _bmp_zip(tmp_path: Path, mode: str) -> Path:
    """A class-folder dataset of BMPs in ``mode`` ("1": 1-bit; "P": 8-bit palette)."""
    root = tmp_path / f"bmp-{mode}"
    for label in ("paper", "rock", "scissors"):
        (root / label).mkdir(parents=True)
        for index in range(6):
            image = draw_gesture(label, 64, seed=index)
            image = image.convert("1") if mode == "1" else image.quantize(64)
            image.save(root / label / f"{label}{index % 3 + 1:02d}-{index // 3:03d}.bmp")
    return zip_folder(root, tmp_path / f"bmp-{mode}.zip")


@pytest.mark.parametrize("mode", ["1", "P"])
def test_bmp_datasets_train_on_the_pixels_serving_sees(capsys, tmp_path, mode):
    archive = _bmp_zip(tmp_path, mode)
    code, _, err = cli(capsys, "train", "--data", archive, *TINY, "--out", tmp_path / "run")
    assert code == 0, err
    # Palette indices read as grey levels would differ from the expanded palette colours.
    dataset = open_dataset(archive, unpack_to=tmp_path / "check")
    path = dataset.train.paths[0]
    with Image.open(path) as image:
        expected = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(load_rgb(path), expected)


def _truncated_jpeg_zip(tmp_path: Path) -> Path:
    root = tmp_path / "truncated"
    for label in ("paper", "rock", "scissors"):
        (root / label).mkdir(parents=True)
        for index in range(6):
            draw_gesture(label, 64, seed=index).save(root / label / f"{label}{index % 3 + 1:02d}-{index // 3:03d}.jpg")
    whole = (root / "rock" / "rock01-000.jpg").read_bytes()
    (root / "rock" / "rock01-000.jpg").write_bytes(whole[: len(whole) // 2])
    return zip_folder(root, tmp_path / "truncated.zip")


@pytest.mark.parametrize("input_mode", ["image", "hand"])
def test_an_unreadable_file_is_named_before_the_first_epoch(capsys, tmp_path, input_mode):
    archive = _truncated_jpeg_zip(tmp_path)
    options = (["--input", "hand", "--arch", "hand", "--epochs", "1", "--batch-size", "8"]
               if input_mode == "hand" else TINY)
    code, out, err = cli(capsys, "train", "--data", archive, *options, "--out", tmp_path / "run")
    assert code == 2
    assert "error: rock/rock01-000.jpg " in err  # named inside the dataset, not by a temporary path
    assert "--skip-unreadable" in err and "Epoch 1" not in out


def test_evaluate_names_an_unreadable_file_inside_the_zip(capsys, tmp_path, tiny_model):
    """A JPEG cut at 90% passes the header check and fails only when decoded, in evaluation:
    it is named inside the dataset, not by the zip's temporary folder (which is gone)."""
    archive = _truncated_jpeg_zip(tmp_path)
    root = tmp_path / "late"
    with zipfile.ZipFile(archive) as source:
        source.extractall(root)
    broken = root / "rock" / "rock01-000.jpg"
    whole = io.BytesIO()
    draw_gesture("rock", 64, seed=0).save(whole, "JPEG")
    broken.write_bytes(whole.getvalue()[: len(whole.getvalue()) * 9 // 10])
    code, _, err = cli(capsys, "evaluate", "--model", tiny_model, "--data", zip_folder(root, tmp_path / "late.zip"))
    assert code == 2 and "error: rock/rock01-000.jpg: " in err and "rps-data-" not in err


def test_skipping_unreadable_files_trains_and_lists_them(capsys, tmp_path):
    archive = _truncated_jpeg_zip(tmp_path)
    code, out, err = cli(capsys, "train", "--data", archive, *TINY, "--skip-unreadable",
                         "--out", tmp_path / "run")
    assert code == 0, err
    skipped = json.loads((tmp_path / "run" / "model.json").read_text())["dataset"]["skipped_unreadable"]
    assert len(skipped) == 1 and skipped[0].startswith("rock/rock01-000.jpg: ")
    assert "Skipped 1 unreadable file" in out


def test_thirty_classes_show_their_top_classes_in_the_app(tmp_path, capsys):
    from rps.prediction import Predictor

    code, _, err = cli(capsys, "train", "--data", CASES / "z06-30-classes.zip", *TINY,
                       "--out", tmp_path / "run")
    assert code == 0, err
    predictor = Predictor(tmp_path / "run")
    assert len(predictor.class_names) == 30

    class Service:
        classify = staticmethod(predictor.predict)

    photo = open_dataset(CASES / "z06-30-classes.zip", unpack_to=tmp_path / "data").train.paths[0]
    label, _ = classify_image(Service(), photo)
    assert len(label) == TOP_CLASSES and set(label) <= set(predictor.class_names)
    assert list(label.values()) == sorted(label.values(), reverse=True)


def test_html_class_names_show_as_text(tmp_path):

    names = open_dataset(CASES / "z18b-html-class-names.zip", unpack_to=tmp_path).class_names
    card = model_summary({"class_names": list(names), "image_size": 64, "architecture": "hand"})
    assert "<img" not in card and "<iframe" not in card and "<svg" not in card
    assert "&lt;img src=x onerror=alert" in card
    error = user_error(f"class {names[0]} failed")
    assert "<" not in str(error.message)
    assert user_error("The file isn't a photo: \"x.txt\".").message == "The file isn't a photo: \"x.txt\"."


def test_header_bomb_inside_a_zip_names_the_file(tmp_path):
    with pytest.raises(DatasetError) as raised:
        open_dataset(CASES / "z29-header-bomb-60000px.zip", unpack_to=tmp_path)
    message = str(raised.value)
    assert "3,600 megapixels" in message and message.startswith("paper/") and isinstance(raised.value, RpsError)
    with zipfile.ZipFile(CASES / "z29-header-bomb-60000px.zip") as archive:
        assert any(name.endswith(".png") for name in archive.namelist())


def _data_url(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("name", HUGE)
def test_huge_live_frames_are_dropped_unread(name, monkeypatch):
    """A 13000x13000 PNG sent as a webcam frame is measured from its header and dropped; it
    used to be decoded in full (1.5 to 2.4 GB each) before any check."""
    import resource

    from gradio.data_classes import ImageData

    import ui.inputs

    def never(_):
        raise AssertionError("the frame was decoded")

    monkeypatch.setattr(ui.inputs, "load_rgb", never)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    frame = LiveFrameInput(sources=["webcam"], streaming=True, type="numpy").preprocess(
        ImageData(url=_data_url(CASES / name)))
    assert frame is None
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew {grown_mb:.0f} MB"


def test_live_and_pasted_frames_are_decoded_by_the_library(shipped):
    """Webcam frames and pasted images (data URLs) take the library's decoder: a transparent
    cut-out is on white, and the Classify answer matches ``Predictor``'s."""
    from gradio.data_classes import ImageData

    payload = ImageData(url=_data_url(CASES / "rgba-transparent-rock.png"))
    frame = LiveFrameInput(sources=["webcam"], streaming=True, type="numpy").preprocess(payload)
    np.testing.assert_array_equal(frame, load_rgb(CASES / "rgba-transparent-rock.png"))
    pasted = PhotoInput(type="filepath", image_mode=None).preprocess(payload)
    assert shipped.predict(pasted).label == shipped.predict(CASES / "rgba-transparent-rock.png").label == "rock"


def test_tensors_are_accepted_and_other_objects_refused_with_a_sentence(shipped):
    import tensorflow as tf

    photo = load_rgb(CASES / "rgba-transparent-rock.png")
    assert shipped.predict(tf.constant(photo)).label == shipped.predict(photo).label == "rock"
    with pytest.raises(ImageError, match="Cannot read an image from a dict"):
        shipped.predict({"not": "an image"})


def test_a_reused_result_image_is_refreshed_before_any_prune(tmp_path):
    """The same picture for two visitors: its file is touched on reuse, so a prune in between
    cannot delete it before Gradio copies it."""
    import os
    import time


    files = ImageFiles(tmp_path, max_age_seconds=300)
    picture = np.zeros((8, 8, 3), np.uint8)
    first = files.path(picture)
    old = time.time() - 400
    os.utime(first, (old, old))
    files._writes = 199  # the next write prunes
    assert files.path(picture) == first and Path(first).exists()


def test_file_names_that_are_not_utf8_train(tmp_path, capsys):
    """A Latin-1 name (from an old zip) reaches the fingerprint and the streaming decoder."""
    import os

    from rps.pipeline import make_dataset

    root = tmp_path / "latin1"
    for label in ("paper", "rock"):
        (root / label).mkdir(parents=True)
        for index in range(3):
            name = os.fsdecode(f"caf{index}".encode() + b"\xe9.png")
            draw_gesture(label, 32, seed=index).save(root / label / name)
    dataset = open_dataset(root)
    assert len(dataset.fingerprint()) == 16
    batches = list(make_dataset(dataset.train, 16, 6, cache_budget=0))
    assert batches[0][0].shape == (6, 16, 16, 3)


def test_an_overlong_file_name_is_one_error_line_and_the_rest_still_answer(shipped, capsys, tmp_path):
    long_name = tmp_path / ("x" * 300 + ".png")
    code, out, err = cli(capsys, "predict", long_name, CASES / "rgba-transparent-rock.png")
    assert code == 2 and "cannot be read" in err and "Traceback" not in err
    assert "rgba-transparent-rock.png: rock" in out


def test_a_data_url_over_the_size_limit_is_refused_unread():
    import gradio as gr

    from gradio.data_classes import ImageData

    huge = "data:image/png;base64," + "A" * (60 * 2**20)
    with pytest.raises(gr.Error, match="larger than 40 MB"):
        PhotoInput(type="filepath", image_mode=None).preprocess(ImageData(url=huge))
    assert LiveFrameInput(sources=["webcam"], streaming=True).preprocess(ImageData(url=huge)) is None
