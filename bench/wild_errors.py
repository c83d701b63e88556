"""What the shipped model gets wrong on the webcam rooms: declines and confusions per source.

Runs the serving path (``Predictor``, as ``python -m rps evaluate``) over each
``rps-real-wild-dev`` source and records the photos declined ("no hand") and the wrong answers
by true and predicted class.  The model card's "Where it fails" quotes these counts.  Measures
only; nothing is tuned here.

    python -m bench.wild_errors

Writes ``bench/results/wild_errors.json``.
"""

from __future__ import annotations

from bench.common import DATASETS, machine, model_sha256, require, save_results
from rps.datasets import evaluation_split
from rps.evaluation import evaluate_prepared, prepare_split
from rps.prediction import SHIPPED_MODEL, Predictor


def main() -> None:
    predictor = Predictor()
    names = tuple(predictor.class_names)
    sources = {}
    for folder in sorted(path for path in require(DATASETS / "rps-real-wild-dev").iterdir() if path.is_dir()):
        _, images = evaluation_split(folder, names)
        report = evaluate_prepared(predictor.runner, prepare_split(images.paths, predictor.preprocessor),
                                   images.labels, names)
        wrong = {f"{names[true]} called {names[guess]}": count
                 for true, row in enumerate(report.confusion) for guess, count in enumerate(row)
                 if true != guess and count}
        sources[folder.name] = {"n": report.count, "accuracy": report.accuracy, "no_hand": report.no_hand,
                                "wrong_answers": sum(wrong.values()), "confusions": wrong}
        print(folder.name, sources[folder.name], flush=True)
    totals = {"n": sum(row["n"] for row in sources.values()),
              "no_hand": sum(row["no_hand"] for row in sources.values()),
              "wrong_answers": sum(row["wrong_answers"] for row in sources.values())}
    confusions: dict[str, int] = {}
    for row in sources.values():
        for key, count in row["confusions"].items():
            confusions[key] = confusions.get(key, 0) + count
    totals["confusions"] = dict(sorted(confusions.items(), key=lambda item: -item[1]))
    payload = {"machine": machine(), "model_sha256": model_sha256(SHIPPED_MODEL), "sources": sources,
               "totals": totals}
    print(totals)
    print(f"saved {save_results('wild_errors', payload)}")


if __name__ == "__main__":
    main()
