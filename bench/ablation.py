"""Ablation: what each part of the robust augmentation buys, next to the study's model.

Trains the shipped config with each part of the robust recipe switched off in turn, plus the
study's recipe on the compact model and the study's regularised CNN at 300x300 with its own
settings, and reports test and real-photo accuracy for each.  Budget: about 15 minutes per
compact row and an hour for the 300x300 row on a 2-core CPU; ``--epochs`` shortens the compact
rows (the comparison stays fair: every compact row gets the same budget).

    python bench/ablation.py [--epochs 28] [--skip-study-row]
"""

from __future__ import annotations

import argparse
import shutil

from common import REAL_DEV, RESULTS, STUDY_DATA, machine, require, save_results

from rps.artifacts import load_bundle
from rps.config import TrainConfig
from rps.datasets import open_dataset, read_class_folders
from rps.evaluation import evaluate_model
from rps.training import train

VARIANTS = ["study", "robust-no-rotation", "robust-no-background", "robust", "robust-no-colour", "robust-no-blur", "none"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--skip-study-row", action="store_true")
    args = parser.parse_args()
    dataset = open_dataset(require(STUDY_DATA))
    _, real = read_class_folders(require(REAL_DEV), dataset.class_names)
    configs = {variant: TrainConfig(augmentation=variant, epochs=args.epochs) for variant in VARIANTS}
    if not args.skip_study_row:
        configs["study regularised 300x300"] = TrainConfig(
            architecture="regularised", image_size=300, epochs=10, augmentation="study", patience=3,
            schedule="constant")
    rows = []
    for name, config in configs.items():
        out = RESULTS / "ablation" / name.replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)
        result = train(dataset, config, out, verbose=2)
        bundle = load_bundle(out)
        real_dev = evaluate_model(bundle.model, real, dataset.class_names, config.image_size)
        rows.append({"variant": name, "test_accuracy": result.evaluation.accuracy,
                     "real_dev_accuracy": real_dev.accuracy, "minutes": round(result.seconds / 60, 1)})
        print(rows[-1], flush=True)
        save_results("ablation", {"machine": machine(), "rows": rows})
    print("| variant | test | real photos | minutes |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['test_accuracy']:.1%} | {row['real_dev_accuracy']:.1%} | {row['minutes']} |")


if __name__ == "__main__":
    main()
