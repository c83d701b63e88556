"""rps.export and `python -m rps export`: parity of each exported format with Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rps.cli import main
from rps.export import EXAMPLES, ExportError, ExportedRunner, export_model, model_inputs
from rps.prediction import Predictor

pytestmark = pytest.mark.slow  # conversions take seconds each


SHIPPED_DESCRIPTION = {"class_names": '["paper", "rock", "scissors"]', "image_size": "64", "input": "hand"}


@pytest.fixture(scope="module")
def shipped():
    predictor = Predictor()
    rows = model_inputs(predictor, EXAMPLES)
    keras = [predictor.runner.run(np.zeros((1, 64, 64, 3), np.uint8), row[-1])[0] for row in rows]
    return rows, keras


def test_tflite_float_matches_keras(shipped, tmp_path):
    rows, keras = shipped
    assert len(rows) == len(EXAMPLES) >= 6
    exported = export_model(None, tmp_path / "model.tflite", "tflite")
    runner = ExportedRunner(exported.path)
    for row, expected in zip(rows, keras):
        assert np.abs(runner.run(row) - expected).max() <= 1e-3
    assert runner.metadata == SHIPPED_DESCRIPTION  # the file names its classes


def test_tflite_int8_keeps_the_top_class_and_is_smaller(shipped, tmp_path):
    rows, keras = shipped
    small = export_model(None, tmp_path / "int8.tflite", "tflite-int8")
    full = export_model(None, tmp_path / "float.tflite", "tflite")
    assert small.bytes < full.bytes / 2
    runner = ExportedRunner(small.path)
    assert [int(np.argmax(runner.run(row))) for row in rows] == [int(np.argmax(k)) for k in keras]
    assert runner.metadata == SHIPPED_DESCRIPTION


def test_saved_model_matches_keras(shipped, tmp_path):
    rows, keras = shipped
    runner = ExportedRunner(export_model(None, tmp_path / "saved", "saved_model").path)
    for row, expected in zip(rows, keras):
        assert np.abs(runner.run(row) - expected).max() <= 1e-3
    assert runner.metadata == SHIPPED_DESCRIPTION
    # What TensorFlow wrote is recognised as a SavedModel: replaced when asked, and only then.
    with pytest.raises(ExportError, match="already exists"):
        export_model(None, tmp_path / "saved", "saved_model")
    assert export_model(None, tmp_path / "saved", "saved_model", overwrite=True).bytes > 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["saved"]  # no staging folder left


def test_onnx_matches_keras_or_says_what_is_missing(shipped, tmp_path):
    rows, keras = shipped
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        with pytest.raises(ExportError, match="pip install tf2onnx"):
            export_model(None, tmp_path / "model.onnx", "onnx")
        return
    runner = ExportedRunner(export_model(None, tmp_path / "model.onnx", "onnx").path)
    for row, expected in zip(rows, keras):
        assert np.abs(runner.run(row) - expected).max() <= 1e-3
    metadata = runner.metadata  # what a reader needs to name the output
    assert metadata == SHIPPED_DESCRIPTION
    assert json.loads(metadata["class_names"]) == ["paper", "rock", "scissors"] and metadata["input"] == "hand"
    assert [output.name for output in runner._session.get_outputs()] == ["probabilities"]


def test_a_whole_photo_model_exports_with_pixels(tiny_model, tmp_path):
    predictor = Predictor(tiny_model)
    rows = model_inputs(predictor, EXAMPLES)
    runner = ExportedRunner(export_model(tiny_model, tmp_path / "tiny.tflite", "tflite").path)
    expected = predictor.runner.run(rows[0][0].astype(np.uint8))[0]
    assert np.abs(runner.run(rows[0]) - expected).max() <= 1e-3


def test_the_cli_exports_and_refuses_bad_requests(tmp_path, capsys):
    assert main(["export", "--format", "tflite", "--out", str(tmp_path / "m.tflite")]) == 0
    assert "Saved" in capsys.readouterr().out and (tmp_path / "m.tflite").stat().st_size > 0
    assert main(["export", "--format", "saved_model", "--int8", "--out", str(tmp_path / "x")]) == 2
    assert "--int8 applies to --format tflite only" in capsys.readouterr().err
    assert main(["export", "--format", "tflite", "--model", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "n.tflite")]) == 2


def test_an_output_that_cannot_be_written_is_a_sentence_before_any_conversion(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is a folder"):
        export_model(None, tmp_path, "tflite")
    with pytest.raises(ExportError, match="Could not make the folder"):
        export_model(None, blocker / "model.tflite", "tflite")
    with pytest.raises(ExportError, match="SavedModel is a folder"):
        export_model(None, blocker, "saved_model")
    assert main(["export", "--format", "tflite", "--out", str(blocker / "m.tflite")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Could not make the folder") and error.count("\n") == 1


def test_an_existing_output_is_replaced_only_when_asked_and_a_folder_of_other_files_never(tiny_model, tmp_path,
                                                                                          capsys):
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "saved_model.pb").write_bytes(b"")  # even beside a SavedModel's own file
    for overwrite in (False, True):  # the folder used to be deleted with everything in it
        with pytest.raises(ExportError, match="not a SavedModel; it was left as it is"):
            export_model(tiny_model, mine, "saved_model", overwrite=overwrite)
    assert (mine / "notes.txt").read_text() == "keep me"
    link = tmp_path / "link.tflite"
    link.symlink_to(mine / "notes.txt")
    with pytest.raises(ExportError, match="is a link"):
        export_model(tiny_model, link, "tflite", overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    existing = tmp_path / "tiny.tflite"
    existing.write_bytes(b"an older export")
    assert main(["export", "--format", "tflite", "--model", str(tiny_model), "--out", str(existing)]) == 2
    assert "already exists; give another name, or --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"an older export"
    assert main(["export", "--format", "tflite", "--model", str(tiny_model), "--out", str(existing),
                 "--overwrite"]) == 0
    assert existing.read_bytes() != b"an older export"
