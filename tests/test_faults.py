"""Faults: a process killed mid-training leaves what is served, and every saved model, loadable.

A full disk while saving is tested in test_training; a failed promotion in test_service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_kaggle_layout
from rps.artifacts import load_bundle
from rps.service import ModelService

ROOT = Path(__file__).resolve().parent.parent

TRAIN_FOREVER = """
import time
from rps.config import TrainConfig
from rps.service import ModelService
service = ModelService({state!r}, bundled_model={bundled!r})
job = service.start_training({data!r}, TrainConfig(architecture="baseline", input="image", image_size=32, batch_size=2,
                             epochs=500, augmentation="none", patience=0))
while job.progress().step == 0:
    time.sleep(0.05)
print("RUNNING", flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # a subprocess starts Python and TensorFlow
def test_killing_the_process_during_training_leaves_everything_loadable(tmp_path, tiny_model):
    data = write_kaggle_layout(tmp_path / "data")
    state = tmp_path / "state"
    script = TRAIN_FOREVER.format(state=str(state), bundled=str(tiny_model), data=str(data))
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=environ)
    try:
        deadline = time.monotonic() + 240
        line = ""
        while "RUNNING" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        assert "RUNNING" in line
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    # No run folder claims to be complete; the hidden staging area is all a kill can leave.
    visible = [p for p in (state / "runs").iterdir() if not p.name.startswith(".")]
    assert visible == []
    # What a kill leaves: a half-written run, an unpacked upload, a half-written pointer.
    (state / "runs" / ".20260101-000000-abcdef.partial-x1").mkdir()
    (state / "uploads" / "20260101-000000-abcdef-x2" / "unpacked").mkdir(parents=True)
    (state / ".served-x3").write_text("{")
    restarted = ModelService(state, bundled_model=tiny_model)
    assert restarted.served_folder() == tiny_model
    assert list((state / "uploads").iterdir()) == []
    assert [p for p in (state / "runs").iterdir() if p.name.startswith(".")] == []
    assert not list(state.glob(".served-*")) and len(restarted.removed_leftovers) >= 3
    assert load_bundle(tiny_model).class_names == ["paper", "rock", "scissors"]
