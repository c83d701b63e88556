"""The rps web app: classify a photo, classify the webcam live, train a model with live curves.

This file is the Hugging Face Space's ``app_file``.  It wires Gradio components to the ``rps``
library; ``create_app(service)`` builds the UI around any object with ``ModelService``'s
methods, so tests can hand it a fake.  ``python app.py`` serves the shipped model on
127.0.0.1:7860 (``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` are respected).

Who may train: locally, everyone (it is your machine).  On a Space (``SPACE_ID`` is set),
training is off unless the owner sets ``RPS_TRAINING=on``; with ``RPS_ADMIN_TOKEN`` set as a
Space secret, only people who type that token may start one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import html
import io
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from rps.native_logs import native_stderr_silenced  # noqa: E402

with native_stderr_silenced():
    # TensorFlow's start-up lines ("failed call to cuInit" on every machine without a GPU)
    # read like errors in a server log; they are printed once, here, into /dev/null.
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices()

from rps.architectures import ARCHITECTURES  # noqa: E402
from rps.augmentation import RECIPES  # noqa: E402
from rps.config import TrainConfig  # noqa: E402
from rps.devices import describe_device  # noqa: E402
from rps.errors import RpsError  # noqa: E402
from rps.images import FORMATS_TEXT, MAX_FILE_BYTES, check_header, is_blank, load_rgb  # noqa: E402
from rps.kaggle_download import download_dataset  # noqa: E402

log = logging.getLogger("rps.app")
HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(path) for path in (HERE / "assets" / "examples").glob("*.png"))
# The webcam is asked for a small frame: the model needs 96 px, and small frames keep the
# upload per frame near 10 kB so the server never builds a backlog.
WEBCAM = gr.WebcamOptions(mirror=True, constraints={"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}})
LIVE_FRAME_SECONDS = 0.1  # at most 10 frames per second per viewer
# A live frame larger than a 4K UHD webcam's (3840x2160) is dropped from its header, unread:
# each viewer's frames then cost at most 25 MB decoded, whatever a client sends.
LIVE_MAX_PIXELS = 3840 * 2160
POLL_SECONDS = 1.0
# The Classify and Live labels show this many of the most probable classes, whatever the
# served model has (3 for rock, paper, scissors; a 27-letter alphabet shows its top 5).
TOP_CLASSES = 5


class ImageFiles:
    """PNG files of result images, written atomically under their content's hash.

    Gradio writes an image a handler returns as an array to a file named by its content's
    hash, in place (``processing_utils.save_pil_to_cache``): when two visitors get the same
    image at once (the same example clicked), one request rewrites the file while the other's
    response streams it, and that download fails ("peer closed connection", 12 to 16% of
    requests with 32 clients).  A path returned instead is copied into Gradio's cache under a
    temporary name and renamed, which is atomic; so handlers return paths from here.  Files
    older than ``max_age_seconds`` are removed now and then (Gradio has copied them by then).
    """

    def __init__(self, folder: Path | None = None, max_age_seconds: float = 300.0):
        self.folder = Path(folder or tempfile.mkdtemp(prefix="rps-images-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_age_seconds = max_age_seconds
        self._writes = 0

    def path(self, image) -> str | None:
        """The file holding ``image`` (RGB uint8 array), or None for None."""
        if image is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image, np.uint8)).save(buffer, "PNG")
        data = buffer.getvalue()
        target = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        try:
            os.utime(target)  # reused: fresh again, so no prune removes it before Gradio copies it
        except FileNotFoundError:
            handle, staging = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(staging, target)
        self._writes += 1
        if self._writes % 200 == 0:
            self.prune()
        return str(target)

    def prune(self) -> None:
        limit = time.time() - self.max_age_seconds
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except OSError:
                pass


def user_error(message: str) -> gr.Error:
    """A ``gr.Error`` whose text shows literally: Gradio renders error messages as HTML, and
    a message may quote a class or file name a user chose.  No traceback is logged: the
    message is the whole story."""
    return gr.Error(html.escape(message), print_exception=False)


def unexpected_error(action: str, error: Exception) -> gr.Error:
    """For an exception the library did not anticipate: logged with its traceback for the
    operator, and a sentence for the user."""
    log.exception("%s failed", action)
    return user_error(f"{action} failed unexpectedly ({type(error).__name__}: {error}). The app "
                      "is still running: try again, and if it keeps failing, tell the operator.")


def escape_markdown(text: str) -> str:
    """User-chosen names (classes, files) shown literally inside Markdown: no HTML elements,
    no emphasis, links or tables."""
    escaped = html.escape(str(text), quote=False)
    return "".join("\\" + character if character in "\\`*_[]()#|!~" else character
                   for character in escaped)


def _raw_image(payload) -> str | bytes | None:
    """The file a ``gr.Image`` payload carries, undecoded: a path, or the bytes of a data URL
    (webcam frames and pasted images arrive so)."""
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        if len(url) > MAX_FILE_BYTES * 4 // 3 + 1024:  # base64 of the largest file accepted, unread
            raise user_error(f"The image is larger than {MAX_FILE_BYTES // 2**20} MB; resize or compress it first.")
        try:
            return base64.b64decode(url.partition(",")[2], validate=False)
        except (binascii.Error, ValueError):
            raise user_error(f"That image could not be read (bad data URL). Upload {FORMATS_TEXT}.") from None
    path = getattr(payload, "path", None)
    if not path:
        raise user_error(f"No image arrived. Upload {FORMATS_TEXT}.")
    return str(path)


def _undecoded_photo(payload):
    """A photo input's file, checked from its header only (see ``PhotoInput``)."""
    raw = _raw_image(payload)
    if raw is None:
        return None
    try:
        check_header(raw)
    except RpsError as error:
        raise user_error(str(error).replace(str(raw), "The upload") if isinstance(raw, str)
                         else str(error)) from None
    return raw


