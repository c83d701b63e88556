"""Teach: one visitor's own gestures, their samples, and the model fine-tuned on them.

A ``TeachSession`` keeps a visitor's classes and sample photos in its own folder, in the
class-folder layout (``samples/<class>/<n>.png``) that ``python -m rps train`` and the Train
tab read, so the samples download as a dataset as they are.  ``train`` fine-tunes a new head
on a base model's frozen features (``rps.finetune``) and keeps a ``Predictor`` for the
result, which serves that visitor alone until they promote it.  ``TeachSessions`` holds every
visitor's session, bounded in count; a session's folder is deleted when it ends.

Bounds (each refusal is a ``DatasetError`` with a sentence): ``MAX_CLASSES`` classes of
``MAX_SAMPLES_PER_CLASS`` samples, each stored at most ``SAMPLE_MAX_SIDE`` pixels on its longer
side.  A 27-letter alphabet at 100 samples each is about 2,700 PNGs of some 100 kB: 270 MB.
"""

from __future__ import annotations

import shutil
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image

from rps.artifacts import new_run_id
from rps.datasets import Dataset, open_dataset
from rps.errors import DatasetError, RpsError, TrainingBusyError
from rps.finetune import DEFAULT_EPOCHS, FinetuneResult, check_per_class, finetune
from rps.images import ImageInput, load_rgb
from rps.prediction import Prediction, Predictor
from rps.storage import zip_folder

MAX_CLASSES = 40
MAX_SAMPLES_PER_CLASS = 100
MAX_NAME_LENGTH = 40
SAMPLE_MAX_SIDE = 480
# Teach fine-tunes the head alone (rps.finetune's first stage); docs/teach.md records the
# measured alternative of a second, unfrozen stage.
TEACH_UNFREEZE_EPOCHS = 0
# Which base features Teach's head reads (rps.finetune.feature_extractor): the last convolution
# block's pooled maps, which beat the dense features on the personal benchmark (docs/teach.md).
TEACH_FEATURES = "pooled"
# A class name becomes a folder name: no path separators, no leading dot (hidden), nothing a
# file system refuses or a page could mistake for markup.
_FORBIDDEN = set('/\\:*?"<>|')


def check_class_name(name: str) -> str:
    """``name`` stripped, or ``DatasetError`` when it cannot name a class (and its folder)."""
    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name:
        raise DatasetError("A class needs a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise DatasetError(f"The class name {name[:MAX_NAME_LENGTH]}… is longer than {MAX_NAME_LENGTH} characters.")
    if name.startswith(".") or _FORBIDDEN & set(name) or any(unicodedata.category(c).startswith("C") for c in name):
        raise DatasetError(f"The class name '{name}' cannot be used: no leading dot, no / \\ : * ? \" < > | "
                           "and no control characters.")
    return name


def parse_class_names(text: str) -> list[str]:
    """Class names from a comma- or newline-separated list, checked: at least two, at most
    ``MAX_CLASSES``, none empty, none repeated (ignoring case, as some file systems do)."""
    lines = [line.strip().rstrip(",") for line in text.splitlines()]  # one name or a list per line
    parts = ",".join(line for line in lines if line).split(",") if lines else [""]
    if len(parts) > 1 and not parts[-1].strip():
        parts = parts[:-1]  # a trailing comma
    if any(not part.strip() for part in parts) and text.strip():
        raise DatasetError("A class name is empty: separate the names with single commas.")
    names = [check_class_name(part) for part in parts if part.strip()]
    if len(names) < 2:
        raise DatasetError("Name at least two classes, separated by commas (for example: rock, paper, scissors).")
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"At most {MAX_CLASSES} classes can be taught; {len(names)} were named.")
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen:
            raise DatasetError(f"The class '{name}' is named twice.")
        seen[name.casefold()] = name
    return names


