"""rps.config: out-of-range settings fail before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rps.config import TrainConfig
from rps.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "Epochs must be a whole number from 1 to 1000, got 0"),
        ({"batch_size": 0}, "Batch size must be a whole number"),
        ({"learning_rate": -0.1}, "Learning rate must be above 0"),
        ({"learning_rate": 0.0}, "Learning rate must be above 0"),
        ({"image_size": 7}, "Image size must be a whole number from 32 to 512"),
        ({"image_size": 10000}, "Image size must be a whole number from 32 to 512"),
        ({"architecture": "resnet"}, "architecture"),
        ({"augmentation": "sparkles"}, "augmentation"),
        ({"augmentation": "robust-no-sparkles"}, "augmentation"),
        ({"epochs": 2.5}, "Epochs must be a whole number"),
        ({"validation_fraction": 1.0}, "Validation fraction"),
    ],
)
def test_out_of_range_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_round_trips_through_a_dict():
    config = TrainConfig(epochs=3, devices=("/cpu:0", "/cpu:1"))
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_the_light_name_lists_match_the_registries():
    """``rps.names`` (read by --help without TensorFlow) names exactly what can be built."""
    from rps import names
    from rps.architectures import ARCHITECTURES
    from rps.augmentation import CHOICES

    assert tuple(ARCHITECTURES) == names.ARCHITECTURE_NAMES
    assert CHOICES == names.AUGMENTATIONS


def test_help_does_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, rps.cli\ntry:\n    rps.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip().splitlines()[-1] == "False False", done.stdout + done.stderr
