"""rps.training: a run writes a complete folder; stops and failures leave nothing behind."""

from __future__ import annotations

import os
import json
import subprocess
import sys
import threading
from pathlib import Path

import keras
import pytest

from conftest import write_class_folders, write_kaggle_layout
from rps.artifacts import load_bundle
from rps.callbacks import ProgressRecorder
from rps.config import TrainConfig
from rps.datasets import open_dataset
from rps.errors import DatasetError, ModelFileError, TrainingStopped
from rps.training import train

TINY = TrainConfig(architecture="baseline", input="image", image_size=32, batch_size=8, epochs=2, augmentation="none", patience=0)

RUN_FILES = {"model.keras", "model.json", "history.csv", "curves.png", "test_metrics.json", "confusion.png"}


def test_run_folder_is_complete_and_self_describing(tiny_model):
    assert RUN_FILES <= {p.name for p in tiny_model.iterdir()}
    metadata = json.loads((tiny_model / "model.json").read_text())
    assert metadata["class_names"] == ["paper", "rock", "scissors"]
    assert metadata["image_size"] == 32
    assert metadata["config"]["architecture"] == "baseline"
    assert len(metadata["dataset"]["fingerprint"]) == 16
    assert 0.0 <= metadata["metrics"]["test_accuracy"] <= 1.0
    report = json.loads((tiny_model / "test_metrics.json").read_text())
    assert sum(map(sum, report["test"]["confusion"])) == metadata["dataset"]["test"]
    assert load_bundle(tiny_model).class_names == metadata["class_names"]


def test_progress_recorder_sees_every_epoch(tmp_path, class_folder_dataset):
    write_class_folders(class_folder_dataset, per_class=9)  # more sequences for the split
    recorder = ProgressRecorder()
    result = train(open_dataset(class_folder_dataset), TINY, tmp_path / "run", callbacks=[recorder], verbose=0)
    snapshot = recorder.snapshot()
    assert snapshot.epoch == 2 and [row["epoch"] for row in snapshot.history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(snapshot.history[-1])
    assert snapshot.steps and snapshot.step == snapshot.steps
    assert result.evaluation is None  # no test split in a plain class-folder dataset


def test_stop_event_stops_and_saves_nothing(tmp_path, kaggle_dataset):
    stop = threading.Event()

    class StopAfterFirstBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stop.set()

    with pytest.raises(TrainingStopped):
        train(open_dataset(kaggle_dataset), TINY, tmp_path / "run", callbacks=[StopAfterFirstBatch()],
              stop_event=stop, verbose=0)
    assert not (tmp_path / "run").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_failure_while_saving_leaves_nothing(tmp_path, kaggle_dataset, monkeypatch):
    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(ModelFileError, match="saving could not write the run .*No space left on device"):
        train(open_dataset(kaggle_dataset), TINY, tmp_path / "run", verbose=0)
    assert list(tmp_path.glob("*run*")) == []


def test_existing_output_folder_is_refused_before_training(tmp_path, kaggle_dataset):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(ModelFileError, match="already exists"):
        train(open_dataset(kaggle_dataset), TINY, tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_corrupt_image_during_training_is_a_dataset_error(tmp_path, kaggle_dataset):
    victim = next((kaggle_dataset / "train" / "rock").iterdir())
    victim.write_bytes(victim.read_bytes()[:80])  # valid header, truncated pixels
    with pytest.raises(DatasetError, match="could not be decoded"):
        train(open_dataset(kaggle_dataset), TINY, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_compact_model_memorises_a_small_dataset(tmp_path):
    """Proof that training really learns: near-perfect on the data it saw."""
    root = write_kaggle_layout(tmp_path / "data", per_class=12)
    config = TrainConfig(architecture="compact", input="image", image_size=32, batch_size=12, epochs=40,
                         augmentation="none", patience=0, learning_rate=3e-3)
    result = train(open_dataset(root), config, tmp_path / "run", verbose=0)
    assert result.history[-1]["accuracy"] >= 0.95
    assert result.evaluation.accuracy >= 0.8


MIRRORED_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from conftest import write_kaggle_layout
from rps.config import TrainConfig
from rps.datasets import open_dataset
from rps.training import train
data = write_kaggle_layout(__import__("pathlib").Path({tmp!r}) / "data")
config = TrainConfig(architecture="baseline", input="image", image_size=32, batch_size=2, epochs=1,
                     augmentation="none", patience=0, devices=("/cpu:0", "/cpu:1"))
result = train(open_dataset(data), config, {tmp!r} + "/run", verbose=0)
print("REPLICAS", result.device)
"""


@pytest.mark.slow  # a subprocess starts Python and TensorFlow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """The multi-GPU path, exercised on this machine by splitting the CPU in two."""
    root = Path(__file__).resolve().parent.parent
    script = MIRRORED_SCRIPT.format(tmp=str(tmp_path))
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environ)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REPLICAS 2 devices: /cpu:0, /cpu:1" in done.stdout
    assert load_bundle(tmp_path / "run").image_size == 32


def test_an_ensemble_trains_its_members_in_turn_and_serves_their_mean(tmp_path, kaggle_dataset):
    """``members=2``: two models from seeds 42 and 43, one after the other; the saved model's
    probabilities are the mean of theirs, and progress counts every member's epochs."""
    import numpy as np

    config = TrainConfig(**{**TINY.to_dict(), "members": 2, "epochs": 2, "devices": None})
    recorder = ProgressRecorder()
    result = train(open_dataset(kaggle_dataset), config, tmp_path / "run", callbacks=[recorder], verbose=0)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert [row["member"] for row in result.history] == [1, 1, 2, 2]
    assert recorder.snapshot().epochs == 4 and recorder.snapshot().epoch == 4
    model = load_bundle(tmp_path / "run").model
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert len(members) == 2
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    mean = (members[0](images, training=False) + members[1](images, training=False)) / 2
    np.testing.assert_allclose(model(images, training=False), mean, atol=1e-6)
    assert not np.allclose(members[0](images, training=False), members[1](images, training=False))
    assert result.metadata["config"]["members"] == 2