class TeachSession:
    """One visitor's classes, samples and personal model, in ``folder``."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.samples_dir = self.folder / "samples"
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self.class_names: list[str] = []
        self.predictor: Predictor | None = None  # the personal model, once trained
        self.result: FinetuneResult | None = None
        self.last_used = time.monotonic()
        self.training = False
        self._lock = threading.Lock()

    # --- classes and samples ---------------------------------------------------------------

    def set_classes(self, names: Sequence[str]) -> dict[str, int]:
        """Name the classes: classes still named keep their samples, also when only their case
        changes ("fist" to "Fist"); the samples of classes no longer named are deleted.
        Returns each deleted class with the number of samples it had (none: {}).  Raises
        ``DatasetError`` for names ``parse_class_names`` refuses, changing nothing."""
        names = parse_class_names(",".join(names))
        renamed = {name.casefold(): name for name in names}
        deleted: dict[str, int] = {}
        with self._lock:
            for old in self.class_names:
                folder = self.samples_dir / old
                new = renamed.get(old.casefold())
                if new is None:
                    count = len(self.samples(old))
                    if count:
                        deleted[old] = count
                    shutil.rmtree(folder, ignore_errors=True)
                elif new != old:  # through a third name: a case-insensitive file system sees one folder
                    passing = folder.rename(self.samples_dir / f".renaming-{uuid.uuid4().hex[:8]}")
                    passing.rename(self.samples_dir / new)
            for name in names:
                (self.samples_dir / name).mkdir(exist_ok=True)
            self.class_names = names
        return deleted

    def _class_folder(self, name: str) -> Path:
        if name not in self.class_names:
            raise DatasetError(f"There is no class '{name}'; name the classes first.")
        return self.samples_dir / name

    def samples(self, name: str) -> list[Path]:
        """The class's sample files, oldest first."""
        folder = self._class_folder(name)
        return sorted(folder.glob("*.png"), key=lambda path: path.name)

    def counts(self) -> dict[str, int]:
        return {name: len(self.samples(name)) for name in self.class_names}

    def add_sample(self, name: str, image: ImageInput) -> Path:
        """Store one photo (a path, bytes, PIL image or RGB array) as a sample of ``name``.

        Raises ``DatasetError`` for an unknown class or a full one, ``ImageError`` for what
        cannot be decoded.  The photo is stored as PNG, at most ``SAMPLE_MAX_SIDE`` px.
        """
        folder = self._class_folder(name)
        pixels = load_rgb(image)
        with self._lock:
            if len(list(folder.glob("*.png"))) >= MAX_SAMPLES_PER_CLASS:
                raise DatasetError(f"{name} already has {MAX_SAMPLES_PER_CLASS} samples, the most a class may "
                                   "have; delete some to add others.")
            picture = Image.fromarray(pixels)
            picture.thumbnail((SAMPLE_MAX_SIDE, SAMPLE_MAX_SIDE))
            # Named by time: samples sort oldest first and two visitors' names never clash.
            target = folder / f"{time.time_ns()}-{uuid.uuid4().hex[:4]}.png"
            picture.save(target)
        self.last_used = time.monotonic()
        return target

    def add_samples(self, name: str, images: Iterable[ImageInput]) -> tuple[int, list[str]]:
        """Add each photo; returns how many were added and a sentence per photo refused."""
        added, problems = 0, []
        for image in images:
            try:
                self.add_sample(name, image)
                added += 1
            except RpsError as error:
                problems.append(str(error))
                if len(self.samples(name)) >= MAX_SAMPLES_PER_CLASS:
                    break
        return added, problems

    def delete_sample(self, path: Path | str) -> None:
        """Delete one sample; a path outside this session's samples is refused."""
        path = Path(path).resolve()
        if self.samples_dir.resolve() not in path.parents or path.suffix != ".png":
            raise DatasetError("That is not one of your samples.")
        path.unlink(missing_ok=True)

    def check_ready(self) -> None:
        """``DatasetError`` unless there are two classes or more, each with ``MIN_PER_CLASS``
        samples or more."""
        if len(self.class_names) < 2:
            raise DatasetError("Name at least two classes first.")
        check_per_class(self.counts(), "samples", "Capture or upload more.")

    def dataset(self) -> Dataset:
        self.check_ready()
        return open_dataset(self.samples_dir)

    def dataset_zip(self, downloads: Path) -> str:
        """The samples as ``downloads/teach-dataset.zip``, in the class-folder layout the Train
        tab and ``python -m rps train`` read."""
        self.check_ready()
        return zip_folder(self.samples_dir, downloads, "teach-dataset")

    # --- the personal model ----------------------------------------------------------------

    def train(self, base_folder: Path, epochs: int = DEFAULT_EPOCHS, callbacks=(),
              stop_event: threading.Event | None = None) -> FinetuneResult:
        """Fine-tune on the samples (``rps.finetune.finetune``) and serve the result to this
        session.  The previous personal model serves until the new one is complete."""
        dataset = self.dataset()
        out = self.folder / "models" / new_run_id()
        out.parent.mkdir(exist_ok=True)
        # refit=True: the served model learns from every sample, the latest included (docs/teach.md).
        result = finetune(dataset, base_folder, out, epochs=epochs, callbacks=callbacks, stop_event=stop_event,
                          unfreeze_epochs=TEACH_UNFREEZE_EPOCHS, features=TEACH_FEATURES, refit=True)
        predictor = Predictor(result.folder)
        previous = self.result
        self.predictor, self.result = predictor, result
        if previous is not None:  # one personal model per visitor on disk
            shutil.rmtree(previous.folder, ignore_errors=True)
        self.last_used = time.monotonic()
        return result

    def forget_model(self) -> None:
        """Serve the shared model to this visitor again (the personal model is deleted)."""
        previous, self.predictor, self.result = self.result, None, None
        if previous is not None:
            shutil.rmtree(previous.folder, ignore_errors=True)

    def classify(self, image: ImageInput) -> Prediction:
        if self.predictor is None:
            raise DatasetError("Train a personal model first.")
        self.last_used = time.monotonic()
        return self.predictor.predict(image)

    def end(self) -> None:
        """Delete everything of this session."""
        self.predictor = self.result = None
        shutil.rmtree(self.folder, ignore_errors=True)


