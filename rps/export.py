"""Take a model anywhere: TensorFlow Lite (float or int8), ONNX, or a SavedModel.

What is exported is the CNN: its inputs are what ``rps.preprocessing`` makes of a photo, one
photo per call (batch 1, the mobile and browser case).  For the shipped model that is the hand's
21 keypoints, float32 (1, 21, 3), in the aligned crop's frame: an app runs MediaPipe's hand
landmarker (on every platform MediaPipe supports) and ``rps.hands``' alignment first.
Whole-photo models take float32 (1, size, size, 3) pixels in 0..255.  The output is float32
(1, classes) probabilities in the order of ``model.json``'s ``class_names``.

- ``tflite``: float32 weights.  ``tflite-int8``: the convolution and dense layers' weights and
  activations quantized to int8 against a representative set (the prepared example images,
  ``assets/examples``), inputs and outputs left float32 so callers feed the same arrays
  (TensorFlow's post-training integer quantization with float fallback).  The keypoint
  rendering (``KeypointHeatmaps``: exponentials of squared distances on a grid) stays float:
  quantized to 8 bits it erased the skeleton, and every example was read as one class.
- ``onnx``: through tf2onnx, when it is installed (``pip install tf2onnx onnxruntime``); else
  ``ExportError`` says so.  The output is named ``probabilities``.
- ``saved_model``: Keras' ``model.export`` (serving endpoint ``serve``).

Every file says how to read its output: the class names (JSON), the crop size and the input
(``model.json``'s ``class_names``, ``image_size``, ``input``) are in the ONNX model's metadata
properties, in the TFLite flatbuffer's metadata entries of those names, and in a SavedModel's
``assets/rps.json``.  ``ExportedRunner(path).metadata`` reads them back from any of the three.

Parity with Keras on the example images is measured by ``python -m bench.export`` and tested.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from rps.architectures import input_names
from rps.errors import RpsError
from rps.hands import KEYPOINT_COUNT
from rps.images import ImageInput
from rps.inference import prepared_inputs
from rps.paths import ASSETS
from rps.prediction import Predictor

FORMATS = ("tflite", "tflite-int8", "onnx", "saved_model")
# The TFLite operators of the keypoint rendering, kept float in int8 exports (QuantizationDebugger's
# deny list); convolutions, pooling and dense layers are quantized.
FLOAT_OPS = ("ADD", "BROADCAST_TO", "CONCATENATION", "DIV", "EXP", "GATHER", "MAXIMUM", "MINIMUM", "MUL", "NEG",
             "PACK", "POW", "REDUCE_MAX", "RESHAPE", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB", "SUM")
EXAMPLES = tuple(sorted((ASSETS / "examples").glob("*.png")))


class ExportError(RpsError, RuntimeError):
    """The model cannot be exported in the format asked for, or a converter is missing."""


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    bytes: int


def exported_input_names(predictor: Predictor) -> list[str]:
    """The exported model's inputs in order: ``pixels`` first, then ``keypoints``."""
    return sorted(input_names(predictor.bundle.model), key=lambda name: 0 if name == "pixels" else 1)


def model_inputs(predictor: Predictor, images: Iterable[ImageInput]) -> list[list[np.ndarray]]:
    """For each image with a hand (or any image, for a whole-photo model), the exported model's
    inputs in order: float32 arrays of batch 1.  Photos declined by the pipeline are skipped."""
    names = exported_input_names(predictor)
    rows = []
    for image in images:
        prepared = predictor.prepare(image)
        if prepared.pixels is None:
            continue
        given = prepared_inputs(prepared)
        rows.append([given[name] for name in names])
    return rows


def _signature(predictor: Predictor) -> list[tf.TensorSpec]:
    size = predictor.bundle.image_size
    shapes = {"pixels": [1, size, size, 3], "keypoints": [1, KEYPOINT_COUNT, 3]}
    return [tf.TensorSpec(shapes[name], tf.float32, name=name) for name in exported_input_names(predictor)]


