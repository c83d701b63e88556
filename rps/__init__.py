"""Rock-paper-scissors hand-gesture recognition with regularised Keras CNNs.

The library never imports gradio; the app (``app.py``) is built on it.
"""

import os

# TensorFlow enables its oneDNN CPU kernels by default only on some processors.  On the 2-core
# AMD EPYC this project is measured on, they train the study's CNNs at 300x300 about twice as
# fast, and the shipped model 1.3 times (experiments/cpu_kernels.py).  Set before TensorFlow loads;
# a user's own value wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from rps.errors import RpsError  # noqa: E402

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
