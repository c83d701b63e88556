"""The Teach tab: name your classes, show each to the webcam (or upload photos), train a
personal model in seconds, use it in Classify, Live and Play, download it, or serve it to everyone.

Each visitor's samples and model live in their own ``rps.teach.TeachSession``, keyed by the
Gradio session (one page load), and are deleted when the page is closed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import gradio as gr

from rps.callbacks import ProgressRecorder
from rps.errors import DatasetError, RpsError
from rps.finetune import DEFAULT_EPOCHS, HELD_OUT_FRACTION, MAX_EPOCHS, MIN_PER_CLASS
from rps.policy import TrainingPolicy
from rps.reports import escape_markdown
from rps.storage import zip_folder
from rps.teach import MAX_CLASSES, MAX_SAMPLES_PER_CLASS, TeachSession, TeachSessions, parse_class_names
from ui.inputs import WEBCAM, LiveFrameInput, calling, user_error
from ui.model import Promotion, admin_token_box, promotion_controls
from ui.train import curves_frame

CAPTURE_SECONDS = 0.3  # frames captured about 3 times a second while capturing is on
POLL_SECONDS = 0.5
GALLERY_EVERY = 3  # while capturing, the gallery is redrawn every third sample (the counter every one)
# Hold to capture: the page (``app.launch_options``' js) ticks the "Capturing" box while the
# pointer, or Space or Enter on the focused button, is held down on the capture button, and
# unticks it when released anywhere; but never before two capture periods have passed, so a
# click or a key tap captures a frame or two instead of nothing.
HOLD_TO_CAPTURE_JS = """
() => {
  const SHORTEST_MS = %d;
  let held = false, since = 0, timer = null;
  const box = () => document.querySelector('#teach-capturing input[type=checkbox]');
  const set = (on) => { const b = box(); if (b && b.checked !== on) b.click(); };
  const press = () => { clearTimeout(timer); held = true; since = Date.now(); set(true); };
  const release = () => {
    if (!held) return;
    held = false;
    timer = setTimeout(() => set(false), Math.max(0, SHORTEST_MS - (Date.now() - since)));
  };
  const onButton = (event) => event.target.closest && event.target.closest('#teach-capture');
  const isKey = (event) => event.key === ' ' || event.key === 'Enter';
  document.addEventListener('pointerdown', (event) => { if (onButton(event)) press(); });
  document.addEventListener('pointerup', release);
  document.addEventListener('pointercancel', release);
  document.addEventListener('keydown', (event) => {
    if (isKey(event) && onButton(event)) { event.preventDefault(); if (!event.repeat) press(); }
  });
  document.addEventListener('keyup', (event) => { if (isKey(event)) release(); });
}
""" % round(2000 * CAPTURE_SECONDS)

INTRO = (f"Teach the app your own gestures: name two to {MAX_CLASSES} classes, then for each one "
         "hold *Hold to capture* (or tick *Capturing*) while you show your hand to the webcam: about "
         "3 frames a second become samples, and a click takes one or two. Or upload "
         f"photos. {MIN_PER_CLASS} samples per class are the least; 20 or more in your own room and "
         "light work best. *Train my model* fine-tunes a new head on the shipped model's hand features "
         "in seconds; Classify, Live and Play then use your model, for you alone. Your samples and model "
         "are deleted when you close the page.")


class SamplesView(NamedTuple):
    counts: str  # Markdown: samples per class
    gallery: Any  # the chosen class's samples as (path, caption) items, or gr.skip()


class ClassesView(NamedTuple):
    chosen: Any  # gr.update of the class radio
    counts: str
    gallery: Any


def counts_text(session: TeachSession) -> str:
    if not session.class_names:
        return "No classes yet: name them above and press *Set classes*."
    parts = []
    for name, count in session.counts().items():
        needs = f" (needs {MIN_PER_CLASS})" if count < MIN_PER_CLASS else ""
        parts.append(f"**{escape_markdown(name)}**: {count}{needs}")
    return "Samples: " + " · ".join(parts) + f" (at most {MAX_SAMPLES_PER_CLASS} per class)"


def gallery_items(session: TeachSession, name: str | None) -> list[tuple[str, str]]:
    if not name or name not in session.class_names:
        return []
    return [(str(path), str(index)) for index, path in enumerate(session.samples(name), 1)]


def samples_view(session: TeachSession, name: str | None, gallery: bool = True) -> SamplesView:
    return SamplesView(counts_text(session), gallery_items(session, name) if gallery else gr.skip())


def set_classes(sessions: TeachSessions, text: str, request: gr.Request) -> ClassesView:
    names = calling("Setting the classes", parse_class_names, text or "")  # checked before a session starts
    session = calling("Setting the classes", sessions.start, request.session_hash)
    deleted = calling("Setting the classes", session.set_classes, names)
    if deleted:
        gr.Warning("Deleted with their class: " + ", ".join(
            f"{count} sample{'s' if count > 1 else ''} of '{name}'" for name, count in deleted.items()) + ".")
    first = session.class_names[0]
    return ClassesView(gr.update(choices=session.class_names, value=first), counts_text(session),
                       gallery_items(session, first))


def capture_frame(sessions: TeachSessions, frame, capturing: bool, name: str | None,
                  request: gr.Request) -> SamplesView:
    """While capturing is on, a webcam frame becomes a sample of the chosen class."""
    if not capturing or frame is None or not name:
        return SamplesView(gr.skip(), gr.skip())
    session = sessions.find(request.session_hash)
    if session is None:
        return SamplesView(gr.skip(), gr.skip())
    try:
        session.add_sample(name, frame)
    except DatasetError as error:
        gr.Warning(str(error))
        return SamplesView(counts_text(session), gr.skip())
    count = len(session.samples(name))
    return samples_view(session, name, gallery=count % GALLERY_EVERY == 0)


def add_uploads(sessions: TeachSessions, files, name: str | None, request: gr.Request) -> SamplesView:
    if not files:
        return SamplesView(gr.skip(), gr.skip())
    if not name:  # a warning, not an error: the upload box is then cleared, nothing kept for later
        gr.Warning("Set the classes and choose one before adding photos; these were not added.")
        return SamplesView(gr.skip(), gr.skip())
    session = calling("Adding the photos", sessions.get, request.session_hash)
    paths = [file if isinstance(file, str) else getattr(file, "name", file) for file in files]
    added, problems = calling("Adding the photos", session.add_samples, name, paths)
    if problems:
        gr.Warning(f"{len(problems)} photo(s) were not added: {problems[0]}")
    return samples_view(session, name)


def delete_sample(sessions: TeachSessions, index: int | None, name: str | None,
                  request: gr.Request) -> SamplesView:
    session = calling("Deleting the sample", sessions.get, request.session_hash)
    if index is None or not name:
        raise user_error("Click a sample in the gallery first.")
    samples = calling("Deleting the sample", session.samples, name)
    if not 0 <= index < len(samples):
        raise user_error("That sample is gone already.")
    calling("Deleting the sample", session.delete_sample, samples[index])
    return samples_view(session, name)


def downloads(session: TeachSession, what: str) -> Path:
    """Where the session's zip of ``what`` (its model, its samples) is written."""
    return session.folder / "downloads" / what


