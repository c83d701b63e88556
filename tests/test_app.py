"""app.py: handlers with a fake backend, then the launched app through gradio_client."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from gradio_client import Client, handle_file

import app
import ui.train
from conftest import running_app, write_kaggle_layout, zip_folder
from rps.errors import ImageError, TrainingBusyError
from rps.prediction import Prediction
from rps.service import ModelService
from rps.config import config_from_form
from rps.errors import NotAllowed
from rps.policy import TrainingPolicy
from rps.reports import progress_line
from rps import storage
from rps.storage import writable_state_dir
from ui.classify import classify_image, live_classify
from ui.model import served_model_view
from ui.train import curves_frame

EXAMPLES = Path(app.__file__).parent / "assets" / "examples"


class FakeService:
    """Stands in for ModelService: fixed answers, records calls, fails on request."""

    startup_warning = ""

    def __init__(self):
        self.fail_with = None
        self.decline = None

    def classify(self, image):
        if self.fail_with:
            raise self.fail_with
        if self.decline:
            return Prediction({}, self.decline)
        return Prediction({"paper": 0.1, "rock": 0.8, "scissors": 0.1}, crop=np.zeros((8, 8, 3), np.uint8))

    def served_metadata(self):
        return {"class_names": ["paper", "rock", "scissors"], "image_size": 8, "architecture": "fake",
                "metrics": {"test_accuracy": 0.5}, "config": {"epochs": 1}}

    def served_folder(self):
        return Path("/nonexistent")

    def start_training(self, source, config):
        raise TrainingBusyError("A training is already running; wait for it to finish or stop it first.")

    def stop_training(self):
        return False

    def resolve_server_folder(self, text):
        raise ImageError("not used")


def test_classify_handler_returns_label_and_the_crop_the_model_saw():
    label, seen = classify_image(FakeService(), "any.png")
    assert label["rock"] == 0.8 and seen.shape == (8, 8, 3)
    assert classify_image(FakeService(), None) == (None, None)


@pytest.mark.parametrize("reason, words", [("no hand", "No hand found"), ("too dark", "Too dark")])
def test_declined_photos_get_a_sentence_not_a_guess(reason, words):
    service = FakeService()
    service.decline = reason
    label, seen = classify_image(service, "room.png")
    assert isinstance(label, str) and label.startswith(words) and seen is None
    label, seen, rate, history = live_classify(service, FRAME, None)
    assert label.startswith(words) and seen is None and len(history) == 1


def test_classify_handler_turns_library_errors_into_gr_error():
    service = FakeService()
    service.fail_with = ImageError("The image is 60000x60000; the limit is 50 megapixels.")
    with pytest.raises(gr.Error, match="megapixels"):
        classify_image(service, "bomb.png")


FRAME = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)


def test_live_handler_counts_frames_per_second_and_survives_bad_frames():
    service = FakeService()
    history = None
    for _ in range(3):
        label, seen, rate, history = live_classify(service, FRAME, history)
        time.sleep(0.01)
    assert label["rock"] == 0.8 and "frames per second" in rate and len(history) == 3
    service.fail_with = ImageError("bad frame")
    label, seen, rate, history = live_classify(service, FRAME, history)
    assert len(history) == 3  # the bad frame was skipped, the stream goes on


def test_live_handler_leaves_blank_frames_unlabelled_until_the_camera_has_started():
    # A webcam starting up sends black frames: nothing to say about them yet.
    service = FakeService()
    blank = np.zeros((8, 8, 3), np.uint8)
    label, seen, rate, history = live_classify(service, blank, None)
    assert "rock" not in label and history == []  # the page keeps what it showed
    # Once frames were labelled, a blank one (a covered lens) is answered, not skipped: the page
    # must not keep showing the last gesture.
    _, _, _, history = live_classify(service, FRAME, None)
    label, _, _, history = live_classify(service, blank, history)
    assert label["rock"] == 0.8 and len(history) == 2


def test_live_says_no_hand_for_a_covered_lens_after_a_hand():
    from rps.prediction import Predictor

    predictor = Predictor()

    class Shipped:
        classify = staticmethod(predictor.predict)

    hand = np.asarray(Image.open(EXAMPLES / "rock-1.png").convert("RGB"))
    label, _, _, history = live_classify(Shipped(), hand, None)
    assert max(label, key=label.get) == "rock"
    label, _, _, _ = live_classify(Shipped(), np.full((240, 320, 3), 90, np.uint8), history)
    assert "rock" not in str(label) and label  # a sentence such as "No hand found", not the last gesture


@pytest.mark.parametrize(
    "epochs, batch, rate, size, message",
    [(0, 32, None, 96, "Epochs must"), (5, 0, None, 96, "Batch size must"), (5, 32, -1.0, 96, "Learning rate must"),
     (5, 32, None, 7, "Image size must"), (5, 32, None, 10000, "Image size must")],
)
def test_training_parameters_out_of_range(epochs, batch, rate, size, message):
    from rps.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config_from_form("compact", epochs, batch, rate, size, "robust")


@pytest.mark.parametrize(
    "environ, enabled, token",
    [({}, True, None), ({"SPACE_ID": "me/rps"}, False, None),
     ({"SPACE_ID": "me/rps", "RPS_TRAINING": "on"}, True, None),
     ({"SPACE_ID": "me/rps", "RPS_TRAINING": "on", "RPS_ADMIN_TOKEN": "t0k"}, True, "t0k"),
     ({"RPS_TRAINING": "off"}, False, None)],
)
def test_training_policy_from_environment(environ, enabled, token):
    policy = TrainingPolicy.from_environment(environ)
    assert policy.enabled is enabled and policy.admin_token == token
    assert policy.shared is ("SPACE_ID" in environ)


def test_on_a_shared_deployment_without_a_token_only_the_starting_page_stops_a_training():
    shared = TrainingPolicy(True, None, shared=True)
    with pytest.raises(NotAllowed, match="Only the page that started this training can stop it"):
        shared.may_stop(None, "ann", "bob")
    shared.may_stop(None, "ann", "ann")
    TrainingPolicy(True).may_stop(None, "ann", "bob")  # your own machine: every page is yours
    TrainingPolicy(True, "secret", shared=True).may_stop("secret", "ann", "bob")  # an admin may
    with pytest.raises(NotAllowed, match="admin token"):
        TrainingPolicy(True, "secret", shared=True).may_stop(None, "ann", "ann")


def test_the_stop_button_asks_the_policy_with_the_page_that_started_the_run(tmp_path):
    """The Train tab's handlers: Ann's page starts a training; Bob's page cannot stop it on a
    Space without an admin token; Ann's can."""
    from types import SimpleNamespace

    from rps.callbacks import ProgressSnapshot

    class Running(FakeService):
        def __init__(self):
            super().__init__()
            self.job, self.stopped = None, False

        def start_training(self, source, config):
            self.job = SimpleNamespace(run_id="20260101-000000-abcdef", status="running", done=False, message="",
                                       device="CPU", dataset_description="", config=config,
                                       progress=lambda: ProgressSnapshot())
            return self.job

        def stop_training(self):
            self.stopped = True
            return True

    service = Running()
    zipped = zip_folder(write_kaggle_layout(tmp_path / "data"), tmp_path / "data.zip")
    demo = app.create_app(service, TrainingPolicy(True, None, shared=True), tmp_path / "state")
    train = next(fn.fn for fn in demo.fns.values() if fn.api_name == "train")
    stop = next(fn.fn for fn in demo.fns.values() if fn.api_name == "stop_training")
    ann, bob = SimpleNamespace(session_hash="ann"), SimpleNamespace(session_hash="bob")
    updates = train("Upload a .zip", zipped, None, None, "compact", 1, 8, None, 32, "none", "image", False, 1,
                    request=ann)
    next(updates), next(updates)  # "Preparing data", then the first progress line: the run has started
    with pytest.raises(gr.Error, match="Only the page that started this training"):
        stop(None, request=bob)
    assert not service.stopped
    assert stop(None, request=ann) == "Stopping…" and service.stopped