def _bounded_frame(payload):
    """A webcam frame, decoded by the library, or None (see ``LiveFrameInput``)."""
    try:
        raw = _raw_image(payload)
        if raw is None:
            return None
        width, height = check_header(raw)
        if width * height > LIVE_MAX_PIXELS:
            return None
        return load_rgb(raw)
    except (RpsError, gr.Error):
        return None


def _with_preprocess(component: gr.Image, preprocess) -> gr.Image:
    # The instance's own preprocess replaces gr.Image's decoding.  Not a subclass: Gradio
    # writes a stub file (app.pyi) beside the module of every component subclass on import.
    component.preprocess = preprocess
    return component


def PhotoInput(**options) -> gr.Image:  # noqa: N802 - named like the component it makes
    """``gr.Image`` that hands the uploaded file itself to the library.

    ``gr.Image`` opens, and may convert, an upload before any handler runs; here the file (a
    path, or the bytes of a pasted image or webcam snapshot) goes to ``rps.images`` untouched,
    after a header check that refuses what is not an image, or too large, with a sentence.  So
    the app decodes it exactly as ``Predictor`` and ``python -m rps predict`` do.
    """
    return _with_preprocess(gr.Image(**options), _undecoded_photo)


def LiveFrameInput(**options) -> gr.Image:  # noqa: N802
    """The Live tab's webcam stream: each frame is measured from its header and dropped
    (``None``) when over ``LIVE_MAX_PIXELS`` or unreadable, before it is decoded, then
    decoded by ``rps.images`` like every other door.  One bad frame never ends the stream."""
    return _with_preprocess(gr.Image(**options), _bounded_frame)


