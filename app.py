"""The rps web app: classify a photo or the webcam live, play the game, teach it your gestures, train.

This file is the Hugging Face Space's ``app_file``.  ``create_app(service)`` assembles the tabs
(``ui/``, one module each) around any object with ``rps.service.ModelService``'s methods, so
tests can hand it a fake.  ``python app.py`` serves the shipped model on 127.0.0.1:7860
(``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` are respected).  Who may train is the
operator's choice (``rps.policy``: ``RPS_TRAINING``, ``RPS_ADMIN_TOKEN``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gradio as gr  # noqa: E402

from rps.native_logs import native_stderr_silenced  # noqa: E402

with native_stderr_silenced():
    # TensorFlow's start-up lines ("failed call to cuInit" on every machine without a GPU)
    # read like errors in a server log; they are printed once, here, into /dev/null.
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices()

from rps.devices import describe_device  # noqa: E402
from rps.errors import ModelFileError  # noqa: E402
from rps.images import MAX_FILE_BYTES  # noqa: E402
from rps.policy import TrainingPolicy  # noqa: E402
from rps.prediction import SHIPPED_MODEL  # noqa: E402
from rps.storage import ImageFiles, default_state_dir, temporary_folder, writable_state_dir  # noqa: E402
from rps.teach import TeachSessions  # noqa: E402
from ui.classify import build_classify_tab, build_live_tab  # noqa: E402
from ui.play import Players, build_play_tab  # noqa: E402
from ui.model import build_model_tab, served_model_view, wire_promotion  # noqa: E402
from ui.teach import HOLD_TO_CAPTURE_JS, build_teach_tab  # noqa: E402
from ui.train import build_train_tab  # noqa: E402


def create_app(service, policy: TrainingPolicy | None = None, state_dir: Path | None = None,
               sessions: TeachSessions | None = None) -> gr.Blocks:
    """The Blocks around ``service`` (a ``rps.service.ModelService`` or a test fake) and the
    visitors' Teach ``sessions`` (new and empty when not given)."""
    policy = policy or TrainingPolicy(enabled=True)
    state_dir = Path(state_dir or temporary_folder("rps-app-"))
    seen_files = ImageFiles()
    # Teach sessions live outside the state folder: their samples are shown in the page.
    sessions = sessions if sessions is not None else TeachSessions(temporary_folder("rps-teach-"))
    # ... and are served from there, not copied into Gradio's cache (where copies would outlive
    # the visitor by up to an hour): a visitor's samples, thumbnails and downloads go with their
    # session.  Each session's folder has an unguessable name (uuid4), as cached files do.
    gr.set_static_paths([sessions.root])
    # Teach fine-tunes from the model that ships with the app (rps.finetune).
    base_model = Path(getattr(service, "bundled_model", SHIPPED_MODEL))

    def classifier_for(request: gr.Request | None):
        """A visitor's personal model (Teach) when they have one, else the served model."""
        return sessions.personal(request.session_hash if request else None) or service

    def adopt(run: str, request: gr.Request) -> str:
        session = sessions.personal(request.session_hash)
        if session is None or session.result is None or session.result.folder.name != run:
            raise ModelFileError("Train your model first; it is deleted when you close the page.")
        return service.adopt_run(session.result.folder)

    # Uploaded photos and zips are deleted from Gradio's cache an hour after they arrive.
    with gr.Blocks(title="Rock Paper Scissors", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Rock · Paper · Scissors\nShow a hand: a hand landmarker finds it, and a small CNN "
                    "tells rock, paper or scissors from the hand's skeleton.")
        if getattr(service, "startup_warning", ""):
            gr.Markdown(f"> {service.startup_warning}")
        build_classify_tab(classifier_for, seen_files)
        build_live_tab(classifier_for, seen_files)
        demo.unload(build_play_tab(classifier_for, Players()))
        teach = build_teach_tab(sessions, lambda: base_model, policy)
        train = build_train_tab(service, policy, state_dir)
        model_view = build_model_tab(service, policy, train.promotion.token)
        wire_promotion(service, policy, train.promotion, model_view, api_name="promote")
        wire_promotion(service, policy, teach.promotion, model_view, api_name="teach_promote", adopt=adopt)
        demo.unload(teach.end_session)
        demo.load(lambda: served_model_view(service), None, model_view, api_visibility="private")
    return demo


def build_from_environment() -> tuple[gr.Blocks, Path]:
    from rps.service import ModelService

    state_dir, problem = writable_state_dir(default_state_dir())
    service = ModelService(state_dir, data_root=os.environ.get("RPS_DATA_ROOT"))
    if problem:
        service.startup_warning = " ".join(filter(None, [problem, service.startup_warning]))
    return create_app(service, TrainingPolicy.from_environment(), state_dir), state_dir


def launch_options(state_dir: Path) -> dict:
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_file_size": MAX_FILE_BYTES * 25,  # dataset zips; photos are checked again at 40 MB
        # Nothing of the state folder (runs, served.json, uploads being unpacked) is served:
        # the pages get copies of what they show (``read_picture``, ``zip_folder``).  The
        # operator's own GRADIO_BLOCKED_PATHS are kept.
        "allowed_paths": [],
        "js": HOLD_TO_CAPTURE_JS,
        "blocked_paths": [str(state_dir)] + [path for path in os.environ.get("GRADIO_BLOCKED_PATHS", "").split(",")
                                             if path.strip()],
    }


def stop_on_sigterm() -> None:
    """SIGTERM (how a Space, a container or a service manager stops the app) stops it as Ctrl-C
    does: Gradio closes the server and the process exits normally, so the visitors' Teach
    folders and the downloads go with it (``rps.storage.temporary_folder``).  Python's default
    for SIGTERM ends the process without running its exit handlers, and left them on disk."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


if __name__ == "__main__":
    stop_on_sigterm()
    app, state = build_from_environment()
    # One line instead of TensorFlow's device probing (silenced above): what runs, and where.
    print(f"rps: training device {describe_device()}; state folder {state}", flush=True)
    try:
        app.queue(default_concurrency_limit=8).launch(**launch_options(state))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal stop, and the exit handlers run
        app.close()
