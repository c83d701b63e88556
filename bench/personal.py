"""Teach it your room: fine-tuning on a person's own photos, against the shipped model.

For each ``rps-real-wild-dev`` source (one person, one room), the first ``--per-class`` photos
of each class in file-name order are that person's samples: ``rps.finetune.finetune`` trains a
new head on the shipped model's frozen features, and the rest of the source is scored by the
fine-tuned model and by the shipped model, side by side.  This benchmark is the one use of
these photos for training that the project allows, and only here: the shipped model never sees
them, and nothing measured here chooses anything.

Also timed: fine-tuning 3 classes x 20 photos from start to a served ``Predictor``, and 27
classes x 30 photos (the example renders turned and scaled, one set per class: a stand-in for
a sign alphabet) with the process's peak memory.

    python -m bench.personal [--per-class 20] [--unfreeze-epochs N] [--features dense|pooled] [--no-refit]

Writes ``bench/results/personal.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import DATASETS, ROOT, machine, peak_rss_mb, require, save_results
from rps.datasets import open_dataset
from rps.evaluation import evaluate_prepared, prepare_split
from rps.finetune import finetune
from rps.teach import TEACH_FEATURES, TEACH_UNFREEZE_EPOCHS
from rps.images import is_image_file
from rps.prediction import SHIPPED_MODEL, Predictor


def personal_split(source: Path, names: tuple[str, ...], per_class: int, folder: Path):
    """Symlink the first ``per_class`` photos of each class into ``folder``; the rest to score."""
    rest_paths, rest_labels = [], []
    for label, name in enumerate(names):
        photos = sorted(path for path in (source / name).iterdir() if is_image_file(path))
        (folder / name).mkdir(parents=True)
        for photo in photos[:per_class]:
            (folder / name / photo.name).symlink_to(photo)
        rest_paths += [str(path) for path in photos[per_class:]]
        rest_labels += [label] * len(photos[per_class:])
    return rest_paths, rest_labels


def score(predictor: Predictor, paths: list[str], labels: list[int]) -> tuple[float, int]:
    """Accuracy ("no hand" counts as wrong) and how many photos were declined: those no head
    can get right, so ``1 - declined / len(paths)`` is the most any fine-tuning can reach."""
    prepared = prepare_split(paths, predictor.preprocessor)
    accuracy = evaluate_prepared(predictor.runner, prepared, labels, predictor.class_names).accuracy
    return accuracy, int((~prepared.accepted).sum())


def alphabet(folder: Path, classes: int, per_class: int) -> Path:
    """``classes`` classes of hand renders turned and scaled: timing and memory, not accuracy."""
    rng = np.random.default_rng(0)
    examples = sorted((ROOT / "assets" / "examples").glob("*.png"))
    for index in range(classes):
        (folder / f"letter{index:02d}").mkdir(parents=True)
        for sample in range(per_class):
            image = Image.open(examples[(index + sample) % len(examples)]).convert("RGB")
            image = image.rotate(float(rng.uniform(-25, 25)), fillcolor=(255, 255, 255))
            image.save(folder / f"letter{index:02d}" / f"{sample:03d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--unfreeze-epochs", type=int, default=None,
                        help="the second stage of rps.finetune (default: Teach's own)")
    parser.add_argument("--features", choices=("dense", "pooled"), default=None,
                        help="the base features the head reads (default: Teach's own)")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="serve the model fit on the first 80%% of the samples, as before commit 9f6a825's rule")
    args = parser.parse_args()
    parser_features = args.features or TEACH_FEATURES
    unfreeze = TEACH_UNFREEZE_EPOCHS if args.unfreeze_epochs is None else args.unfreeze_epochs
    shipped = Predictor()
    names = tuple(shipped.class_names)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for source in sorted(path for path in require(DATASETS / "rps-real-wild-dev").iterdir() if path.is_dir()):
            samples = Path(scratch) / source.name / "samples"
            rest_paths, rest_labels = personal_split(source, names, args.per_class, samples)
            started = time.monotonic()
            result = finetune(open_dataset(samples), SHIPPED_MODEL, Path(scratch) / source.name / "run",
                              unfreeze_epochs=unfreeze, features=parser_features, refit=args.refit)
            personal = Predictor(result.folder)
            served_seconds = time.monotonic() - started
            tuned_accuracy, declined = score(personal, rest_paths, rest_labels)
            rows[source.name] = {
                "samples": len(open_dataset(samples).train), "scored": len(rest_paths),
                "fine-tuned": tuned_accuracy,
                "shipped": score(shipped, rest_paths, rest_labels)[0],
                "declined (no hand or too dark)": declined,
                "most any head can reach": round(1 - declined / len(rest_paths), 4),
                "held-out of the samples": result.held_out.accuracy,
                "seconds_start_to_served": round(served_seconds, 1),
            }
            print(source.name, rows[source.name], flush=True)
        means = {key: round(statistics.mean(row[key] for row in rows.values()), 4)
                 for key in ("fine-tuned", "shipped", "most any head can reach")}
        letters = alphabet(Path(scratch) / "alphabet", 27, 30)
        started = time.monotonic()
        big = finetune(open_dataset(letters), SHIPPED_MODEL, Path(scratch) / "alphabet-run", unfreeze_epochs=unfreeze,
                       features=parser_features, refit=args.refit)
        Predictor(big.folder)
        alphabet_row = {"classes": 27, "per_class": 30, "seconds_start_to_served": round(time.monotonic() - started, 1),
                        "peak_rss_mb": round(peak_rss_mb()), "held-out": big.held_out.accuracy,
                        "hands_found": big.metadata["dataset"]["hands_found"]}
        print("27 classes", alphabet_row, flush=True)
    payload = {"machine": machine(), "per_class": args.per_class, "unfreeze_epochs": unfreeze, "refit": args.refit,
               "features": parser_features, "sources": rows, "mean over sources": means,
               "27 classes x 30": alphabet_row}
    print(f"mean over sources: fine-tuned {means['fine-tuned']:.1%}, shipped {means['shipped']:.1%}, "
          f"the most any head can reach {means['most any head can reach']:.1%}")
    name = "personal"
    if unfreeze != TEACH_UNFREEZE_EPOCHS:
        name += f"-unfreeze{unfreeze}"
    if parser_features != TEACH_FEATURES:
        name += f"-{parser_features}"
    if not args.refit:
        name += "-norefit"
    print(f"saved {save_results(name, payload)}")


if __name__ == "__main__":
    main()