def _serving_function(predictor: Predictor):
    model = predictor.bundle.model
    names = exported_input_names(predictor)

    def serve(*inputs):
        given = dict(zip(names, inputs))
        return model(given if len(names) > 1 else inputs[0], training=False)

    return tf.function(serve, input_signature=_signature(predictor))


def export_model(model_folder: Path | str | None, out: Path | str, format: str,
                 representative: Sequence[ImageInput] = EXAMPLES, overwrite: bool = False) -> Exported:
    """Write ``model_folder``'s model (default: the shipped one) to ``out`` as ``format``.

    ``out`` is a file for ``tflite``, ``tflite-int8`` and ``onnx``, a folder for
    ``saved_model``.  An existing ``out`` is replaced only with ``overwrite``, and a folder
    only when it holds a SavedModel (or nothing).  Raises ``ExportError`` for an unknown
    format, an ``out`` that exists or cannot be written, a missing converter, or a conversion
    that fails; ``ModelFileError`` for a model that does not load.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.")
    predictor = Predictor(model_folder)
    out = Path(out)
    _check_output(out, format, overwrite)
    try:
        if format == "saved_model":
            # Written beside ``out`` and swapped in when complete: a failed export keeps the old one.
            staging = out.with_name(f".{out.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            predictor.bundle.model.export(str(staging), format="tf_saved_model", verbose=False)
            (staging / "assets").mkdir(exist_ok=True)
            (staging / "assets" / SAVED_MODEL_DESCRIPTION).write_text(json.dumps(_description(predictor)))
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)
            size = sum(file.stat().st_size for file in out.rglob("*") if file.is_file())
            return Exported(out, format, size)
        if format == "onnx":
            return _export_onnx(predictor, out)
        function = _serving_function(predictor)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
        if format == "tflite-int8":
            samples = model_inputs(predictor, representative)
            if not samples:
                raise ExportError("int8 needs representative photos with a hand; none of those given had one.")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: iter(samples)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=lambda: iter(samples),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS)))
            data = debugger.get_nondebug_quantized_model()
        else:
            data = converter.convert()
        data = _with_tflite_metadata(data, _description(predictor))
    except RpsError:
        raise
    except Exception as error:  # a converter's own failure, as a sentence
        raise ExportError(f"Exporting to {format} failed: {type(error).__name__}: {str(error)[:300]}") from None
    try:
        staging = out.with_name(f".{out.name}.partial")
        staging.write_bytes(data)
        staging.replace(out)
    except OSError as error:
        raise ExportError(f"Could not write {out}: {error.strerror or error}.") from None
    return Exported(out, format, len(data))


# What TensorFlow writes in a SavedModel folder: a folder of only these may be replaced.
SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}


def _check_output(out: Path, format: str, overwrite: bool = False) -> None:
    """``ExportError`` before any conversion when ``out`` cannot be written, or exists and
    ``overwrite`` is not given, or is a folder that holds something other than a SavedModel."""
    if out.is_symlink():
        raise ExportError(f"{out} is a link; give the name of a file or folder to write.")
    if format != "saved_model" and out.is_dir():
        raise ExportError(f"{out} is a folder: give a file name, such as {out / ('model.' + format.split('-')[0])}.")
    if format == "saved_model" and out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file: a SavedModel is a folder; give a folder name.")
    try:
        entries = {entry.name for entry in out.iterdir()} if out.is_dir() else set()
    except OSError as error:
        raise ExportError(f"Could not read the folder {out}: {error.strerror or error}.") from None
    if entries and not ("saved_model.pb" in entries and entries <= SAVED_MODEL_ENTRIES):
        raise ExportError(f"{out} is a folder with other files in it, not a SavedModel; it was left as it is. "
                          "Give a new folder name.")
    if (out.is_file() or entries) and not overwrite:
        raise ExportError(f"{out} already exists; give another name, or --overwrite to replace it.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"Could not make the folder {out.parent}: {error.strerror or error}.") from None
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"Could not write in {out.parent}: permission denied.")


def _export_onnx(predictor: Predictor, out: Path) -> Exported:
    try:
        import tf2onnx
    except ImportError:
        raise ExportError("ONNX export needs tf2onnx: pip install tf2onnx onnxruntime.") from None
    import onnx

    function = _serving_function(predictor)
    model, _ = tf2onnx.convert.from_function(function, input_signature=_signature(predictor), opset=17)
    _rename_output(model, "probabilities")  # tf2onnx names it after the traced graph's "Identity:0"
    # What a reader of the file needs to use its output (as model.json says it), in the
    # model's own metadata: onnxruntime's ``get_modelmeta().custom_metadata_map``.
    onnx.helper.set_model_props(model, _description(predictor))
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / "model.onnx"
        onnx.save(model, str(staging))
        shutil.move(staging, out)
    return Exported(out, "onnx", out.stat().st_size)


SAVED_MODEL_DESCRIPTION = "rps.json"
# What a reader of an exported file needs to use its output, each as a string (``_description``).
DESCRIPTION_KEYS = ("class_names", "image_size", "input")


def _description(predictor: Predictor) -> dict[str, str]:
    values = (json.dumps(predictor.class_names), str(predictor.bundle.image_size), predictor.bundle.input_mode)
    return dict(zip(DESCRIPTION_KEYS, values))


def _with_tflite_metadata(data: bytes, entries: dict[str, str]) -> bytes:
    """The TFLite flatbuffer ``data`` with one metadata entry (a named buffer) per item."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    schema = flatbuffer_utils.schema_fb
    model.metadata = list(model.metadata or [])
    for name, value in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(value.encode(), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tflite_metadata(path: Path) -> dict[str, str]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    found = {}
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name in DESCRIPTION_KEYS:
            found[name] = bytes(model.buffers[entry.buffer].data).decode()
    return found


def _rename_output(model, name: str) -> None:
    """The ONNX graph's single output renamed ``name``, wherever a node writes or reads it."""
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [name if output == old else output for output in node.output]
        node.input[:] = [name if given == old else given for given in node.input]
    model.graph.output[0].name = name


class ExportedRunner:
    """Run an exported file on ``model_inputs`` rows: float64 probabilities (classes,)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if self.path.suffix == ".tflite":
            self._interpreter = tf.lite.Interpreter(model_path=str(self.path))
            self._interpreter.allocate_tensors()
            self._inputs = sorted(self._interpreter.get_input_details(), key=lambda detail: detail["index"])
            self._output = self._interpreter.get_output_details()[0]
            self.kind = "tflite"
        elif self.path.suffix == ".onnx":
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self.kind = "onnx"
        else:
            self._saved = tf.saved_model.load(str(self.path))
            self.kind = "saved_model"

    @property
    def metadata(self) -> dict[str, str]:
        """The file's own description: ``class_names`` (JSON), ``image_size``, ``input``."""
        if self.kind == "tflite":
            return _tflite_metadata(self.path)
        if self.kind == "onnx":
            return dict(self._session.get_modelmeta().custom_metadata_map)
        return json.loads((self.path / "assets" / SAVED_MODEL_DESCRIPTION).read_text())

    def run(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        if self.kind == "tflite":
            by_name = {detail["name"]: detail for detail in self._inputs}
            for detail, array in zip(self._ordered(by_name), inputs):
                self._interpreter.set_tensor(detail["index"], array)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"])[0].astype(np.float64)
        if self.kind == "onnx":
            names = [node.name for node in self._session.get_inputs()]
            return self._session.run(None, dict(zip(names, inputs)))[0][0].astype(np.float64)
        outputs = self._saved.serve(*[tf.constant(array) for array in inputs])
        return np.asarray(outputs)[0].astype(np.float64)

    @staticmethod
    def _ordered(by_name: dict) -> list[dict]:
        # In model_inputs' order (pixels, then keypoints); the converter names inputs after the
        # signature ("serving_default_keypoints:0" and the like).
        return sorted(by_name.values(), key=lambda detail: 0 if "pixels" in detail["name"] else 1)