def checked_epochs(value) -> int:
    """The Epochs box's value as a whole number, or a sentence for the page."""
    if value is None or not 1 <= value <= MAX_EPOCHS or value != int(value):
        got = "" if value is None else f", got {value:g}"
        raise user_error(f"Epochs must be a whole number from 1 to {MAX_EPOCHS}{got}.")
    return int(value)


def pack_samples(sessions: TeachSessions, request: gr.Request):
    """The visitor's samples as a class-folder zip, or a warning and no change: an error would
    leave an "Error" badge on the file box until the next download."""
    try:
        session = sessions.get(request.session_hash)
        return session.dataset_zip(downloads(session, "samples"))
    except RpsError as error:
        gr.Warning(str(error))
        return gr.skip()


class TeachTab(NamedTuple):
    promotion: Promotion  # for ui.model.wire_promotion
    end_session: Callable[[gr.Request], None]  # for Blocks.unload: the visitor's files go


def build_teach_tab(sessions: TeachSessions, base_folder: Callable[[], Path], policy: TrainingPolicy) -> TeachTab:
    """The Teach tab; returns its promotion controls and the handler that ends a session.

    ``base_folder``: a function giving the folder of the model to fine-tune from (the one
    serving when the visitor presses Train).
    """
    with gr.Tab("Teach"):
        gr.Markdown(INTRO)
        with gr.Row():
            names = gr.Textbox("rock, paper, scissors", label="Your classes, separated by commas", scale=4,
                               elem_id="teach-classes")
            set_names = gr.Button("Set classes", scale=1, elem_id="teach-set-classes")
        chosen = gr.Radio([], label="Class to add samples to", elem_id="teach-class")
        with gr.Row():
            with gr.Column():
                camera = LiveFrameInput(sources=["webcam"], streaming=True, webcam_options=WEBCAM, type="numpy",
                                        label="Webcam (press record, then hold the button below)", height=260,
                                        elem_id="teach-camera")
                with gr.Row():
                    # Held down, it ticks "Capturing" (HOLD_TO_CAPTURE_JS); no handler of its own.
                    gr.Button("Hold to capture", variant="secondary", elem_id="teach-capture", scale=3)
                    capturing = gr.Checkbox(False, label="Capturing", elem_id="teach-capturing", scale=1)
                uploads = gr.File(file_count="multiple", file_types=["image"], type="filepath",
                                  label="Or upload photos of the chosen class", elem_id="teach-upload")
            with gr.Column():
                counts = gr.Markdown("No classes yet: name them above and press *Set classes*.",
                                     elem_id="teach-counts")
                gallery = gr.Gallery(label="Samples of the chosen class (click one to select it)", columns=6,
                                     height=260, allow_preview=False, elem_id="teach-gallery")
                delete = gr.Button("Delete the selected sample")
        with gr.Row():
            # Bounds are checked by the handler: the component's own minimum answered 0 with a
            # bare "Error" on every output and a traceback in the server's log.
            epochs = gr.Number(DEFAULT_EPOCHS, label=f"Epochs (1 to {MAX_EPOCHS})", precision=0,
                               elem_id="teach-epochs")
            train = gr.Button("Train my model", variant="primary", elem_id="teach-train")
            forget = gr.Button("Use the shared model again")
            download_samples = gr.Button("Download my samples (.zip)")
        progress = gr.Markdown("", elem_id="teach-progress")
        with gr.Row():
            loss_plot = gr.LinePlot(x="epoch", y="value", color="series", title="loss", height=220)
            accuracy_plot = gr.LinePlot(x="epoch", y="value", color="series", title="accuracy", height=220)
        results = gr.Markdown("", elem_id="teach-results")
        with gr.Row():
            confusion = gr.Image(label="Confusion matrix (held-out samples)", interactive=False, height=260)
            with gr.Column():
                model_zip = gr.File(label="Your model (.zip)", interactive=False)
                samples_zip = gr.File(label="Your samples (.zip of class folders, for the Train tab)",
                                      interactive=False)
        token = admin_token_box(policy)
        promotion = promotion_controls(token, "Serve my model to everyone")
    selected = gr.State(None)

    def after_capture(on: bool, name: str | None, request: gr.Request):
        # The full gallery once capturing stops (during it, every GALLERY_EVERY-th sample).
        session = sessions.find(request.session_hash)
        if on or session is None:
            return SamplesView(gr.skip(), gr.skip())
        return samples_view(session, name)

    def choose(name: str | None, request: gr.Request):
        session = sessions.find(request.session_hash)
        return (gallery_items(session, name) if session else []), None

    def remember_selection(event: gr.SelectData):
        return event.index

    def run(n_epochs, request: gr.Request):
        n_epochs = checked_epochs(n_epochs)
        session = calling("Checking the samples", sessions.get, request.session_hash)
        calling("Checking the samples", session.check_ready)
        recorder, outcome = ProgressRecorder(), {}

        def work():
            try:
                outcome["result"] = sessions.train(session, base_folder(), n_epochs, [recorder])
            except Exception as error:  # reported below, in the page
                outcome["error"] = error

        worker = threading.Thread(target=work, name="teach-finetune", daemon=True)
        worker.start()
        started = time.monotonic()
        while worker.is_alive():
            snapshot = recorder.snapshot()
            line = f"Training your model: {time.monotonic() - started:.0f} s"
            if snapshot.refitting:
                line += f", scored; now fitting it on all {snapshot.refitting} of your samples"
            elif snapshot.preparing and not snapshot.epochs:
                split, done, total = snapshot.preparing
                part = "held back" if split == "validation" else "to train on"
                line += f", finding the hands in your samples: {done}/{total} {part}"
            elif snapshot.epochs:
                line += f", epoch {min(snapshot.epoch + 1, snapshot.epochs)}/{snapshot.epochs}"
            update = {progress: line}
            if snapshot.history:
                update |= {loss_plot: curves_frame(snapshot.history, "loss"),
                           accuracy_plot: curves_frame(snapshot.history, "accuracy")}
            yield update
            worker.join(POLL_SECONDS)
        if "error" in outcome:
            yield {progress: ""}
            calling("Training your model", _raise, outcome["error"])
        result = outcome["result"]
        held_out = result.held_out
        summary = (f"Your model (`{result.folder.name}`): **{held_out.accuracy:.1%}** on your latest "
                   f"{held_out.count} samples (the last {HELD_OUT_FRACTION:.0%} of each class), held back from training")
        if result.refitted:
            summary += (f"; it was then fit again on all "
                        f"{result.metadata['dataset']['served_model_fit_on']} of your samples with a hand")
        summary += (f"; trained in {result.seconds:.0f} s. Classify, Live and Play now use it, for you alone.")
        found = result.metadata.get("dataset", {}).get("hands_found") or {}
        pairs = [value for value in found.values() if isinstance(value, list) and len(value) == 2]
        if pairs:  # per split: [samples with a hand found, samples]
            hands, samples = sum(pair[0] for pair in pairs), sum(pair[1] for pair in pairs)
            summary += f" A hand was found in {hands} of your {samples} samples"
            left_out = samples - hands
            summary += ("." if not left_out else f"; the {'other was' if left_out == 1 else f'other {left_out} were'} "
                        "left out (show the whole hand).")
        archive = zip_folder(result.folder, downloads(session, "model"), "my-model")
        yield {progress: f"Trained in {result.seconds:.0f} s.", results: summary,
               loss_plot: curves_frame(result.history, "loss"), accuracy_plot: curves_frame(result.history, "accuracy"),
               # A path in the session's folder (served from there; app.py), not pixels that Gradio
               # would copy into its cache to outlive the visitor.
               confusion: _existing(result.folder / "confusion.png"), model_zip: archive,
               promotion.run_id: result.folder.name, promotion.ask: gr.update(interactive=True)}

    def use_shared(request: gr.Request):
        session = sessions.find(request.session_hash)
        if session is not None:
            session.forget_model()
        return ("Classify, Live and Play use the shared model again.", None, "", gr.update(interactive=False))

    def samples_archive(request: gr.Request):
        return pack_samples(sessions, request)

    def end_session(request: gr.Request):
        sessions.end(request.session_hash)

    def on_set_classes(text: str, request: gr.Request) -> ClassesView:
        return set_classes(sessions, text, request)

    def on_frame(frame, on: bool, name: str | None, request: gr.Request) -> SamplesView:
        return capture_frame(sessions, frame, on, name, request)

    def on_upload(files, name: str | None, request: gr.Request) -> SamplesView:
        return add_uploads(sessions, files, name, request)

    def on_delete(index: int | None, name: str | None, request: gr.Request) -> SamplesView:
        return delete_sample(sessions, index, name, request)

    private = {"api_visibility": "private"}
    set_names.click(on_set_classes, names, [chosen, counts, gallery], api_name="teach_classes")
    quiet = {"show_progress": "hidden", **private}  # no timer flickering over the counter
    chosen.change(choose, chosen, [gallery, selected], **quiet)
    capturing.change(after_capture, [capturing, chosen], [counts, gallery], **quiet)
    camera.stream(on_frame, [camera, capturing, chosen], [counts, gallery], stream_every=CAPTURE_SECONDS,
                  time_limit=600, concurrency_limit=16, show_progress="hidden", **private)
    uploads.upload(on_upload, [uploads, chosen], [counts, gallery], api_name="teach_upload",
                   show_progress="hidden").then(lambda: None, None, uploads, **private)
    gallery.select(remember_selection, None, selected, **private)
    delete.click(on_delete, [selected, chosen], [counts, gallery], **quiet).then(lambda: None, None, selected,
                                                                                   **private)
    # One fine-tuning at a time for the whole server: the others wait in Gradio's queue.
    train.click(run, epochs, [progress, loss_plot, accuracy_plot, results, confusion, model_zip, promotion.run_id,
                              promotion.ask], api_name="teach_train", concurrency_limit=1,
                concurrency_id="teach-train")
    forget.click(use_shared, None, [results, model_zip, promotion.run_id, promotion.ask], api_name="teach_forget")
    download_samples.click(samples_archive, None, samples_zip, api_name="teach_samples")
    return TeachTab(promotion, end_session)


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _raise(error: Exception):
    raise error
