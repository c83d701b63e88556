"""Ablation: what each part of the robust augmentation buys, next to the study's model.

Trains the shipped config with each part of the robust recipe switched off in turn, plus the
study's recipe on the compact model and the study's regularised CNN at 300x300 with its own
settings, and reports test and real-photo accuracy for each (the real photos also mirrored,
so that their hands enter from the left as well as the right), and the test hands on the plain
backdrops of ``bench/backdrops.py``, a figure that uses no real photo.  Budget: about 15 minutes per
compact row and most of an hour for the 300x300 row on a 2-core CPU, which is reused from
``bench/study.py`` when that benchmark has trained the same config; ``--epochs`` shortens the
compact rows (the comparison stays fair: every compact row gets the same budget).

    python bench/ablation.py [--epochs 24] [--skip-study-row]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from backdrops import backdrop_accuracies, rendered_test_set
from common import (REAL_DEV, RESULTS, STUDY_DATA, machine, mirrored_accuracy, require, save_results,
                    study_config)

from rps.artifacts import load_bundle, read_metadata
from rps.config import TrainConfig
from rps.datasets import open_dataset, read_class_folders
from rps.evaluation import evaluate_model
from rps.errors import RpsError
from rps.training import train

VARIANTS = ["study", "robust-no-rotation", "robust-no-background", "robust", "robust-no-colour", "robust-no-blur",
            "robust-no-erasing", "robust-no-fingers", "robust-no-clean", "none"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--skip-study-row", action="store_true")
    args = parser.parse_args()
    dataset = open_dataset(require(STUDY_DATA))
    _, real = read_class_folders(require(REAL_DEV), dataset.class_names)
    configs = {variant: TrainConfig(augmentation=variant, epochs=args.epochs) for variant in VARIANTS}
    if not args.skip_study_row:
        configs["study regularised 300x300"] = study_config("regularised")
    rows = []
    for name, config in configs.items():
        reused = _finished_study_run(config)
        out = reused or RESULTS / "ablation" / name.replace(" ", "-")
        if reused:
            print(f"{name}: reusing {out}, which bench/study.py trained with this exact config")
        else:
            shutil.rmtree(out, ignore_errors=True)
            train(dataset, config, out, verbose=2)
        bundle = load_bundle(out)
        real_dev = evaluate_model(bundle.model, real, dataset.class_names, config.image_size)
        rows.append({"variant": name, "test_accuracy": bundle.metadata["metrics"]["test_accuracy"],
                     "real_dev_accuracy": real_dev.accuracy,
                     "real_dev_mirrored_accuracy": mirrored_accuracy(bundle.model, real, config.image_size),
                     "plain_backdrops_accuracy": backdrop_accuracies(
                         bundle.model, *rendered_test_set(config.image_size))["plain mean"],
                     "minutes": round(bundle.metadata["training"]["seconds"] / 60, 1)})
        print(rows[-1], flush=True)
        save_results("ablation", {"machine": machine(), "rows": rows})
    print("| variant | test | real photos | real photos mirrored | test on plain backdrops | minutes |\n"
          "|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['test_accuracy']:.1%} | {row['real_dev_accuracy']:.1%} "
              f"| {row['real_dev_mirrored_accuracy']:.1%} | {row['plain_backdrops_accuracy']:.1%} | {row['minutes']} |")


def _finished_study_run(config: TrainConfig) -> Path | None:
    """The study benchmark's run of this config, if there is one: it takes an hour to repeat."""
    folder = RESULTS / "study" / config.architecture
    try:
        same = read_metadata(folder)["config"] == config.to_dict()
    except RpsError:
        return None
    return folder if same else None


if __name__ == "__main__":
    main()
