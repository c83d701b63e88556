"""Seed spread: the shipped config trained with several seeds, each scored on every split.

One run's real-photo figure swings by tens of points from seed to seed (README), so a recipe is
judged on the mean and the range over seeds, never on one run.  The real photos are scored as
they are (every hand enters from the right) and mirrored (from the left): a webcam user's hand
comes from either side.  About 6 minutes per seed on the faster 2-core machine (README,
"Numbers").  ``--reuse`` scores the runs already in ``bench/results/seeds/`` instead of
training them again: only valid for the code that trained them.

    python bench/seeds.py [--seeds 42 7 1 2] [--epochs 32] [--reuse]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics

from common import (REAL_DEV, RESULTS, STUDY_DATA, machine, mirrored_accuracy, model_sha256, require,
                    save_results)

from rps.artifacts import load_bundle
from rps.config import TrainConfig
from rps.datasets import open_dataset, read_class_folders
from rps.evaluation import evaluate_model
from rps.training import train

SPLITS = ("validation", "test", "real_dev", "real_dev_mirrored")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1, 2])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs,
                        help="training epochs (default: the shipped config's)")
    parser.add_argument("--reuse", action="store_true", help="score existing runs, do not train")
    args = parser.parse_args()
    dataset = open_dataset(require(STUDY_DATA))
    _, real = read_class_folders(require(REAL_DEV), dataset.class_names)
    splits = {"validation": dataset.validation, "test": dataset.test, "real_dev": real}
    rows = []
    recipe = TrainConfig(epochs=args.epochs)
    for seed in args.seeds:
        config = dataclasses.replace(recipe, seed=seed)
        out = RESULTS / "seeds" / str(seed)
        if not args.reuse:
            shutil.rmtree(out, ignore_errors=True)
            train(dataset, config, out, verbose=2)
        bundle = load_bundle(out)
        if bundle.metadata["config"] != config.to_dict():
            raise SystemExit(f"error: {out} was trained with another config; run without --reuse.")
        row = {"seed": seed, "minutes": round(bundle.metadata["training"]["seconds"] / 60, 1),
               "model_sha256": model_sha256(out)}
        for name, images in splits.items():
            row[name] = evaluate_model(bundle.model, images, dataset.class_names, config.image_size).accuracy
        row["real_dev_mirrored"] = mirrored_accuracy(bundle.model, real, config.image_size)
        rows.append(row)
        print(row, flush=True)
    summary = {name: {"mean": round(statistics.mean(row[name] for row in rows), 4),
                      "min": min(row[name] for row in rows), "max": max(row[name] for row in rows)}
               for name in SPLITS}
    save_results("seeds", {"machine": machine(), "config": recipe.to_dict(), "rows": rows,
                           "summary": summary})
    print("| seed | validation | test | real photos | real photos mirrored | minutes |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['seed']} | " + " | ".join(f"{row[name]:.1%}" for name in SPLITS) + f" | {row['minutes']} |")
    print("| mean (min to max) | " + " | ".join(
        f"{summary[name]['mean']:.1%} ({summary[name]['min']:.1%} to {summary[name]['max']:.1%})"
        for name in SPLITS) + " | |")


if __name__ == "__main__":
    main()
