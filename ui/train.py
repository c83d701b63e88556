"""The Train tab: a dataset (zip, Kaggle, server folder), the settings, live curves, the
results, the trained model as a download, and the way to serve it to everyone."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import pandas as pd

from rps.architectures import ARCHITECTURES
from rps.augmentation import RECIPES
from rps.config import TrainConfig, config_from_form
from rps.devices import describe_device
from rps.kaggle_download import download_dataset
from rps.policy import TrainingPolicy
from rps.reports import progress_line, run_results
from rps.storage import read_picture, temporary_folder, zip_folder
from ui.inputs import calling, user_error
from ui.model import Promotion, admin_token_box, promotion_controls

log = logging.getLogger("rps.app")
POLL_SECONDS = 1.0
UPLOAD, KAGGLE, SERVER_FOLDER = "Upload a .zip", "Kaggle: the study's dataset", "Server folder"


def curves_frame(history: list[dict], metric: str) -> pd.DataFrame:
    """``gr.LinePlot`` data for ``metric`` and ``val_<metric>``: columns epoch (int64), value
    (float64), series (str)."""
    rows = [
        {"epoch": row["epoch"], "value": row[key], "series": key}
        for row in history
        for key in (metric, f"val_{metric}")
        if key in row
    ]
    # Explicit numeric types: an empty first frame must not make the plot treat values as labels.
    frame = pd.DataFrame(rows, columns=["epoch", "value", "series"])
    return frame.astype({"epoch": "int64", "value": "float64", "series": "str"})


def resolve_training_data(service, state_dir: Path, source: str, upload, server_folder: str):
    """The training data a form names: an uploaded zip's path, a function that downloads the
    study's dataset from Kaggle (run inside the training slot by ``rps.service``), or a
    folder inside the operator's data root."""
    if source == UPLOAD:
        if not upload:
            raise user_error("Upload a .zip of class folders (DIR/<class>/*.png) or of the Kaggle layout.")
        path = Path(upload if isinstance(upload, str) else upload.name)
        if path.suffix.lower() != ".zip":
            raise user_error("The upload must be a .zip file.")
        return path
    if source == KAGGLE:
        return functools.partial(download_dataset, state_dir / "kaggle")
    return service.resolve_server_folder(server_folder or "")


class TrainTab(NamedTuple):
    promotion: Promotion


def build_train_tab(service, policy: TrainingPolicy, state_dir: Path) -> TrainTab:
    # Model downloads are written outside the state folder, which the server never serves;
    # Gradio copies each into its cache under an unguessable name.
    downloads = temporary_folder("rps-downloads-")
    with gr.Tab("Train"):
        gr.Markdown(policy.describe() + f"\n\nTraining device: **{describe_device()}**")
        with gr.Row():
            with gr.Column():
                source = gr.Radio([UPLOAD, KAGGLE, SERVER_FOLDER], value=UPLOAD, label="Data")
                upload = gr.File(file_types=[".zip"], type="filepath", label="Dataset .zip", elem_id="dataset-zip")
                server_folder = gr.Textbox(label="Folder inside the allowed data root (RPS_DATA_ROOT)", visible=False)
                token = admin_token_box(policy)
            with gr.Column():
                defaults = TrainConfig()
                architecture = gr.Dropdown(sorted(ARCHITECTURES), value=defaults.architecture, label="Architecture")
                epochs = gr.Number(defaults.epochs, label="Epochs", precision=0)
                batch_size = gr.Number(defaults.batch_size, label="Batch size", precision=0)
                learning_rate = gr.Number(ARCHITECTURES[defaults.architecture].learning_rate,
                                          label="Learning rate", minimum=0)
                image_size = gr.Number(defaults.image_size, label="Image size (pixels)", precision=0)
                augmentation = gr.Dropdown(list(RECIPES), value=defaults.augmentation, label="Augmentation")
                input_kind = gr.Radio([("The hand, found first", "hand"), ("The whole photo", "image")],
                                      value=defaults.input, label="What the model sees",
                                      info="Whole photos for gestures that are not hands")
                members = gr.Number(defaults.members, label="Members (models averaged, an ensemble)", precision=0,
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
            confusion = gr.Image(label="Confusion matrix (its title names the set)", interactive=False, height=300)
            curves = gr.Image(label="Curves", interactive=False, height=300)
        download = gr.File(label="Trained model (.zip)", interactive=False)
        promotion = promotion_controls(token)

    started_by: dict[str, str | None] = {}  # run id -> the session (page) that started it; the latest only

    def run_training(source_kind, upload_path, folder, token_text, arch, n_epochs, batch, rate,
                     size, augment, input_mode="hand", skip_files=False, n_members=1,
                     request: gr.Request | None = None):
        """Yields updates keyed by component: progress, curves, then the results."""
        calling("Starting the training", policy.check, token_text)
        config = calling("Reading the settings", config_from_form, arch, n_epochs, batch, rate, size, augment,
                         input_mode, skip_files, n_members)
        yield {progress: f"Preparing data ({source_kind})…", results: "", confusion: None, curves: None,
               download: None, promotion.run_id: "", promotion.ask: gr.update(interactive=False)}
        try:
            data = calling("Opening the training data", resolve_training_data, service, state_dir, source_kind,
                           upload_path, folder)
            job = calling("Opening the training data", service.start_training, data, config)
            started_by.clear()
            started_by[job.run_id] = request.session_hash if request else None
        except gr.Error:
            yield {progress: ""}  # not "Preparing data" beside the error
            raise
        while True:
            history = job.progress().history
            done = job.done
            update = {progress: progress_line(job)}
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
        run_folder = job.result.folder
        summary = run_results(job)
        try:
            archive = zip_folder(run_folder, downloads)
        except OSError as error:  # a full or read-only disk: the run itself is saved
            log.warning("the download of run %s could not be written: %s", job.run_id, error)
            archive = None
            summary += (f"\n\nThe download could not be written ({error.strerror or error}); the "
                        f"run is saved as `{job.run_id}` and can still be served.")
        yield {progress: progress_line(job), loss_plot: curves_frame(job.result.history, "loss"),
               accuracy_plot: curves_frame(job.result.history, "accuracy"), results: summary,
               confusion: read_picture(run_folder / "confusion.png"), curves: read_picture(run_folder / "curves.png"),
               download: archive, promotion.run_id: job.run_id, promotion.ask: gr.update(interactive=True)}

    def stop_training(token_text, request: gr.Request | None = None):
        job = getattr(service, "job", None)
        starter = started_by.get(job.run_id) if job is not None else None
        calling("Stopping the training", policy.may_stop, token_text, starter, request.session_hash if request else None)
        return "Stopping…" if service.stop_training() else "No training is running."

    architecture.change(lambda name: ARCHITECTURES[name].learning_rate, architecture, learning_rate,
                        api_visibility="private")
    # Only the data box of the chosen source shows.
    source.change(lambda kind: (gr.update(visible=kind == UPLOAD), gr.update(visible=kind == SERVER_FOLDER)),
                  source, [upload, server_folder], api_visibility="private")
    start.click(run_training,
                [source, upload, server_folder, promotion.token, architecture, epochs, batch_size,
                 learning_rate, image_size, augmentation, input_kind, skip_unreadable, members],
                [progress, loss_plot, accuracy_plot, results, confusion, curves, download, promotion.run_id,
                 promotion.ask],
                api_name="train", concurrency_limit=4)
    stop.click(stop_training, promotion.token, progress, api_name="stop_training")
    return TrainTab(promotion)