class TrainingPolicy:
    """Who may start a training: decided by the operator through the environment."""

    def __init__(self, enabled: bool, admin_token: str | None = None):
        self.enabled = enabled
        self.admin_token = admin_token or None

    @classmethod
    def from_environment(cls, environ=os.environ) -> "TrainingPolicy":
        setting = environ.get("RPS_TRAINING", "").strip().lower()
        on_space = bool(environ.get("SPACE_ID"))
        enabled = setting in ("on", "1", "true", "yes") or (not setting and not on_space)
        return cls(enabled, environ.get("RPS_ADMIN_TOKEN"))

    def describe(self) -> str:
        if not self.enabled:
            return ("Training is **off** on this deployment (it costs the owner compute and blocks "
                    "other users). The owner can enable it with the `RPS_TRAINING=on` setting.")
        if self.admin_token:
            return "Training is **on for admins**: enter the admin token to start one."
        return "Training is **on**. One training runs at a time for everyone."

    def check(self, token: str | None) -> None:
        if not self.enabled:
            raise user_error("Training is disabled on this deployment.")
        if self.admin_token and not hmac.compare_digest((token or "").encode(), self.admin_token.encode()):
            raise user_error("Training needs the admin token of this deployment.")


# --- classify ------------------------------------------------------------------------------


DECLINED_TEXT = {
    "no hand": "No hand found: hold one hand up, palm or back to the camera, fully in view.",
    "too dark": "Too dark to see a hand: turn on a light or face a window.",
}


def label_value(prediction):
    """What ``gr.Label`` shows: the ``TOP_CLASSES`` most probable classes, or the sentence
    saying why there are none."""
    if prediction.reason:
        return DECLINED_TEXT.get(prediction.reason, prediction.reason)
    return dict(sorted(prediction.items(), key=lambda item: -item[1])[:TOP_CLASSES])


def classify_image(service, image_path, files: ImageFiles | None = None):
    """The label and the crop the model saw (None when the photo was declined); with
    ``files``, the crop as the path of a PNG written atomically (``ImageFiles``)."""
    if image_path is None:
        return None, None
    try:
        prediction = service.classify(image_path)
    except RpsError as error:
        raise user_error(str(error)) from None
    except Exception as error:
        raise unexpected_error("Classifying the photo", error) from None
    return label_value(prediction), files.path(prediction.crop) if files else prediction.crop


def live_classify(service, frame, recent, files: ImageFiles | None = None):
    """One webcam frame: label, crop seen, frames per second achieved, this viewer's frame times."""
    recent = list(recent or [])[-19:]
    if frame is None or is_blank(frame):  # a camera starting up sends black frames
        return gr.skip(), gr.skip(), gr.skip(), recent
    try:
        prediction = service.classify(frame)
    except RpsError:
        return gr.skip(), gr.skip(), gr.skip(), recent  # one bad frame must not end the stream
    except Exception:
        log.exception("a live frame failed")
        return gr.skip(), gr.skip(), gr.skip(), recent
    recent.append(time.monotonic())
    span = recent[-1] - recent[0]
    rate = (len(recent) - 1) / span if span > 0 else 0.0
    seen = files.path(prediction.crop) if files else prediction.crop
    return label_value(prediction), seen, f"{rate:.1f} labelled frames per second", recent


# --- model card ----------------------------------------------------------------------------


def model_card(metadata: dict) -> str:
    metrics = metadata.get("metrics", {})
    training = metadata.get("training", {})
    config = metadata.get("config", {})
    lines = [
        f"### Served model: `{metadata.get('architecture', '?')}`",
        f"- Classes ({len(metadata['class_names'])}): "
        f"{', '.join(escape_markdown(name) for name in metadata['class_names'])}",
        (f"- Input: the hand found in the photo, as an aligned {metadata['image_size']}x{metadata['image_size']} "
         "RGB crop and its 21 keypoints; photos without a hand are answered \"no hand\""
         if metadata.get("input") == "hand"
         else f"- Input: the whole photo at {metadata['image_size']}x{metadata['image_size']} RGB"),
        f"- Parameters: {metadata.get('parameters', '?'):,}" if isinstance(metadata.get("parameters"), int)
        else "- Parameters: ?",
    ]
    for key, value in metrics.items():
        if value is not None:
            lines.append(f"- {key.replace('_', ' ')}: **{value:.2%}**" if isinstance(value, float)
                         else f"- {key.replace('_', ' ')}: {value}")
    if training:
        lines.append(f"- Trained {training.get('epochs_run', '?')} epochs on {training.get('device', '?')}"
                     f" in {training.get('seconds', '?')} s")
    if config:
        lines.append("\n| setting | value |\n|---|---|")
        lines.extend(f"| {key} | {value} |" for key, value in config.items())
    return "\n".join(lines)


