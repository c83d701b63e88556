"""Pictures of a run: sample grid, training curves, confusion matrix (PNG, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from rps.datasets import LabelledImages  # noqa: E402
from rps.images import load_rgb  # noqa: E402


def history_figure(history: list[dict]):
    """Loss and accuracy per epoch, training next to validation."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = [row.get(key) for row in history]
            if any(value is not None for value in values):
                axis.plot(epochs, values, style, label=key)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5 on short runs
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def confusion_figure(confusion: list[list[int]], class_names: list[str], title: str = ""):
    matrix = np.asarray(confusion)
    size = max(3.5, 0.6 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        colour = "white" if value > threshold else "black"
        axis.text(column, row, str(value), ha="center", va="center", color=colour)
    axis.set_title(title or "confusion matrix")
    figure.tight_layout()
    return figure


def save_figure(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def sample_grid(
    images: LabelledImages, class_names: tuple[str, ...], path: Path, per_class: int = 4
) -> Path:
    """The study's first look: ``per_class`` images of each class with their labels."""
    rows = len(class_names)
    figure, axes = plt.subplots(rows, per_class, figsize=(2.2 * per_class, 2.2 * rows), squeeze=False)
    for label, name in enumerate(class_names):
        chosen = [p for p, l in zip(images.paths, images.labels) if l == label][:per_class]
        for column in range(per_class):
            axis = axes[label][column]
            axis.axis("off")
            if column < len(chosen):
                picture = Image.fromarray(load_rgb(chosen[column]))
                picture.thumbnail((160, 160))
                axis.imshow(picture)
                axis.set_title(name, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)
