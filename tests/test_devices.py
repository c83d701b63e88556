"""rps.devices and the TensorFlow settings that importing rps chooses for the CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import tensorflow as tf

from rps.devices import xla_setting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _onednn_setting_after_import(environment: dict) -> str:
    script = "import os, rps; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_rps_turns_on_onednn_kernels():
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert _onednn_setting_after_import(environment) == "1"


def test_a_users_own_onednn_choice_wins():
    assert _onednn_setting_after_import({**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"


def test_xla_is_off_on_the_cpu_and_left_to_keras_on_a_gpu(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert xla_setting() is False
    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake_gpu] if kind == "GPU" else [])
    assert xla_setting() == "auto"