def picture(path: Path):
    """A run's picture as pixels, or None: the page gets a copy in Gradio's cache, never a
    path into the state folder (which the server does not serve; see ``launch_options``)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError):
        return None


def history_text(history: list[dict]) -> str:
    """The served-model history, newest first, as Markdown."""
    if not history:
        return "\n\n### Served history\nThe bundled model has served since the start."
    rows = [f"| {entry.get('served_at', '?')} | `{escape_markdown(entry['model'])}` |" for entry in reversed(history)]
    return "\n\n### Served history (newest first)\n| since | model |\n|---|---|\n" + "\n".join(rows[:20])


def shipped_card_text(card: Path = HERE / "assets" / "MODEL_CARD.md") -> str:
    """The shipped model's card (``assets/MODEL_CARD.md``) for the Model tab: without its YAML
    metadata, and without its picture links (the tab shows the pictures itself)."""
    try:
        text = card.read_text()
    except OSError:
        return ""
    if text.startswith("---"):
        text = text.split("\n---", 1)[-1].lstrip("-\n")
    return "\n".join(line for line in text.splitlines() if not line.startswith("!["))


def served_model_view(service):
    folder = service.served_folder()
    history = service.served_history() if hasattr(service, "served_history") else []
    # The card describes assets/model and nothing else.
    card = shipped_card_text() if Path(folder).resolve() == (HERE / "assets" / "model").resolve() else ""
    return (
        model_card(service.served_metadata()) + history_text(history) + ("\n\n---\n\n" + card if card else ""),
        picture(folder / "curves.png"),
        picture(folder / "confusion.png"),
    )


# --- training ------------------------------------------------------------------------------


def curves_frame(history: list[dict], metric: str) -> pd.DataFrame:
    rows = [
        {"epoch": row["epoch"], "value": row[key], "series": key}
        for row in history
        for key in (metric, f"val_{metric}")
        if key in row
    ]
    # Explicit numeric types: an empty first frame must not make the plot treat values as labels.
    frame = pd.DataFrame(rows, columns=["epoch", "value", "series"])
    return frame.astype({"epoch": "int64", "value": "float64", "series": "str"})


def progress_text(job) -> str:
    snapshot = job.progress()
    parts = [f"**{job.status}** on {job.device}: {escape_markdown(job.dataset_description)}"]
    if snapshot.preparing and not snapshot.epochs:
        split, done, total = snapshot.preparing
        doing = "finding the hands in" if job.config.input == "hand" else "reading"
        parts.append(f"{doing} the {split} photos: {done}/{total}")
    if snapshot.epochs:
        parts.append(f"epoch {min(snapshot.epoch + 1, snapshot.epochs)}/{snapshot.epochs}, "
                     f"step {snapshot.step}/{snapshot.steps or '?'}")
    if snapshot.eta_seconds is not None and not job.done:
        parts.append(f"about {snapshot.eta_seconds:.0f} s left (early stopping may end sooner)")
    if job.message:
        parts.append(escape_markdown(job.message))
    return " · ".join(parts)


def results_text(job) -> str:
    result = job.result
    if result is None:
        return ""
    lines = [f"Run `{job.run_id}` ({result.seconds_per_epoch:.1f} s per epoch on {result.device}): "
             f"validation accuracy **{result.validation.accuracy:.2%}**"]
    if result.evaluation:
        lines[0] += f", test accuracy **{result.evaluation.accuracy:.2%}** on {result.evaluation.count} images"
        lines.append("")
        for name, scores in result.evaluation.per_class.items():
            lines.append(f"- {escape_markdown(name)}: precision {scores['precision']:.2f}, "
                         f"recall {scores['recall']:.2f}, F1 {scores['f1']:.2f}")
    comparison = getattr(job, "comparison", None)
    if comparison:
        lines.append(f"\nOn this run's {comparison['split']} photos ({comparison['photos']}): the new model "
                     f"**{comparison['new_accuracy']:.2%}**, the model serving now "
                     f"(`{escape_markdown(comparison['served_model'])}`) **{comparison['served_accuracy']:.2%}**.")
    dataset = result.metadata.get("dataset", {})
    if dataset.get("validation_split"):
        lines.append(f"\nValidation data: {dataset['validation_split']}.")
    skipped = dataset.get("skipped_unreadable") or []
    if skipped:
        lines.append(f"\nSkipped {len(skipped)} unreadable file(s), listed in the run's model.json:")
        lines.extend(f"- {escape_markdown(problem)}" for problem in skipped[:10])
    return "\n".join(lines)


def zip_run(folder: Path, downloads: Path) -> str:
    """A downloadable archive of the run, outside the run folder so the run stays untouched.

    Gradio copies it into its own cache (emptied by ``delete_cache``), so only the latest
    archive is kept here.
    """
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir(parents=True)
    # Written under another name and renamed when complete: a full disk leaves no
    # truncated archive to be served.  Raises OSError, which the caller reports.
    staging = downloads / f".{folder.name}.partial"
    try:
        written = shutil.make_archive(str(staging), "zip", root_dir=folder)
        return str(Path(written).replace(downloads / f"{folder.name}.zip"))
    except BaseException:
        shutil.rmtree(downloads, ignore_errors=True)
        raise


def resolve_training_data(service, state_dir: Path, source: str, upload, server_folder: str):
    if source == "Upload a .zip":
        if not upload:
            raise user_error("Upload a .zip of class folders (DIR/<class>/*.png) or of the Kaggle layout.")
        path = Path(upload if isinstance(upload, str) else upload.name)
        if path.suffix.lower() != ".zip":
            raise user_error("The upload must be a .zip file.")
        return path
    if source == "Kaggle: the study's dataset":
        # Fetched inside the training slot (rps.service), once, with its own progress line.
        return functools.partial(download_dataset, state_dir / "kaggle")
    return service.resolve_server_folder(server_folder or "")


def make_config(architecture, epochs, batch_size, learning_rate, image_size, augmentation,
                input_mode: str = "hand", skip_unreadable: bool = False, members=1) -> TrainConfig:
    def whole(value):
        return int(value) if value is not None and float(value).is_integer() else value

    # Empty means "the architecture's own rate"; zero or less reaches the config and is refused.
    rate = None if learning_rate in (None, "") else float(learning_rate)
    return TrainConfig(
        architecture=architecture, epochs=whole(epochs), batch_size=whole(batch_size),
        learning_rate=rate, image_size=whole(image_size), augmentation=augmentation, input=input_mode,
        skip_unreadable=bool(skip_unreadable), members=whole(members if members is not None else 1),
    )


# --- the UI --------------------------------------------------------------------------------


def create_app(service, policy: TrainingPolicy | None = None, state_dir: Path | None = None) -> gr.Blocks:
    """Build the Blocks around ``service`` (a ``rps.service.ModelService`` or a test fake)."""
    policy = policy or TrainingPolicy(enabled=True)
    state_dir = Path(state_dir or tempfile.mkdtemp(prefix="rps-app-"))
    # Model downloads are written outside the state folder, which the server never serves;
    # Gradio copies each into its cache under an unguessable name.
    downloads = Path(tempfile.mkdtemp(prefix="rps-downloads-"))
    seen_files = ImageFiles()

    # Uploaded photos and zips are deleted from Gradio's cache an hour after they arrive.
    with gr.Blocks(title="Rock Paper Scissors", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Rock · Paper · Scissors\nShow a hand: a hand landmarker finds it, and a small CNN "
                    "tells rock, paper or scissors from the hand's skeleton.")
        if getattr(service, "startup_warning", ""):
            gr.Markdown(f"> {service.startup_warning}")

        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    # image_mode=None: the raw file reaches the library, which decodes it as every
                    # other door does (Gradio would otherwise convert RGBA, grey or 16-bit first).
                    photo = PhotoInput(type="filepath", image_mode=None, sources=["upload", "clipboard", "webcam"],
                                       label="Photo of a hand", height=320, elem_id="photo")
                    if EXAMPLES:
                        gr.Examples(EXAMPLES, inputs=photo, label="Examples")
                with gr.Column():
                    label = gr.Label(label="Prediction", elem_id="prediction")
                    seen = gr.Image(label="The hand the model saw", interactive=False, height=200,
                                    elem_id="seen")
            photo.change(lambda path: classify_image(service, path, seen_files), photo, [label, seen],
                         api_name="classify", concurrency_limit=8)

        with gr.Tab("Live"):
            gr.Markdown("Allow the camera, press record, and show your hand. The newest frame always wins.")
            with gr.Row():
                camera = LiveFrameInput(sources=["webcam"], streaming=True, webcam_options=WEBCAM, type="numpy",
                                        label="Webcam", height=300)
                with gr.Column():
                    live_label = gr.Label(label="Live prediction", elem_id="live-prediction")
                    live_seen = gr.Image(label="The hand the model saw", interactive=False, height=160,
                                         elem_id="live-seen")
                    fps = gr.Markdown("", elem_id="fps")
            recent = gr.State(None)
            camera.stream(lambda frame, history: live_classify(service, frame, history, seen_files),
                          [camera, recent], [live_label, live_seen, fps, recent], api_name="live",
                          stream_every=LIVE_FRAME_SECONDS, time_limit=600, concurrency_limit=16,
                          show_progress="hidden")

        with gr.Tab("Train"):
            gr.Markdown(policy.describe() + f"\n\nTraining device: **{describe_device()}**")
            with gr.Row():
                with gr.Column():
                    source = gr.Radio(["Upload a .zip", "Kaggle: the study's dataset", "Server folder"],
                                      value="Upload a .zip", label="Data")
                    upload = gr.File(file_types=[".zip"], type="filepath", label="Dataset .zip", elem_id="dataset-zip")
                    server_folder = gr.Textbox(label="Folder inside the allowed data root (RPS_DATA_ROOT)")
                    token = gr.Textbox(label="Admin token", type="password", visible=bool(policy.admin_token))
                with gr.Column():
                    defaults = TrainConfig()
                    architecture = gr.Dropdown(sorted(ARCHITECTURES), value=defaults.architecture, label="Architecture")
                    epochs = gr.Number(defaults.epochs, label="Epochs", precision=0)
                    batch_size = gr.Number(defaults.batch_size, label="Batch size", precision=0)
                    learning_rate = gr.Number(ARCHITECTURES[defaults.architecture].learning_rate,
                                              label="Learning rate", minimum=0)
                    image_size = gr.Number(defaults.image_size, label="Input size (pixels)", precision=0)
                    augmentation = gr.Dropdown(list(RECIPES), value=defaults.augmentation, label="Augmentation")
                    input_kind = gr.Radio([("The hand, found first", "hand"), ("The whole photo", "image")],
                                          value=defaults.input, label="What the model sees",
                                          info="Whole photos for gestures that are not hands")
                    members = gr.Number(defaults.members, label="Models averaged (an ensemble)", precision=0,
                                        info="Each trains in turn from its own seed; the shipped model averages 3")
                    skip_unreadable = gr.Checkbox(False, label="Skip unreadable files",
                                                  info="Leave out files that cannot be decoded (listed with "
                                                       "the run) instead of stopping")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", interactive=policy.enabled)
                stop = gr.Button("Stop", variant="stop", interactive=policy.enabled)
            progress = gr.Markdown("", elem_id="train-progress")
            with gr.Row():
                loss_plot = gr.LinePlot(x="epoch", y="value", color="series", title="loss", height=250,
                                        elem_id="loss-plot")
                accuracy_plot = gr.LinePlot(x="epoch", y="value", color="series", title="accuracy", height=250)
            results = gr.Markdown("", elem_id="train-results")
            with gr.Row():
                confusion = gr.Image(label="Confusion matrix (test)", interactive=False, height=300)
                curves = gr.Image(label="Curves", interactive=False, height=300)
            download = gr.File(label="Trained model (.zip)", interactive=False)
            with gr.Row():
                run_id = gr.Textbox(label="Finished run", interactive=False)
                promote = gr.Button("Serve this model to everyone", interactive=False)
            with gr.Row(visible=False) as confirm_row:
                confirm_text = gr.Markdown()
                confirm = gr.Button("Yes, serve it to every visitor", variant="stop")
                cancel = gr.Button("Cancel")

            def run_training(source_kind, upload_path, folder, token_text, arch, n_epochs, batch, rate,
                             size, augment, input_mode="hand", skip_files=False, n_members=1):
                policy.check(token_text)
                try:
                    config = make_config(arch, n_epochs, batch, rate, size, augment, input_mode, skip_files,
                                         n_members)
                    yield {progress: f"Preparing data ({source_kind})…", results: "", confusion: None,
                           curves: None, download: None, run_id: "", promote: gr.update(interactive=False)}
                    data = resolve_training_data(service, state_dir, source_kind, upload_path, folder)
                    job = service.start_training(data, config)
                except RpsError as error:
                    raise user_error(str(error)) from None
                except gr.Error:
                    raise
                except Exception as error:
                    raise unexpected_error("Opening the training data", error) from None
                while True:
                    history = job.progress().history
                    done = job.done
                    update = {progress: progress_text(job)}
                    if history:  # no empty frames: a plot first drawn empty does not draw its lines later
                        update.update({loss_plot: curves_frame(history, "loss"),
                                       accuracy_plot: curves_frame(history, "accuracy")})
                    yield update
                    if done:
                        break
                    time.sleep(POLL_SECONDS)
                if job.status != "finished":
                    if job.status == "failed":
                        raise user_error(job.message)
                    return
                folder_path = job.result.folder
                summary = results_text(job)
                try:
                    archive = zip_run(folder_path, downloads)
                except OSError as error:  # a full or read-only disk: the run itself is saved
                    log.warning("the download of run %s could not be written: %s", job.run_id, error)
                    archive = None
                    summary += (f"\n\nThe download could not be written ({error.strerror or error}); the "
                                f"run is saved as `{job.run_id}` and can still be served.")
                yield {progress: progress_text(job), loss_plot: curves_frame(job.result.history, "loss"),
                       accuracy_plot: curves_frame(job.result.history, "accuracy"), results: summary,
                       confusion: picture(folder_path / "confusion.png"), curves: picture(folder_path / "curves.png"),
                       download: archive, run_id: job.run_id, promote: gr.update(interactive=True)}

            architecture.change(lambda name: ARCHITECTURES[name].learning_rate, architecture, learning_rate,
                                api_visibility="private")
            start.click(run_training,
                        [source, upload, server_folder, token, architecture, epochs, batch_size,
                         learning_rate, image_size, augmentation, input_kind, skip_unreadable, members],
                        [progress, loss_plot, accuracy_plot, results, confusion, curves, download, run_id, promote],
                        api_name="train", concurrency_limit=4)

            def stop_training(token_text):
                policy.check(token_text)
                return "Stopping…" if service.stop_training() else "No training is running."

            stop.click(stop_training, token, progress, api_name="stop_training")

        with gr.Tab("Model"):
            card = gr.Markdown()
            with gr.Row():
                serve_previous = gr.Button("Serve the previous model", interactive=policy.enabled)
                serve_bundled = gr.Button("Serve the bundled model", interactive=policy.enabled)
            with gr.Row():
                card_curves = gr.Image(label="Training curves", interactive=False)
                card_confusion = gr.Image(label="Confusion matrix", interactive=False)
            demo.load(lambda: served_model_view(service), None, [card, card_curves, card_confusion],
                      api_visibility="private")

        def promote_run(token_text, chosen_run):
            policy.check(token_text)
            if not chosen_run:
                raise user_error("Finish a training first.")
            return change_served(token_text, lambda: service.promote(chosen_run),
                                 "The new model now serves every visitor.", "Serving the new model")

        def ask_to_promote(chosen_run):
            """The question before a promotion, with what it would change (``results_text``)."""
            if not chosen_run:
                raise user_error("Finish a training first.")
            job = service.job
            comparison = getattr(job, "comparison", None) if job and job.run_id == chosen_run else None
            change = ""
            if comparison:
                change = (f" On this run's {comparison['split']} photos it scores "
                          f"{comparison['new_accuracy']:.2%}; the model serving now scores "
                          f"{comparison['served_accuracy']:.2%}.")
            return (gr.update(visible=True),
                    f"Serve run `{escape_markdown(chosen_run)}` to every visitor?{change} "
                    "The Model tab can go back to the previous or the bundled model.")

        def change_served(token_text, action, done_text, doing="Changing the served model"):
            """Run ``action`` (promote, previous, bundled) with the promotion permission; the
            Model tab's new view, or a sentence."""
            policy.check(token_text)
            try:
                action()
            except RpsError as error:
                raise user_error(str(error)) from None
            except Exception as error:
                raise unexpected_error(doing, error) from None
            gr.Info(done_text)
            return served_model_view(service)

        model_view = [card, card_curves, card_confusion]
        promote.click(ask_to_promote, run_id, [confirm_row, confirm_text], api_visibility="private")
        cancel.click(lambda: gr.update(visible=False), None, confirm_row, api_visibility="private")
        confirm.click(promote_run, [token, run_id], model_view, api_name="promote").then(
            lambda: gr.update(visible=False), None, confirm_row, api_visibility="private")
        serve_previous.click(lambda token_text: change_served(token_text, service.serve_previous,
                                                              "The previous model serves every visitor again."),
                             token, model_view, api_name="serve_previous")
        serve_bundled.click(lambda token_text: change_served(token_text, service.serve_bundled,
                                                             "The bundled model serves every visitor again."),
                            token, model_view, api_name="serve_bundled")

    return demo


