"""How much the shipped recipe's figures move from one training run to the next.

Trains the default recipe (the shipped model's retrain command) once per seed, then scores every
run, and the shipped model, through the serving path on each ``rps-real-wild-dev`` source,
``rps-real-dev`` and the study's test set.  The shipped model is the default seed's run, never
a pick among these: this measures the spread, it chooses nothing.

    python -m bench.seeds --seeds 7 1                  # single models: about 4 minutes per seed
    python -m bench.seeds --seeds 7 1 --members 3      # ensembles like the shipped one: about 9

Writes ``bench/results/seeds.json`` (``seeds-members<N>.json`` for ensembles); runs go to
``bench/results/seeds/<seed>`` (``seeds-members<N>/<seed>``), reused when there.  With
``--members N`` a run of seed ``s`` averages models of seeds ``s`` to ``s + N - 1``; the
shipped row is scored whatever it is.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

from bench.common import DATASETS, RESULTS, ROOT, STUDY_DATA, machine, model_sha256, require, save_results
from rps.config import TrainConfig
from rps.datasets import evaluation_split, merge_datasets, open_dataset
from rps.evaluation import evaluate_prepared, prepare_split
from rps.prediction import Predictor
from rps.training import train

WILD_DEV = DATASETS / "rps-real-wild-dev"


def score(folder: Path) -> dict:
    predictor = Predictor(folder)
    sets = {f"wild-dev/{source.name}": source for source in sorted(require(WILD_DEV).iterdir()) if source.is_dir()}
    sets.update({"real-dev": require(DATASETS / "rps-real-dev"), "study test": require(STUDY_DATA)})
    row = {}
    for name, folder_of_photos in sets.items():
        _, images = evaluation_split(folder_of_photos, tuple(predictor.class_names))
        prepared = prepare_split(images.paths, predictor.preprocessor)
        row[name] = evaluate_prepared(predictor.runner, prepared, images.labels, predictor.class_names).accuracy
    row["wild-dev mean"] = round(statistics.mean(value for key, value in row.items() if key.startswith("wild")), 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 1])
    parser.add_argument("--members", type=int, default=1, help="models averaged per run")
    args = parser.parse_args()
    name = "seeds" if args.members == 1 else f"seeds-members{args.members}"
    dataset = merge_datasets([open_dataset(require(STUDY_DATA)), open_dataset(require(DATASETS / "rps-real-train"))])
    shipped = ROOT / "assets" / "model"
    rows = {"shipped": {"model_sha256": model_sha256(shipped), **score(shipped)}}
    print(rows, flush=True)
    for seed in args.seeds:
        out = RESULTS / name / str(seed)
        if not (out / "model.keras").is_file():
            train(dataset, replace(TrainConfig(), seed=seed, members=args.members), out, verbose=0)
        rows[f"seed {seed}"] = {"model_sha256": model_sha256(out), **score(out)}
        print(seed, rows[f"seed {seed}"], flush=True)
    names = [key for key in next(iter(rows.values())) if key != "model_sha256"]
    summary = {name: {"mean": round(statistics.mean(row[name] for row in rows.values()), 4),
                      "min": min(row[name] for row in rows.values()),
                      "max": max(row[name] for row in rows.values())} for name in names}
    payload = {"machine": machine(), "members": args.members, "rows": rows, "summary": summary}
    print(f"saved {save_results(name, payload)}")
    for name, figures in summary.items():
        print(f"{name}: mean {figures['mean']:.1%}, {figures['min']:.1%} to {figures['max']:.1%}")


if __name__ == "__main__":
    main()
