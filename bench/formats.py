"""One photo, one answer: the 90 ``rps-real-dev`` photos in other formats, through each door.

Each photo is written again as a phone would store it (JPEG with EXIF orientation 6 or 8: the
pixels sideways, the tag turning them upright), as a cut-out on a transparent backdrop (the
green backdrop keyed out; the hidden pixels black), as an 8-bit palette BMP, a 16-bit grey PNG,
a float TIFF with values 0..1 and an iPhone HEIC.  Each set is scored by the shipped model
through ``Predictor.predict`` (the library and ``python -m rps predict``), through
``python -m rps evaluate`` (its functions, in process) and through the app's Classify tab
(``ui.inputs.PhotoInput`` then ``ui.classify.classify_image``).  "differ" counts photos whose label is not the
same through all three doors.

    python -m bench.formats

Writes ``bench/results/formats.json``.  Measures only; nothing is trained or tuned here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import REAL_DEV, machine, model_sha256, require, save_results
from rps.datasets import evaluation_split
from rps.evaluation import DECLINED, predict_prepared, prepare_split
from rps.images import IMAGE_EXTENSIONS, load_rgb
from rps.prediction import SHIPPED_MODEL, Predictor


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _cut_out(rgb: np.ndarray) -> Image.Image:
    """Key out the green backdrop: transparent where green dominates, hidden colour black."""
    pixels = rgb.astype(np.int16)
    backdrop = (pixels[..., 1] > pixels[..., 0] + 25) & (pixels[..., 1] > pixels[..., 2] + 25)
    rgba = np.dstack([rgb, np.where(backdrop, 0, 255).astype(np.uint8)])
    rgba[backdrop, :3] = 0
    return Image.fromarray(rgba, "RGBA")


def _write(rgb: np.ndarray, kind: str, stem: Path) -> None:
    image = Image.fromarray(rgb)
    if kind == "PNG (as given)":
        image.save(stem.with_suffix(".png"))
    elif kind in ("JPEG, EXIF orientation 6", "JPEG, EXIF orientation 8"):
        orientation = int(kind[-1])
        stored = image.transpose(Image.ROTATE_90 if orientation == 6 else Image.ROTATE_270)
        stored.save(stem.with_suffix(".jpg"), quality=95, exif=_exif(orientation))
    elif kind == "cut-out, transparent backdrop (PNG)":
        _cut_out(rgb).save(stem.with_suffix(".png"))
    elif kind == "8-bit palette BMP":
        image.quantize(256).save(stem.with_suffix(".bmp"))
    elif kind == "16-bit grey PNG":
        grey = np.asarray(image.convert("L"), np.uint16) * 257
        Image.fromarray(grey).save(stem.with_suffix(".png"))
    elif kind == "float TIFF, 0..1 (grey)":
        grey = np.asarray(image.convert("L"), np.float32) / 255.0
        Image.fromarray(grey, "F").save(stem.with_suffix(".tif"))
    elif kind == "HEIC":
        image.save(stem.with_suffix(".heic"), format="HEIF", quality=90)
    else:
        raise ValueError(kind)


KINDS = ("PNG (as given)", "JPEG, EXIF orientation 6", "JPEG, EXIF orientation 8",
         "cut-out, transparent backdrop (PNG)", "8-bit palette BMP", "16-bit grey PNG",
         "float TIFF, 0..1 (grey)", "HEIC")


def _through_app(predictor: Predictor, path: Path) -> str | None:
    from gradio.data_classes import FileData

    from ui.classify import classify_image
    from ui.inputs import PhotoInput

    class Service:
        classify = staticmethod(predictor.predict)

    uploaded = PhotoInput(type="filepath", image_mode=None).preprocess(
        FileData(path=str(path), orig_name=path.name))
    label, _ = classify_image(Service(), uploaded)
    return max(label, key=label.get) if isinstance(label, dict) else None


def main() -> None:
    predictor = Predictor()
    names = tuple(predictor.class_names)
    _, originals = evaluation_split(require(REAL_DEV), names)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kind in KINDS:
            folder = Path(scratch) / kind.replace(" ", "_").replace(",", "").replace("/", "")
            for path, label in zip(originals.paths, originals.labels):
                (folder / names[label]).mkdir(parents=True, exist_ok=True)
                _write(load_rgb(path), kind, folder / names[label] / Path(path).stem)
            _, images = evaluation_split(folder, names)
            assert all(Path(path).suffix.lower() in IMAGE_EXTENSIONS for path in images.paths)
            truth = np.asarray(images.labels)
            by_predict = [predictor.predict(path).label for path in images.paths]
            evaluated = predict_prepared(predictor.runner, prepare_split(images.paths, predictor.preprocessor))
            by_evaluate = [None if index == DECLINED else names[index] for index in evaluated]
            by_app = [_through_app(predictor, Path(path)) for path in images.paths]
            expected = [names[label] for label in truth]

            def accuracy(found):
                return round(float(np.mean([a == b for a, b in zip(found, expected)])), 4)

            rows[kind] = {
                "n": len(expected), "predict": accuracy(by_predict), "evaluate": accuracy(by_evaluate),
                "app": accuracy(by_app),
                "differ": sum(len({a, b, c}) > 1 for a, b, c in zip(by_predict, by_evaluate, by_app)),
            }
            print(kind, rows[kind], flush=True)
    payload = {"machine": machine(), "model": str(SHIPPED_MODEL.relative_to(SHIPPED_MODEL.parents[1])),
               "model_sha256": model_sha256(SHIPPED_MODEL), "rps-real-dev, by format and door": rows}
    print(f"saved {save_results('formats', payload)}")


if __name__ == "__main__":
    main()
