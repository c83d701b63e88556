"""rps.config: out-of-range settings fail before any work starts."""

from __future__ import annotations

import pytest

from rps.config import TrainConfig
from rps.errors import ConfigError


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"image_size": 7}, "image_size"),
        ({"image_size": 10000}, "image_size"),
        ({"architecture": "resnet"}, "architecture"),
        ({"augmentation": "sparkles"}, "augmentation"),
        ({"augmentation": "robust-no-sparkles"}, "augmentation"),
        ({"epochs": 2.5}, "epochs"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_out_of_range_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_round_trips_through_a_dict():
    config = TrainConfig(epochs=3, devices=("/cpu:0", "/cpu:1"))
    assert TrainConfig.from_dict(config.to_dict()) == config
