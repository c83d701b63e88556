"""Keras callbacks that let another thread watch and stop a training."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import keras


class StopOnEvent(keras.callbacks.Callback):
    """Ends ``fit`` at the next batch once ``event`` is set (the app's Stop button)."""

    def __init__(self, event: threading.Event):
        super().__init__()
        self.event = event

    def on_train_batch_end(self, batch, logs=None):
        if self.event.is_set():
            self.model.stop_training = True


@dataclass
class ProgressSnapshot:
    epoch: int = 0  # epochs finished
    epochs: int = 0
    step: int = 0  # steps finished in the current epoch
    steps: int | None = None
    seconds_elapsed: float = 0.0
    eta_seconds: float | None = None
    history: list[dict] = field(default_factory=list)  # one row of logs per finished epoch
    # Before the first epoch, with input "hand": (split, photos done, photos in it).
    preparing: tuple[str, int, int] | None = None
    # After the epochs, while ``rps.finetune`` fits the served model on every sample: how many.
    refitting: int | None = None


class ProgressRecorder(keras.callbacks.Callback):
    """Records per-epoch metrics and progress within the epoch; ``snapshot()`` is thread-safe."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._state = ProgressSnapshot()
        self._started = time.monotonic()
        self._epoch_started = self._started
        self._member, self._members, self._per_member = 0, 1, 0

    def on_member(self, index: int, count: int) -> None:
        """Called by ``rps.training.train`` before ensemble member ``index`` (0-based) of
        ``count`` fits: epochs and the ETA then count over every member."""
        with self._lock:
            self._member, self._members = index, count

    def on_preparation(self, split: str, done: int, total: int) -> None:
        """Called by ``rps.training.train`` while it finds the hands in each split."""
        with self._lock:
            self._state.preparing = (split, done, total)

    def on_refit(self, samples: int) -> None:
        """Called by ``rps.finetune.finetune`` when, the curves done, it fits the served model
        again on all ``samples``."""
        with self._lock:
            self._state.refitting = samples

    def on_train_begin(self, logs=None):
        with self._lock:
            if self._member == 0:
                self._started = time.monotonic()
            self._per_member = self.params.get("epochs", 0)
            self._state.epochs = self._per_member * self._members
            self._state.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        with self._lock:
            self._epoch_started = time.monotonic()
            self._state.epoch = self._member * self._per_member + epoch
            self._state.step = 0

    def on_train_batch_end(self, batch, logs=None):
        with self._lock:
            now = time.monotonic()
            self._state.step = batch + 1
            self._state.seconds_elapsed = now - self._started
            steps = self._state.steps
            if steps:
                per_step = (now - self._epoch_started) / (batch + 1)
                remaining_epochs = self._state.epochs - self._state.epoch - 1
                self._state.eta_seconds = per_step * (steps - batch - 1 + remaining_epochs * steps)

    def on_epoch_end(self, epoch, logs=None):
        done = self._member * self._per_member + epoch + 1
        row = {"epoch": done, **{key: float(value) for key, value in (logs or {}).items()}}
        with self._lock:
            self._state.epoch = done
            self._state.history.append(row)
            if not self._state.steps:
                self._state.steps = self._state.step

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            state = self._state
            return ProgressSnapshot(
                state.epoch, state.epochs, state.step, state.steps,
                time.monotonic() - self._started, state.eta_seconds, list(state.history),
                state.preparing, state.refitting,
            )