def default_state_dir() -> Path:
    """Persistent storage on a Space (/data) when mounted, else a per-user cache folder."""
    if os.environ.get("RPS_STATE_DIR"):
        return Path(os.environ["RPS_STATE_DIR"])
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/rps")
    return Path.home() / ".cache" / "rps"


def build_from_environment() -> tuple[gr.Blocks, Path]:
    from rps.service import ModelService

    state_dir, problem = writable_state_dir(default_state_dir())
    service = ModelService(state_dir, data_root=os.environ.get("RPS_DATA_ROOT"))
    if problem:
        service.startup_warning = " ".join(filter(None, [problem, service.startup_warning]))
    return create_app(service, TrainingPolicy.from_environment(), state_dir), state_dir


def writable_state_dir(wanted: Path) -> tuple[Path, str]:
    """``wanted`` when it can be created and written, else a temporary folder and a sentence
    saying so (the app still serves; runs and promotions then end with the process)."""
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=wanted, prefix=".write-check-"):
            pass
        return wanted, ""
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="rps-state-"))
        message = (f"The state folder {wanted} is not writable ({error.strerror or error}); trainings and "
                   f"promotions are kept in {fallback} until the server stops. Set RPS_STATE_DIR to a "
                   "writable folder.")
        log.warning(message)
        return fallback, message


def launch_options(state_dir: Path) -> dict:
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_file_size": MAX_FILE_BYTES * 25,  # dataset zips; photos are checked again at 40 MB
        # Nothing of the state folder (runs, served.json, uploads being unpacked) is served:
        # the pages get copies of what they show (``picture``, ``zip_run``).  The operator's own
        # GRADIO_BLOCKED_PATHS are kept.
        "allowed_paths": [],
        "blocked_paths": [str(state_dir)] + [path for path in os.environ.get("GRADIO_BLOCKED_PATHS", "").split(",")
                                             if path.strip()],
    }


if __name__ == "__main__":
    app, state = build_from_environment()
    # One line instead of TensorFlow's device probing (silenced above): what runs, and where.
    print(f"rps: training device {describe_device()}; state folder {state}", flush=True)
    app.queue(default_concurrency_limit=8).launch(**launch_options(state))