class TeachSessions:
    """Every visitor's ``TeachSession`` under ``root``: at most ``max_sessions`` at once, and one
    fine-tuning at a time.

    A session starts when a visitor names their classes (``start``); every other action finds
    it (``get``, ``find``) and never makes one, so visits that only look cannot crowd others
    out.  When all places are taken, a new visitor gets the place of the least recently used
    session idle for ``idle_seconds`` or more (and not training); if there is none, they are
    told to come back later: nobody's work is dropped while they use it.  A session with no
    sample and no model gives its place up after ``empty_idle_seconds``: naming classes alone,
    which a script can do for many made-up visitors, holds a place for minutes, not half an hour.
    """

    def __init__(self, root: Path | str, max_sessions: int = 16, idle_seconds: float = 1800.0,
                 empty_idle_seconds: float = 120.0):
        self.root = Path(root)
        shutil.rmtree(self.root, ignore_errors=True)  # sessions never outlive the server process
        self.root.mkdir(parents=True)
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.empty_idle_seconds = empty_idle_seconds
        self._sessions: OrderedDict[str, TeachSession] = OrderedDict()
        self._lock = threading.Lock()
        self.training = threading.Lock()

    def start(self, key: str) -> TeachSession:
        """The session of visitor ``key`` (a Gradio session hash), made if it has none.

        Raises ``TrainingBusyError`` when every place is taken by a session in use.
        """
        key = str(key)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    self._end_one_idle()
                session = TeachSession(self.root / uuid.uuid4().hex)
                self._sessions[key] = session
            self._sessions.move_to_end(key)
            session.last_used = time.monotonic()
            return session

    def _end_one_idle(self) -> None:
        now = time.monotonic()
        for old_key, old in self._sessions.items():  # least recently used first
            if old.training:
                continue
            empty = old.result is None and not any(old.counts().values())
            if now - old.last_used >= (self.empty_idle_seconds if empty else self.idle_seconds):
                del self._sessions[old_key]
                old.end()
                return
        raise TrainingBusyError(f"The Teach tab is full: {self.max_sessions} visitors are teaching now. "
                                "Try again in a few minutes.")

    def find(self, key: str | None) -> TeachSession | None:
        """The session of ``key``, or None (nothing is made)."""
        session = self._sessions.get(str(key)) if key is not None else None
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def get(self, key: str | None) -> TeachSession:
        """The session of ``key``; ``DatasetError`` when there is none (nothing is made)."""
        session = self.find(key)
        if session is None:
            raise DatasetError("Name your classes and press Set classes first.")
        return session

    def personal(self, key: str | None) -> TeachSession | None:
        """The session of ``key`` when it has a personal model to serve, else None."""
        session = self._sessions.get(str(key)) if key is not None else None
        return session if session is not None and session.predictor is not None else None

    def end(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(str(key), None)
        if session is not None:
            session.end()

    def __len__(self) -> int:
        return len(self._sessions)

    def train(self, session: TeachSession, base_folder: Path, epochs: int = DEFAULT_EPOCHS, callbacks=(),
              stop_event: threading.Event | None = None) -> FinetuneResult:
        """``session.train`` when no other visitor's fine-tuning runs; ``TrainingBusyError`` else."""
        if not self.training.acquire(blocking=False):
            raise TrainingBusyError("Another visitor's model is training; try again in a minute.")
        session.training = True
        try:
            return session.train(base_folder, epochs, callbacks, stop_event)
        finally:
            session.training = False
            self.training.release()
