"""rps.prediction: one Predictor, any input type, probabilities that sum to 1."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import draw_gesture
from rps.errors import ImageError, ModelFileError
from rps.prediction import Predictor, top_label


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model)


def as_inputs(tmp_path):
    image = draw_gesture("rock", 50)
    path = tmp_path / "rock.png"
    image.save(path)
    buffer = io.BytesIO()
    image.convert("RGBA").save(buffer, "PNG")
    return {
        "path": path, "str": str(path), "bytes": path.read_bytes(), "pil": image,
        "array": np.asarray(image), "rgba-bytes": buffer.getvalue(),
        "grayscale": image.convert("L"), "palette": image.convert("P"),
        "16-bit": Image.fromarray((np.asarray(image.convert("L")).astype(np.uint16) * 257)),
        "640x480": image.resize((640, 480)),
    }


def test_every_input_type_gives_probabilities_that_sum_to_one(predictor, tmp_path):
    for name, source in as_inputs(tmp_path).items():
        probabilities = predictor.predict(source)
        assert list(probabilities) == ["paper", "rock", "scissors"], name
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6), name
        assert all(0.0 <= p <= 1.0 for p in probabilities.values()), name


def test_same_image_same_answer_whatever_the_wrapper(predictor, tmp_path):
    inputs = as_inputs(tmp_path)
    reference = predictor.predict(inputs["path"])
    for name in ("str", "bytes", "pil", "array", "rgba-bytes"):
        assert predictor.predict(inputs[name]) == pytest.approx(reference, abs=1e-5), name


def test_batch_matches_single(predictor, tmp_path):
    images = [draw_gesture(label, 40, seed=3) for label in ("rock", "paper", "scissors")]
    batch = predictor.predict_batch(images)
    for image, result in zip(images, batch):
        assert result == pytest.approx(predictor.predict(image), abs=1e-5)
    assert predictor.predict_batch([]) == []


def test_prepare_shows_what_the_model_sees(predictor):
    prepared = predictor.prepare(Image.new("RGB", (640, 480), (10, 200, 30))).pixels
    assert prepared.shape == (32, 32, 3) and prepared.dtype == np.uint8
    assert prepared[5, 5].tolist() == [10, 200, 30]


def test_not_an_image_is_a_value_error(predictor):
    with pytest.raises(ValueError, match="not a readable image"):
        predictor.predict(b"definitely not a picture")
    with pytest.raises(ImageError):
        predictor.predict(b"")


def test_top_label():
    assert top_label({"a": 0.2, "b": 0.7, "c": 0.1}) == "b"


def test_missing_or_corrupt_model_is_a_clear_error(tmp_path, tiny_model):
    with pytest.raises(ModelFileError, match="No model"):
        Predictor(tmp_path / "nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.keras").write_bytes(b"garbage")
    (broken / "model.json").write_text((tiny_model / "model.json").read_text())
    with pytest.raises(ModelFileError, match="corrupt"):
        Predictor(broken)
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid model metadata"):
        Predictor(broken)
