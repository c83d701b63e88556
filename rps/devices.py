"""Where training runs: every GPU TensorFlow sees (mirrored), else the CPU."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import keras
import tensorflow as tf


def gpu_names() -> list[str]:
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def describe_device(devices: tuple[str, ...] | None = None) -> str:
    """A human label such as 'GPU: NVIDIA H100 (x2)' or 'CPU (2 cores)'."""
    if devices:
        return f"{len(devices)} devices: {', '.join(devices)}"
    names = gpu_names()
    if names:
        suffix = f" (x{len(names)})" if len(names) > 1 else ""
        return f"GPU: {names[0]}{suffix}"
    return f"CPU ({os.cpu_count()} cores)"


def choose_strategy(devices: tuple[str, ...] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy over ``devices`` or over several GPUs; the default strategy otherwise."""
    if devices:
        return tf.distribute.MirroredStrategy(list(devices))
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def xla_setting() -> bool | str:
    """Keras' ``jit_compile``: left to Keras on a GPU; off on the CPU.

    With oneDNN's kernels on, XLA brought no consistent gain on this project's 2-core CPU
    (experiments/cpu_kernels.py: -6% to +9% by model), and it compiles again for every new batch
    shape (the ragged last batch, evaluation), so the CPU takes the plain path.
    """
    return "auto" if tf.config.list_physical_devices("GPU") else False


@contextlib.contextmanager
def precision_policy(mixed: bool | None) -> Iterator[str]:
    """Use mixed_float16 while building a model (auto: when a GPU is present), then restore."""
    if mixed is None:
        mixed = bool(tf.config.list_physical_devices("GPU"))
    previous = keras.mixed_precision.global_policy().name
    policy = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)