def test_training_policy_checks_the_token():
    policy = TrainingPolicy(True, "secret")
    with pytest.raises(NotAllowed, match="admin token"):
        policy.check("wrong")
    with pytest.raises(NotAllowed, match="admin token"):
        policy.check(None)
    policy.check("secret")
    with pytest.raises(NotAllowed, match="disabled"):
        TrainingPolicy(False).check("anything")
    # The Model tab's buttons say what was asked, and where the token goes.
    with pytest.raises(NotAllowed, match="^Changing the served model needs the admin token.*Train tab"):
        policy.check(None, "Changing the served model")


def test_app_builds_with_a_fake_backend():
    demo = app.create_app(FakeService())
    assert isinstance(demo, gr.Blocks)


def test_curves_frame_long_format():
    frame = curves_frame([{"epoch": 1, "loss": 1.0, "val_loss": 2.0, "accuracy": 0.5}], "loss")
    assert frame.to_dict("records") == [{"epoch": 1, "value": 1.0, "series": "loss"},
                                        {"epoch": 1, "value": 2.0, "series": "val_loss"}]


# --- the launched app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def launched(tiny_model, tmp_path_factory):
    """The real app on loopback around a ModelService serving the tiny model."""
    state = tmp_path_factory.mktemp("state")
    service = ModelService(state, bundled_model=tiny_model)
    with running_app(service, state) as demo:
        yield Client(demo.local_url, verbose=False), service, tmp_path_factory.mktemp("uploads")


