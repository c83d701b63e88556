"""A saved model is a folder that describes itself.

``model.keras`` sits next to ``model.json`` (class names, input size, config, dataset
fingerprint, measured metrics), so loading needs nothing else.  Runs are written into a hidden
staging folder and renamed into place only when complete: a stopped, failed or killed run never
leaves a half-written model where a complete one is expected.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras

from rps import architectures  # noqa: F401  (registers the custom layers that models use)
from rps.errors import ModelFileError

MODEL_FILE = "model.keras"
METADATA_FILE = "model.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelBundle:
    model: keras.Model
    metadata: dict
    folder: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def image_size(self) -> int:
        return int(self.metadata["image_size"])

    @property
    def input_mode(self) -> str:
        """``"hand"`` or ``"image"`` (``rps.preprocessing``); older folders took whole images."""
        return str(self.metadata.get("input", "image"))


def model_folder(path: Path | str) -> Path:
    """Accept the run folder or the ``model.keras`` inside it."""
    path = Path(path)
    return path.parent if path.suffix == ".keras" else path


def read_metadata(path: Path | str) -> dict:
    folder = model_folder(path)
    metadata_path = folder / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelFileError(f"{metadata_path} is missing: a model folder needs it beside {MODEL_FILE}.")
    try:
        metadata = json.loads(metadata_path.read_text())
        class_names, image_size = metadata["class_names"], int(metadata["image_size"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{metadata_path} is not valid model metadata ({error}).") from None
    if len(class_names) < 2 or image_size < 1:
        raise ModelFileError(f"{metadata_path} declares no usable classes or input size.")
    return metadata


def load_bundle(path: Path | str) -> ModelBundle:
    """Load a model folder; raise ``ModelFileError`` with the reason if it is unusable."""
    folder = model_folder(path)
    model_path = folder / MODEL_FILE
    if folder.is_file():  # an exported .onnx or .tflite, say: for other runtimes, not for this one
        raise ModelFileError(f"{folder} is a file; give a model folder (with {MODEL_FILE} and "
                             f"{METADATA_FILE}), such as a run folder.")
    if not model_path.is_file():
        raise ModelFileError(f"No model at {model_path}.")
    metadata = read_metadata(folder)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{model_path} is corrupt or not a Keras model ({error}).") from None
    expected = (None, metadata["image_size"], metadata["image_size"], 3)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    pixels = [tuple(shape) for shape in shapes if len(shape) == 4]
    # A model of the skeleton alone takes no pixels; the crop size then only sizes the display.
    if pixels not in ([expected], []) or model.output_shape[-1] != len(metadata["class_names"]):
        raise ModelFileError(
            f"{model_path} takes {model.input_shape} and gives {model.output_shape[-1]} classes, "
            f"but {METADATA_FILE} declares {expected} and {len(metadata['class_names'])} classes."
        )
    if metadata.get("input", "image") not in ("hand", "image"):
        raise ModelFileError(f"{folder / METADATA_FILE} declares an unknown input {metadata['input']!r}.")
    return ModelBundle(model, metadata, folder)


def save_for_inference(model: keras.Model, path: Path) -> None:
    """Save weights and graph without the optimiser state, which would triple the file (Adam).

    Re-wrapping the same layers in an uncompiled functional model shares every weight.
    """
    keras.Model(model.input, model.output, name=model.name).save(path)


def write_json(path: Path, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def new_run_id() -> str:
    """A run's name: its local start time and 6 random hex digits, ``YYYYmmdd-HHMMSS-xxxxxx``
    (sorts by time; two runs started in one second never clash)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def check_output_folder(out_dir: Path) -> None:
    """Fail before training, not after, when the run folder is taken or cannot be made.

    Raises ``ModelFileError`` when ``out_dir`` exists and is not an empty folder, or when its
    nearest existing parent refuses a new folder (tried with a temporary one, removed at once:
    permissions alone do not tell, e.g. under /proc or on a read-only mount).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ModelFileError(f"{out_dir} already exists and is not empty; choose a new --out folder.")
    parent = out_dir.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        Path(tempfile.mkdtemp(prefix=".rps-write-check-", dir=parent)).rmdir()
    except OSError as error:
        raise ModelFileError(f"The run folder {out_dir} cannot be created: {parent} does not accept new "
                             f"folders ({error.strerror or error}); choose another --out folder.") from None


def staging_folder(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))


def publish(staging: Path, out_dir: Path) -> Path:
    """Move a complete staging folder into place in one rename."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    if out_dir.exists():
        out_dir.rmdir()
    # mkdtemp made the staging folder private (0700); a run folder is read like any other.
    staging.chmod(0o755)
    os.replace(staging, out_dir)
    return out_dir


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
