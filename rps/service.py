"""What a server needs around the library: one served model, one training at a time.

The served model is shared by every visitor, so it is swapped atomically: the new model is
loaded and checked first, then one assignment under a lock replaces the old one, and the choice
is written to disk (atomically) so a restart serves the model that was last promoted.  A corrupt
or missing promoted model at start-up falls back to the bundled one.

Only one training runs at a time, in a background thread that the UI polls; a second request
gets ``TrainingBusyError``.  Runs live under ``state_dir/runs/<run id>``; run ids are made here,
never taken from a request.  Uploaded zips are unpacked under ``state_dir/uploads`` and removed
when their run ends; what a killed process left there, half-written runs
(``runs/.<id>.partial-*``) and half-written pointers (``.served-*``) are removed at start-up,
before any job of this process exists.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from rps.artifacts import new_run_id
from rps.callbacks import ProgressRecorder, ProgressSnapshot
from rps.config import TrainConfig
from rps.datasets import Dataset, open_dataset
from rps.devices import describe_device
from rps.errors import ConfigError, DatasetError, ModelFileError, RpsError, TrainingBusyError, TrainingStopped
from rps.images import ImageInput
from rps.memory import check_training_memory, training_budget_bytes
from rps.prediction import SHIPPED_MODEL, Prediction, Predictor
from rps.training import TrainResult, train

log = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
SERVED_POINTER = "served.json"
SERVED_HISTORY = "served-history.json"
BUNDLED = "bundled"  # the served-history name of the model that ships with the app
PREVIOUS = "previous"  # the "via" of a history entry made by serve_previous
MAX_HISTORY = 100


@dataclass
class TrainingJob:
    """One training run in a background thread; read its fields from any thread."""

    run_id: str
    folder: Path
    config: TrainConfig
    device: str
    recorder: ProgressRecorder = field(default_factory=ProgressRecorder)
    stop_event: threading.Event = field(default_factory=threading.Event)
    status: str = "starting"  # starting, downloading, running, finished, stopped, failed
    message: str = ""
    result: TrainResult | None = None
    dataset_description: str = ""
    started_at: float = field(default_factory=time.time)
    thread: threading.Thread | None = None
    unpack_dir: Path | None = None  # where an uploaded zip was unpacked; removed at the end
    memory_estimate: int | None = None  # bytes, rps.memory.estimate_training_bytes
    comparison: dict | None = None  # ModelService._compare_with_served

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "failed")

    def progress(self) -> ProgressSnapshot:
        return self.recorder.snapshot()


class ModelService:
    """The served predictor and the single training slot of one server process."""

    def __init__(
        self,
        state_dir: Path | str,
        bundled_model: Path | str = SHIPPED_MODEL,
        data_root: Path | str | None = None,
        environ: Mapping[str, str] = os.environ,
    ):
        self.state_dir = Path(state_dir)
        self.runs_dir = self.state_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir = self.state_dir / "uploads"
        self.uploads_dir.mkdir(exist_ok=True)
        self.removed_leftovers = self._remove_leftovers()
        self.bundled_model = Path(bundled_model)
        self.data_root = Path(data_root).resolve() if data_root else None
        self.environ = environ  # RPS_MAX_TRAIN_MEMORY (rps.memory)
        try:  # a bad setting is the operator's to see at start-up, not a visitor's at Start
            training_budget_bytes(environ)
            budget_problem = ""
        except ConfigError as error:
            budget_problem = str(error)
            log.warning(budget_problem)
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self.startup_warning = budget_problem
        self._predictor = self._load_served_at_startup()

    def _remove_leftovers(self) -> list[str]:
        """Delete what an earlier process left half-done; return the names removed."""
        leftovers = [*self.uploads_dir.iterdir(), *self.runs_dir.glob(".*.partial-*"),
                     *self.state_dir.glob(".served-*")]
        for path in leftovers:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if leftovers:
            log.info("removed %d leftovers of an earlier process", len(leftovers))
        return [path.name for path in leftovers]

    # --- serving -------------------------------------------------------------------------

    def _load_served_at_startup(self) -> Predictor:
        pointer = self.state_dir / SERVED_POINTER
        if pointer.is_file():
            try:
                recorded = json.loads(pointer.read_text())
                if not isinstance(recorded, dict):
                    raise ValueError(f"{SERVED_POINTER} holds {type(recorded).__name__}, not a run id")
                folder = self._run_folder(recorded.get("run_id"))
                return self._with_warning(Predictor(folder))
            except (RpsError, ValueError, KeyError, TypeError, OSError) as error:
                problem = (f"The last promoted model could not be loaded ({error}); "
                           "serving the bundled model instead.")
                self.startup_warning = " ".join(filter(None, [self.startup_warning, problem]))
                log.warning(problem)
        return self._with_warning(Predictor(self.bundled_model))

    def _with_warning(self, predictor: Predictor) -> Predictor:
        if predictor.warning and predictor.warning not in self.startup_warning:
            self.startup_warning = " ".join(filter(None, [self.startup_warning, predictor.warning]))
        return predictor

    @property
    def predictor(self) -> Predictor:
        return self._predictor  # a single reference read: always a complete model

    def classify(self, image: ImageInput) -> Prediction:
        """Probabilities, or the reason the photo was declined, and the crop the model saw."""
        return self.predictor.predict(image)  # one model for every step, even during a swap

    def prepare(self, image: ImageInput) -> np.ndarray | None:
        """The image as the served model receives it, or None when it is declined."""
        return self.predictor.prepare(image).pixels

    def served_metadata(self) -> dict:
        return self.predictor.metadata

    def served_folder(self) -> Path:
        return self.predictor.bundle.folder

    def promote(self, run_id: str) -> dict:
        """Serve the model of a finished run to everyone, and remember it across restarts.

        Raises ``ModelFileError`` for an unknown run, a model that does not load, or a disk
        that cannot record the change; the served model is then unchanged.
        """
        candidate = Predictor(self._run_folder(run_id))  # load and check before touching what is served
        return self._serve(candidate, run_id)

    def adopt_run(self, folder: Path | str) -> str:
        """Copy a finished run made elsewhere (a personal model of the Teach tab) into this
        server's runs, so ``promote`` can serve it and it outlives its maker's session.

        Returns its run id here: the folder's own name when that is a run id not yet taken (so
        the page that named the run names the one served), else a new one.  Raises
        ``ModelFileError`` when ``folder`` has no model that loads, or the copy cannot be
        written (nothing is left behind then).
        """
        Predictor(folder)  # refuses a folder without a loadable, described model
        name = Path(folder).name
        run_id = name if _RUN_ID.match(name) and not (self.runs_dir / name).exists() else new_run_id()
        target = self.runs_dir / run_id
        try:
            shutil.copytree(folder, target)
        except OSError as error:
            shutil.rmtree(target, ignore_errors=True)
            raise ModelFileError(f"Could not keep the model for serving ({error.strerror or error}).") from None
        return run_id

    def serve_bundled(self) -> dict:
        """Serve the model that ships with the app again (the way back from any promotion)."""
        return self._serve(self._with_warning(Predictor(self.bundled_model)), None)

    def serve_previous(self) -> dict:
        """Serve the model that was served before the current one, walking back one step per
        call (promote A, B, C; then previous serves B, then A, then the bundled model).

        Raises ``ModelFileError`` when there is none, or when it can no longer be loaded.
        """
        stack = self._served_stack()
        if len(stack) < 2:
            if stack and stack[-1] != BUNDLED:
                return self._serve(Predictor(self.bundled_model), None, PREVIOUS)
            raise ModelFileError("There is no earlier served model to go back to.")
        previous = stack[-2]
        if previous == BUNDLED:
            return self._serve(self._with_warning(Predictor(self.bundled_model)), None, PREVIOUS)
        return self._serve(Predictor(self._run_folder(previous)), previous, PREVIOUS)

    def _served_stack(self) -> list[str]:
        """The models a rollback can return to, oldest first: each change pushes its model, and
        each ``serve_previous`` pops one."""
        stack: list[str] = []
        for entry in self.served_history():
            if entry.get("via") == PREVIOUS and stack:
                stack.pop()
            else:
                stack.append(entry["model"])
        return stack

    def served_history(self) -> list[dict]:
        """Every change of the served model, oldest first: ``{"model": run id or "bundled",
        "served_at": ISO 8601 UTC}``."""
        try:
            history = json.loads((self.state_dir / SERVED_HISTORY).read_text())
        except (OSError, ValueError):
            return []
        if not isinstance(history, list):  # a damaged file must not block promotion
            return []
        return [entry for entry in history if isinstance(entry, dict) and isinstance(entry.get("model"), str)]

    def _serve(self, candidate: Predictor, run_id: str | None, via: str | None = None) -> dict:
        """Record the choice on disk (atomically: the pointer first, the history after), then
        swap the served model; returns its metadata."""
        entry = {"model": run_id or BUNDLED,
                 "served_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if via:
            entry["via"] = via
        history = (self.served_history() + [entry])[-MAX_HISTORY:]
        with self._lock:
            if run_id is None:
                (self.state_dir / SERVED_POINTER).unlink(missing_ok=True)
            else:
                self._write_json(SERVED_POINTER, {"run_id": run_id})
            self._predictor = candidate
            try:
                self._write_json(SERVED_HISTORY, history)
            except ModelFileError as error:  # the model is served; only its record is behind
                log.warning("the served history could not be written: %s", error)
        return candidate.metadata

    def _write_json(self, name: str, value) -> None:
        """Write ``state_dir/name`` atomically; ``ModelFileError`` (nothing changed) on failure."""
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.state_dir, prefix=".served-")
            with os.fdopen(handle, "w") as stream:
                json.dump(value, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.state_dir / name)
        except OSError as error:  # a full or read-only disk
            if temporary:
                Path(temporary).unlink(missing_ok=True)
            raise ModelFileError(
                f"Could not record the new served model ({error.strerror or error}); the previous "
                "model still serves. Free disk space in the state folder and try again."
            ) from None

    def _run_folder(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ModelFileError(f"{run_id!r} is not a run id of this server.")
        folder = self.runs_dir / run_id
        if not (folder / "model.keras").is_file():
            raise ModelFileError(f"Run {run_id} has no saved model.")
        return folder

    # --- training ------------------------------------------------------------------------

    def resolve_server_folder(self, text: str) -> Path:
        """A dataset folder on the server, only inside the operator's allowed root."""
        if self.data_root is None:
            raise DatasetError(
                "Server-side folders are disabled; set RPS_DATA_ROOT to the folder that may be used."
            )
        candidate = (self.data_root / text).resolve()  # resolves '..' and symlinks
        if candidate != self.data_root and self.data_root not in candidate.parents:
            raise DatasetError(f"{text!r} is outside the allowed data folder.")
        if not candidate.exists():
            raise DatasetError(f"{text!r} does not exist in the allowed data folder.")
        return candidate

    @property
    def job(self) -> TrainingJob | None:
        return self._job

    def start_training(self, source: Path | Dataset | Callable[[], Path], config: TrainConfig) -> TrainingJob:
        """Open the data and start training in the background; one run at a time.

        ``source``: a dataset folder or zip, a ``Dataset``, or a function that fetches one
        (the Kaggle download) and returns its folder.  A function runs inside the training
        slot, in the job's thread (status ``"downloading"``), so two first requests never
        download into the same folder; its failure fails the job with its message.  Raises
        ``TrainingBusyError`` while another job runs, and ``RpsError`` for data that cannot be
        opened (folder or zip sources are opened before this returns).
        """
        with self._lock:
            if self._job is not None and not self._job.done:
                raise TrainingBusyError(
                    "A training is already running; wait for it to finish or stop it first."
                )
            run_id = new_run_id()
            job = TrainingJob(run_id, self.runs_dir / run_id, config, describe_device(config.devices))
            self._job = job
        if callable(source) and not isinstance(source, (Path, Dataset)):
            job.status = "downloading"
            job.dataset_description = "downloading the dataset"
            job.thread = threading.Thread(target=self._fetch_and_run, args=(job, source), daemon=True,
                                          name="training")
            job.thread.start()
            return job
        try:
            dataset = self._open(job, source)
        except BaseException as error:
            job.status, job.message = "failed", str(error)
            raise
        self._begin(job, dataset)
        return job

    def _open(self, job: TrainingJob, source: Path | Dataset) -> Dataset:
        """Open the data (unpacked under ``uploads_dir``) and check the training fits the
        server's memory budget (``rps.memory``); on failure nothing unpacked is left."""
        try:
            if isinstance(source, Dataset):
                dataset = source
            else:
                job.unpack_dir = Path(tempfile.mkdtemp(prefix=f"{job.run_id}-", dir=self.uploads_dir))
                dataset = open_dataset(source, job.unpack_dir, verify=not job.config.skip_unreadable)
            photos = sum(len(split) for split in (dataset.train, dataset.validation, dataset.test) if split)
            job.memory_estimate = check_training_memory(job.config, len(dataset.class_names), photos,
                                                        self.environ)
            return dataset
        except BaseException:
            if job.unpack_dir:
                shutil.rmtree(job.unpack_dir, ignore_errors=True)
            raise

    def _begin(self, job: TrainingJob, dataset: Dataset) -> None:
        job.dataset_description = dataset.describe()
        job.status = "running"
        if job.thread is None:
            job.thread = threading.Thread(target=self._run, args=(job, dataset), daemon=True, name="training")
            job.thread.start()
        else:  # already in the job's own thread (after a download)
            self._run(job, dataset)

    def _fetch_and_run(self, job: TrainingJob, fetch: Callable[[], Path]) -> None:
        try:
            dataset = self._open(job, fetch())
        except RpsError as error:
            job.status, job.message = "failed", str(error)
            return
        except Exception as error:  # a server must survive any failure of one download
            log.exception("fetching the data of %s failed", job.run_id)
            job.status, job.message = "failed", f"Fetching the data failed: {type(error).__name__}: {error}"
            return
        if job.stop_event.is_set():
            job.status, job.message = "stopped", "Training was stopped; no model was saved."
            return
        self._begin(job, dataset)

    def _run(self, job: TrainingJob, dataset: Dataset) -> None:
        status, message = "failed", "Training failed."
        try:
            job.result = train(
                dataset, job.config, job.folder, callbacks=[job.recorder],
                stop_event=job.stop_event, verbose=0,
            )
            job.comparison = self._compare_with_served(job, dataset)
            status, message = "finished", "Training finished."
        except TrainingStopped as stopped:
            status, message = "stopped", str(stopped)
        except RpsError as error:
            status, message = "failed", str(error)
        except Exception as error:  # a server must survive any failure of one run
            log.exception("training %s failed", job.run_id)
            status, message = "failed", f"Training failed: {type(error).__name__}: {error}"
        finally:
            # Clean up before the job reads as done: whoever waits for it finds the upload gone.
            if job.unpack_dir:
                shutil.rmtree(job.unpack_dir, ignore_errors=True)
            job.status, job.message = status, message

    def _compare_with_served(self, job: TrainingJob, dataset: Dataset) -> dict | None:
        """The served model's score on the run's own test split (else its validation photos),
        beside the new model's: what a promotion would change, measured on the same photos.

        None when the served model has other classes, or anything fails (the run is kept).
        """
        served = self.predictor
        result = job.result
        split, new = (dataset.test, result.evaluation) if result.evaluation else (None, result.validation)
        if split is None:
            split = dataset.validation
        if split is None or not len(split) or list(served.class_names) != list(dataset.class_names):
            return None
        try:
            from rps.evaluation import evaluate_prepared, prepare_split

            prepared = prepare_split(split.paths, served.preprocessor,
                                     skip_unreadable=job.config.skip_unreadable)
            keep = prepared.readable
            labels = [label for label, kept in zip(split.labels, keep) if kept]
            old = evaluate_prepared(served.runner, prepared.rows(keep), labels, served.class_names)
        except Exception:  # noqa: BLE001 - a comparison must never fail the run it compares
            log.exception("comparing run %s with the served model failed", job.run_id)
            return None
        return {"split": "test" if result.evaluation else "validation", "photos": old.count,
                "new_accuracy": new.accuracy, "served_accuracy": old.accuracy,
                "served_model": served.bundle.folder.name}

    def stop_training(self) -> bool:
        job = self._job
        if job is None or job.done:
            return False
        job.stop_event.set()
        return True