def test_client_classifies_every_example(launched):
    client, _, _ = launched
    examples = sorted(EXAMPLES.glob("*.png"))
    assert len(examples) >= 3
    for example in examples:
        result, seen = client.predict(handle_file(str(example)), api_name="/classify")
        confidences = [item["confidence"] for item in result["confidences"]]
        assert result["label"] == result["confidences"][0]["label"] in ("paper", "rock", "scissors")
        assert confidences == sorted(confidences, reverse=True) and Path(seen).is_file()


def test_client_gets_a_clear_error_for_a_non_image_and_the_app_keeps_serving(launched):
    client, _, uploads = launched
    bad = uploads / "notes.png"
    bad.write_text("this is text")
    with pytest.raises(Exception, match="not a readable image"):
        client.predict(handle_file(str(bad)), api_name="/classify")
    example = sorted(EXAMPLES.glob("*.png"))[0]
    assert client.predict(handle_file(str(example)), api_name="/classify")[0]["label"]


def train_args(zip_path, epochs=1, batch=8):
    return dict(source_kind="Upload a .zip", upload_path=handle_file(str(zip_path)), folder="",
                token_text="", arch="baseline", n_epochs=epochs, batch=batch, rate=None, size=32,
                augment="none", input_mode="image", api_name="/train")


def test_client_training_streams_updates_and_finishes(launched):
    client, service, uploads = launched
    archive = zip_folder(write_kaggle_layout(uploads / "data-ok"), uploads / "ok.zip")
    job = client.submit(**train_args(archive, epochs=2))
    updates = []
    for update in job:
        updates.append(update)
    final = job.outputs()[-1]
    assert len(job.outputs()) >= 3  # preparing, at least one progress update, the results
    assert "test accuracy" in final[3]
    assert final[7] and service.job.status == "finished"
    assert sorted(set(final[1]["data"][i][2] for i in range(len(final[1]["data"])))) == ["loss", "val_loss"]
    client.predict(None, final[7], api_name="/promote")
    assert service.served_folder().name == final[7]


def test_client_second_training_is_refused_while_one_runs(launched):
    client, service, uploads = launched
    archive = zip_folder(write_kaggle_layout(uploads / "data-slow", per_class=12), uploads / "slow.zip")
    client.submit(**train_args(archive, epochs=300, batch=2))  # runs until stopped below
    deadline = time.monotonic() + 60
    while (service.job is None or service.job.status != "running") and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        with pytest.raises(Exception, match="already running"):
            client.predict(**train_args(archive))
    finally:
        client.predict(None, api_name="/stop_training")
        deadline = time.monotonic() + 60
        while not service.job.done and time.monotonic() < deadline:
            time.sleep(0.2)
    assert service.job.status == "stopped"


def test_client_bad_zip_layout_is_a_clear_error(launched):
    client, _, uploads = launched
    lonely = uploads / "one-class" / "rock"
    lonely.mkdir(parents=True)
    (uploads / "one-class" / "rock" / "a.png").write_bytes((EXAMPLES / "rock-1.png").read_bytes())
    archive = zip_folder(uploads / "one-class", uploads / "one.zip")
    with pytest.raises(Exception, match="only one class"):
        client.predict(**train_args(archive))


def test_kaggle_credentials_never_reach_page_logs_runs_or_metadata(launched, monkeypatch, capfd, caplog):
    """A training from the (faked) Kaggle download, with the key in the environment as a Space
    secret would be: the key appears in no output, page, log line or file the app wrote."""
    import functools
    import httpx
    from rps import kaggle_download

    secret = "kaggle-secret-6f1d0c9e"
    monkeypatch.setenv("KAGGLE_USERNAME", "ann")
    monkeypatch.setenv("KAGGLE_KEY", secret)
    client, service, uploads = launched
    source = zip_folder(write_kaggle_layout(uploads / "kaggle-src"), uploads / "kaggle.zip", "Rock-Paper-Scissors/")

    class FakeKaggleApi:
        def dataset_download_files(self, dataset, path, quiet, unzip):
            print(f"downloading {dataset}")  # what the real client prints, without the key
            (Path(path) / "dataset.zip").write_bytes(source.read_bytes())

    monkeypatch.setattr(ui.train, "download_dataset",
                        functools.partial(kaggle_download.download_dataset, api_factory=FakeKaggleApi))
    args = train_args(source, epochs=1) | {"source_kind": "Kaggle: the study's dataset", "upload_path": None}
    outputs = client.predict(**args)
    assert "test accuracy" in outputs[3]
    run_id = outputs[7]
    assert service.job.status == "finished" and run_id

    captured = capfd.readouterr()
    seen = [repr(outputs), captured.out, captured.err, caplog.text]
    for path in ("/", "/config", "/gradio_api/info"):
        seen.append(httpx.get(client.src.rstrip("/") + path, timeout=30).text)
    written = [file for file in Path(service.state_dir).rglob("*") if file.is_file()]
    assert service.runs_dir / run_id / "model.json" in written  # the scan covers the run folder
    seen += [file.read_bytes().decode("latin-1") for file in written]
    assert "downloading" in captured.out  # the download did run and print
    assert not [text[:200] for text in seen if secret in text]


