"""Shared fixtures: small synthetic datasets on disk and a tiny trained model.

Synthetic "hands" are simple shapes on white, one shape per class, so a tiny CNN can learn them
in an epoch or two and the tests never need ../shared or a network.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = ("paper", "rock", "scissors")


def draw_gesture(label: str, size: int = 64, seed: int = 0) -> Image.Image:
    """A coloured shape on white: square for paper, disc for rock, cross for scissors."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(60, 200, 3))
    margin = int(size * rng.uniform(0.15, 0.3))
    box = (margin, margin, size - margin, size - margin)
    if label == "paper":
        draw.rectangle(box, fill=colour)
    elif label == "rock":
        draw.ellipse(box, fill=colour)
    else:
        width = max(2, size // 10)
        draw.line(box, fill=colour, width=width)
        draw.line((box[0], box[3], box[2], box[1]), fill=colour, width=width)
    return image


def write_class_folders(
    root: Path, per_class: int = 6, classes=CLASSES, size: int = 64, sequences: int = 3,
    extension: str = ".png",
) -> Path:
    """root/<class>/<class>NN-MMM.png, grouped into rendered-style sequences."""
    for label in classes:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            sequence, frame = index % sequences, index // sequences
            name = f"{label}{sequence + 1:02d}-{frame:03d}{extension}"
            draw_gesture(label, size, seed=hash((label, index)) % 2**32).save(folder / name)
    return root


def write_kaggle_layout(root: Path, per_class: int = 6, flat_validation: bool = True) -> Path:
    write_class_folders(root / "train", per_class)
    write_class_folders(root / "test", max(2, per_class // 2))
    validation = root / "validation"
    validation.mkdir(parents=True)
    for label in CLASSES:
        for index in range(2):
            target = validation if flat_validation else validation / label
            target.mkdir(exist_ok=True)
            draw_gesture(label, 64, seed=100 + index).save(target / f"{label}{index + 1}.png")
    # The study's validation set also has "-hires" files.
    if flat_validation:
        draw_gesture("rock", 128, seed=7).save(validation / "rock-hires1.png")
    return root


EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def hand_variant(label: str, seed: int, size: int = 200) -> Image.Image:
    """A real hand shape for the hand pipeline: one of the example renders, turned, scaled,
    maybe mirrored, on a random coloured backdrop.  The landmarker finds hands in these."""
    rng = np.random.default_rng(seed)
    source = Image.open(EXAMPLES / f"{label}-{seed % 2 + 1}.png").convert("RGB")
    if rng.random() < 0.5:
        source = source.transpose(Image.FLIP_LEFT_RIGHT)
    source = source.rotate(float(rng.uniform(-30, 30)), fillcolor=(255, 255, 255))
    scale = rng.uniform(0.55, 0.8)
    source = source.resize((int(size * scale), int(size * scale)))
    pixels = np.asarray(source, np.float32)
    backdrop = (pixels.min(axis=-1) > 200) & (np.ptp(pixels, axis=-1) < 30)
    frame = np.empty((size, size, 3), np.float32)
    frame[:] = rng.uniform(60, 200, 3)
    top, left = rng.integers(0, size - source.height + 1, 2)
    patch = frame[top:top + source.height, left:left + source.width]
    patch[~backdrop] = pixels[~backdrop]
    frame += rng.normal(0, 3, frame.shape)
    return Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))


def write_hand_dataset(root: Path, per_class: int = 8) -> Path:
    """root/<class>/<class>NN-MMM.png: example hands in new poses, in three sequences."""
    for label in CLASSES:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            hand_variant(label, seed=index).save(folder / f"{label}{index % 3 + 1:02d}-{index // 3:03d}.png")
    return root


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def class_folder_dataset(tmp_path) -> Path:
    """A class-folder dataset: three classes of six synthetic images."""
    return write_class_folders(tmp_path / "data")


@pytest.fixture
def kaggle_dataset(tmp_path) -> Path:
    """A Kaggle-layout dataset with a flat validation folder labelled by file name."""
    return write_kaggle_layout(tmp_path / "Rock-Paper-Scissors")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A baseline CNN trained for one epoch at 32 px: a real model folder, made in seconds."""
    from rps.config import TrainConfig
    from rps.datasets import open_dataset
    from rps.training import train

    root = tmp_path_factory.mktemp("tiny")
    write_kaggle_layout(root / "data", per_class=6)
    # Synthetic shapes are not hands: the tiny model takes whole images.
    config = TrainConfig(
        architecture="baseline", input="image", image_size=32, batch_size=8, epochs=1,
        augmentation="none", patience=0,
    )
    train(open_dataset(root / "data"), config, root / "run", verbose=0)
    return root / "run"


@contextlib.contextmanager
def running_app(service, state_dir: Path, policy=None, sessions=None):
    """The real app (``app.create_app``) around ``service`` on a free loopback port, launched with
    the production options of ``app.launch_options`` (the state folder is not served); every
    client and browser test launches the app through here.  Yields the ``gr.Blocks``; its
    ``local_url`` is the address."""
    import app

    demo = app.create_app(service, policy, state_dir, sessions=sessions)
    options = {**app.launch_options(state_dir), "server_name": "127.0.0.1", "server_port": None}
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **options)
    try:
        yield demo
    finally:
        demo.close()


def pytest_collection_modifyitems(items):
    """Tests that launch the app (the ``launched`` fixture) are integration tests: slow."""
    for item in items:
        if "launched" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
