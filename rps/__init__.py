"""Rock-paper-scissors hand-gesture recognition with regularised Keras CNNs.

The library never imports gradio; the app (``app.py``) is built on it.
"""

from rps.errors import RpsError

__all__ = ["Predictor", "RpsError", "TrainConfig", "open_dataset", "train"]


def __getattr__(name: str):
    # Lazy: importing rps must not start TensorFlow (the CLI's --help stays instant).
    if name == "Predictor":
        from rps.prediction import Predictor

        return Predictor
    if name == "TrainConfig":
        from rps.config import TrainConfig

        return TrainConfig
    if name == "open_dataset":
        from rps.datasets import open_dataset

        return open_dataset
    if name == "train":
        from rps.training import train

        return train
    raise AttributeError(name)