def test_model_downloads_keep_only_the_latest_archive(tmp_path):
    for name in ("run-a", "run-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
        archive = Path(storage.zip_folder(tmp_path / name, tmp_path / "downloads"))
    assert archive.name == "run-b.zip" and archive.is_file()
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == ["run-b.zip"]


def test_progress_says_which_hands_are_being_found_before_the_first_epoch():
    from types import SimpleNamespace

    from rps.callbacks import ProgressSnapshot

    from rps.config import TrainConfig

    snapshot = ProgressSnapshot(preparing=("train", 250, 4168))
    job = SimpleNamespace(status="running", device="CPU (2 cores)", dataset_description="classes a, b",
                          message="", done=False, progress=lambda: snapshot, config=TrainConfig())
    text = progress_line(job)
    assert "finding the hands in the train photos: 250/4168" in text
    job.config = TrainConfig(architecture="baseline", input="image")
    assert "reading the train photos: 250/4168" in progress_line(job)
    snapshot.epochs = 40  # once epochs run, they are what the line shows
    assert "finding the hands" not in progress_line(job)


@pytest.mark.parametrize("case,words", [("z15-encrypted-flag.zip", "password-protected"),
                                        ("z16-deflate64-method.zip", "Deflate64"),
                                        ("z18b-html-class-names.zip", None)])
def test_client_zip_cases_get_a_sentence_not_a_bare_error(launched, case, words):
    """Zips that once gave a bare "Error" in the Train tab: now the reason, shown as text."""
    client, service, _ = launched
    archive = Path(__file__).parent / "data" / "cases" / case
    if words is None:  # HTML class names train; the page shows them as text
        job = client.submit(**train_args(archive))
        final = job.outputs()[-1] if job.outputs() else job.result()
        assert "<img" not in final[0] and "<img" not in final[3]
        assert service.job.status == "finished", service.job.message
        return
    with pytest.raises(Exception, match=words):
        client.predict(**train_args(archive))


def test_a_download_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    """A full disk while zipping: the error reaches the caller, and no partial archive stays."""
    import shutil

    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / "model.json").write_text("{}")
    real = shutil.make_archive

    def disk_full(base_name, *args, **kwargs):
        Path(base_name + ".zip").write_bytes(b"PK\3\4 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "make_archive", disk_full)
    with pytest.raises(OSError, match="No space"):
        storage.zip_folder(tmp_path / "run-a", tmp_path / "downloads")
    assert not (tmp_path / "downloads").exists()
    monkeypatch.setattr(shutil, "make_archive", real)
    assert Path(storage.zip_folder(tmp_path / "run-a", tmp_path / "downloads")).name == "run-a.zip"


def test_the_state_folder_is_not_served(launched):
    """Runs, served.json and the model files download from nowhere, with or without a session;
    the finished run's pictures and archive reach the page as copies."""
    import httpx

    client, service, _ = launched
    state = service.state_dir
    (state / "served.json").write_text('{"run_id": "x"}') if not (state / "served.json").exists() else None
    secrets = [state / "served.json", *state.glob("runs/*/model.keras"), *state.glob("runs/*/model.json")]
    assert secrets
    for path in secrets:
        for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
            response = httpx.get(client.src.rstrip("/") + prefix + str(path))
            assert response.status_code in (403, 404), (prefix, path, response.status_code)
            assert b'"run_id":' not in response.content and not response.content.startswith(b"PK")


@pytest.mark.slow  # a subprocess starts Python and TensorFlow
def test_start_up_names_the_device_and_sigterm_leaves_no_visitor_files(tmp_path):
    """``python app.py`` on a machine without a GPU: one line names the device, and none of
    TensorFlow's CUDA probing ("failed call to cuInit") reaches the log.  Stopped by SIGTERM,
    as a Space stops it, it exits normally and removes its temporary folders (the visitors'
    Teach samples among them); Python's default for SIGTERM used to leave them."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environ = {**os.environ, "RPS_STATE_DIR": str(tmp_path / "state"), "GRADIO_SERVER_PORT": str(port),
               "TMPDIR": str(temporary)}
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    process = subprocess.Popen([sys.executable, "app.py"], cwd=Path(app.__file__).parent, env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Running on" in line:
                break
        made = sorted(path.name.split("-")[1] for path in temporary.glob("rps-*"))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    log = "".join(lines)
    assert "Running on" in log, log
    assert "training device" in log
    assert "cuInit" not in log and "CUDA" not in log, log
    assert "teach" in made and process.returncode == 0
    assert not list(temporary.glob("rps-*")), list(temporary.iterdir())


def test_concurrent_uploads_of_the_same_photo_all_succeed(launched):
    """Visitors classifying the same file at once (the same example clicked): every request is
    answered with its picture.  Gradio's in-place write of identical result images used to fail
    some of these downloads mid-stream."""
    import threading

    client, _, _ = launched
    example = str(sorted(EXAMPLES.glob("*.png"))[0])
    failures, answered = [], []
    start = threading.Barrier(16)

    def visitor():
        own = Client(client.src, verbose=False, ssl_verify=False)
        start.wait()
        for _ in range(4):
            try:
                result, seen = own.predict(handle_file(example), api_name="/classify")
                assert result["label"] and Path(seen).stat().st_size > 0
                answered.append(1)
            except Exception as error:  # noqa: BLE001 - every failure is what this test counts
                failures.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=visitor) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(answered) == 64


def test_client_can_go_back_to_the_bundled_and_the_previous_model(launched, tiny_model):
    """The Model tab's way back: "Serve the bundled model" and "Serve the previous model",
    with the same permission as promotion; the card lists the served history."""
    client, service, _ = launched
    if not service.served_history():
        pytest.skip("needs the promotion made by test_client_training_streams_updates_and_finishes")
    promoted = service.served_folder()
    card, _, _ = client.predict(None, api_name="/serve_bundled")
    assert service.served_folder() == tiny_model and "Served history" in card and "`bundled`" in card
    client.predict(None, api_name="/serve_previous")
    assert service.served_folder() == promoted


def test_promotion_asks_first_and_shows_what_it_would_change():
    from types import SimpleNamespace

    service = FakeService()
    service.job = SimpleNamespace(run_id="20260101-000000-abcdef", comparison={
        "split": "test", "photos": 372, "new_accuracy": 0.9, "served_accuracy": 1.0, "served_model": "model"})
    demo = app.create_app(service)
    ask = next(fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "ask_to_promote").fn
    shown, question = ask("20260101-000000-abcdef")
    assert shown["visible"] is True
    assert "90.00%" in question and "100.00%" in question and "serve" in question.lower()
    with pytest.raises(gr.Error, match="Finish a training first"):
        ask("")


def test_an_unwritable_state_folder_falls_back_with_a_sentence(tmp_path):
    """The app still starts and serves; the page says where runs go instead and why."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    state, problem = writable_state_dir(blocker / "state")
    assert state.is_dir() and state != blocker / "state"
    assert "not writable" in problem and "RPS_STATE_DIR" in problem
    assert writable_state_dir(tmp_path / "fine") == (tmp_path / "fine", "")


@pytest.mark.slow  # a subprocess starts Python and TensorFlow
def test_importing_the_app_writes_no_stub_file(tmp_path):
    """Gradio writes a .pyi beside the module of any component subclass; the app has none."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(app.__file__).parent
    shutil.copy(app.__file__, tmp_path / "app.py")
    shutil.copytree(root / "ui", tmp_path / "ui", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-c", "import app"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in tmp_path.rglob("*.pyi")) == []


def test_the_model_tab_renders_the_shipped_card_when_the_bundled_model_serves(tmp_path, tiny_model):
    from rps.prediction import SHIPPED_MODEL

    shipped = ModelService(tmp_path / "shipped-state")
    card, _, _ = served_model_view(shipped)
    assert shipped.served_folder() == SHIPPED_MODEL
    assert "## Where it fails" in card and "## How to get started" in card
    assert "license: cc-by-sa-4.0" not in card and "![" not in card
    other = ModelService(tmp_path / "other-state", bundled_model=tiny_model)
    assert "## Where it fails" not in served_model_view(other)[0]  # a card for another model would lie
