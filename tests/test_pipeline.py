"""rps.pipeline: every supported format decodes to (size, size, 3); cache and stream agree."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rps.datasets import LabelledImages
from rps.pipeline import make_dataset, resize_for_model


def write_formats(folder):
    folder.mkdir()
    base = Image.new("RGB", (40, 30), (200, 10, 10))
    specs = [("a.png", base), ("b.jpg", base), ("c.bmp", base), ("d.gif", base.convert("P")),
             ("e.png", base.convert("RGBA")), ("f.png", base.convert("L"))]
    paths = []
    for name, image in specs:
        image.save(folder / name)
        paths.append(str(folder / name))
    return LabelledImages(tuple(paths), tuple([0, 1] * 3))


def test_resize_keeps_the_aspect_ratio_and_extends_the_edges():
    """A landscape frame: a white square on green stays square, the added rows are green."""
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[..., 1] = 180
    frame[50:150, 100:200] = 255
    resized = resize_for_model(frame, 60).numpy()
    white = np.argwhere(resized.min(axis=-1) > 200)
    height, width = white.max(axis=0) - white.min(axis=0) + 1
    assert resized.shape == (60, 60, 3)
    assert abs(int(height) - int(width)) <= 1 and 18 <= width <= 22  # 100/300 of 60, not stretched
    assert (resized[:10, :, 1] == 180).all() and (resized[-10:, :, 1] == 180).all()


def test_resize_handles_extreme_shapes():
    for shape in [(1, 1000, 3), (1000, 1, 3), (7, 3, 3), (64, 64, 3)]:
        assert resize_for_model(np.full(shape, 9, np.uint8), 32).shape == (32, 32, 3)


def test_every_format_decodes_to_rgb_of_the_model_size(tmp_path):
    images = write_formats(tmp_path / "formats")
    batches = list(make_dataset(images, 24, 3))
    assert [tuple(b[0].shape) for b in batches] == [(3, 24, 24, 3)] * 2
    first = batches[0][0].numpy()
    assert first.min() >= 0 and first.max() <= 255
    assert first[0, 12, 12, 0] > 150  # red survives the PNG decode


def test_streaming_and_cached_pipelines_give_the_same_pixels(tmp_path):
    images = write_formats(tmp_path / "formats")
    cached = np.concatenate([b[0].numpy() for b in make_dataset(images, 16, 2)])
    streamed = np.concatenate([b[0].numpy() for b in make_dataset(images, 16, 2, cache_budget=0)])
    assert np.array_equal(cached, streamed)
