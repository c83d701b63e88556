"""Reproduce the study: baseline, improved and regularised at its settings, on its dataset.

300x300 input, batch 32, 10 epochs, EarlyStopping on val_loss (patience 3, best weights), the
study's augmentation on the training data only, validation on the validation folder, test on
the test set; the 90 real photos are scored too (never trained on).  Prints a table next to the
study's figures.

    python -m experiments.study [--epochs 10] [--arch baseline improved regularised] [--patience 3]

``--patience 0`` trains every epoch without EarlyStopping; its results go beside, not over,
those of the study's settings.
"""

from __future__ import annotations

import argparse
import shutil
import time

from bench.common import REAL_DEV, STUDY_DATA, machine, require, save_results
from experiments import RESULTS
from rps.artifacts import load_bundle
from rps.config import TrainConfig
from rps.datasets import open_dataset, read_class_folders
from rps.evaluation import evaluate_model
from rps.training import train


def study_config(architecture: str, image_size: int = 300, epochs: int = 10, patience: int = 3) -> TrainConfig:
    """The study's training settings: batch 32, EarlyStopping patience 3, its augmentation."""
    return TrainConfig(architecture=architecture, input="image", image_size=image_size, batch_size=32,
                       epochs=epochs, augmentation="study", patience=patience, seed=42,
                       schedule="constant")


# The study's reported test accuracy and minutes per epoch (a notebook, not this machine).
STUDY_FIGURES = {
    "baseline": ("not reported", "5-14 min"),
    "improved": ("81.2%", "5-14 min"),
    "regularised": ("72.8%", "5-14 min"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=300)
    parser.add_argument("--arch", nargs="+", default=["baseline", "improved", "regularised"])
    parser.add_argument("--patience", type=int, default=3, help="EarlyStopping patience (0: off)")
    args = parser.parse_args()
    name = "study" if args.patience == 3 else f"study-patience-{args.patience}"
    dataset = open_dataset(require(STUDY_DATA))
    _, real = read_class_folders(require(REAL_DEV), dataset.class_names)
    rows = []
    for architecture in args.arch:
        out = RESULTS / name / architecture
        shutil.rmtree(out, ignore_errors=True)
        config = study_config(architecture, args.image_size, args.epochs, args.patience)
        started = time.monotonic()
        result = train(dataset, config, out, verbose=2)
        real_dev = evaluate_model(load_bundle(out).model, real, dataset.class_names, config.image_size,
                                  config.input)
        rows.append({
            "architecture": architecture,
            "test_accuracy": result.evaluation.accuracy,
            "validation_accuracy": result.validation.accuracy,
            "real_dev_accuracy": real_dev.accuracy,
            "epochs_run": len(result.history),
            "seconds_per_epoch": round(result.seconds_per_epoch, 1),
            "total_seconds": round(time.monotonic() - started, 1),
        })
        print(rows[-1], flush=True)
        # Saved after each model: a long run that is cut short still leaves its figures.
        payload = {"machine": machine(), "image_size": args.image_size, "epochs": args.epochs,
                   "patience": args.patience, "rows": rows}
        save_results(name, payload, RESULTS)
    print(f"\n{payload['machine']}")
    print("| model | test accuracy (here) | real photos (here) | s/epoch (here) | epochs run "
          "| study test accuracy | study time/epoch |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        study_accuracy, study_time = STUDY_FIGURES.get(row["architecture"], ("-", "-"))
        print(f"| {row['architecture']} | {row['test_accuracy']:.1%} | {row['real_dev_accuracy']:.1%} | {row['seconds_per_epoch']} | "
              f"{row['epochs_run']} | {study_accuracy} | {study_time} |")


if __name__ == "__main__":
    main()
