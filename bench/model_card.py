"""Write assets/MODEL_CARD.md from what was measured, so the card cannot drift from the model.

Reads the shipped model's ``model.json``, ``bench/results/shipped_model.json`` (written by
``bench/shipped_model.py``), ``bench/results/seeds.json`` (``bench/seeds.py``),
``bench/results/backdrops.json`` (``bench/backdrops.py``) and ``bench/results/hand_size.json``
(``bench/hand_size.py``), draws the real-photo confusion matrix, and writes the card.

    python bench/shipped_model.py && python bench/seeds.py && python bench/backdrops.py \
        && python bench/hand_size.py && python bench/model_card.py
"""

from __future__ import annotations

import json

from common import RESULTS, ROOT, model_sha256

from rps import plots
from rps.config import TrainConfig

MODEL = ROOT / "assets" / "model"


def percent(value) -> str:
    return f"{value:.1%}" if isinstance(value, float) else str(value)


def unmet_accuracy_goals(figures: dict) -> list[str]:
    unmet = [f"{label} {percent(figures[key])} (goal {goal:.0%})"
             for key, label, goal in (("test_accuracy", "test accuracy", 0.99),
                                      ("real_dev_accuracy", "real-photo accuracy", 0.90))
             if figures[key] < goal]
    if not unmet:
        return []
    return [f"- **Goals not met:** {'; '.join(unmet)}. This model is a baseline to beat, not the finished product."]


def seed_spread(config: dict, shipped_sha256: str) -> list[str]:
    """The limitation line on seeds, from ``bench/seeds.py``'s results when they match this model.

    The shipped model must be one of the seed runs, byte for byte: a matching config alone
    would also accept runs of an older augmentation recipe under the same name.
    """
    path = RESULTS / "seeds.json"
    seeds = json.loads(path.read_text()) if path.exists() else None
    shipped_among_runs = seeds is not None and any(row.get("model_sha256") == shipped_sha256
                                                   for row in seeds["rows"])
    if not shipped_among_runs or {**seeds["config"], "seed": config["seed"]} != config:
        print(f"warning: the shipped model is none of the seed runs in {path}; run bench/seeds.py "
              "and ship its run of the default seed")
        return ["- One training run is one draw on real hands; the spread over seeds of this config "
                "is not measured (`python bench/seeds.py`)."]
    summary, listed = seeds["summary"], ", ".join(str(row["seed"]) for row in seeds["rows"])
    span = {name: f"{summary[name]['min']:.1%} to {summary[name]['max']:.1%} (mean {summary[name]['mean']:.1%})"
            for name in ("test", "real_dev", "real_dev_mirrored")}
    return [f"- One training run is one draw on real hands: {len(seeds['rows'])} seeds of this config "
            f"({listed}) scored {span['real_dev']} on the real photos, {span['real_dev_mirrored']} on "
            f"them mirrored and {span['test']} on test (`python bench/seeds.py`). Treat the "
            "real-photo figures above as one draw, not as what the recipe guarantees."]


def figures_of_shipped_model(benchmark: str, shipped_sha256: str) -> dict | None:
    """``bench/<benchmark>.py``'s entry for the shipped model, or None when it measured another."""
    path = RESULTS / f"{benchmark}.json"
    rows = json.loads(path.read_text())["models"].values() if path.exists() else []
    measured = [row for row in rows if row.get("model_sha256") == shipped_sha256]
    if not measured:
        print(f"warning: {path} has no figures for the shipped model; run python bench/{benchmark}.py")
        return None
    return measured[0]


def plain_backdrops(shipped_sha256: str) -> list[str]:
    """The limitation line on plain backdrops, from ``bench/backdrops.py`` when it measured this model."""
    measured = figures_of_shipped_model("backdrops", shipped_sha256)
    if measured is None:
        return ["- How much the model leans on the white behind the test hands is not measured "
                "(`python bench/backdrops.py`)."]
    scores = measured["test"]
    plain = {name: value for name, value in scores.items() if name not in ("as rendered", "plain mean")}
    worst = min(plain, key=plain.get)
    return [f"- Backdrops matter: the test hands, {percent(scores['as rendered'])} right on their white, "
            f"score {percent(scores['plain mean'])} on average when the white is swapped for one of "
            f"{len(plain)} plain colours (worst: {worst}, {percent(plain[worst])}; `python bench/backdrops.py`). "
            "Expect more errors in front of a plain wall than the test figure suggests."]


def small_hands(shipped_sha256: str) -> list[str]:
    """The limitation line on hand size, from ``bench/hand_size.py`` when it measured this model."""
    measured = figures_of_shipped_model("hand_size", shipped_sha256)
    if measured is None:
        return ["- How small a hand the model still reads is not measured (`python bench/hand_size.py`)."]
    smallest, on_plain = list(measured["rows"].items())[-1]  # the smallest size, on plain backdrops
    classes = {name: value for name, value in on_plain.items() if name != "all"}
    weakest = min(classes, key=classes.get)
    return [f"- Small hands: with the test hands shrunk to {smallest.split()[0]} of the frame and set on plain "
            f"backdrops, {weakest} is right {percent(classes[weakest])} of the time (all classes: "
            f"{percent(on_plain['all'])}; `python bench/hand_size.py`). Hold the hand close to the camera."]


# TrainConfig fields and the ``python -m rps train`` options that set them.
CLI_OPTIONS = {"architecture": "--arch", "epochs": "--epochs", "image_size": "--image-size",
               "batch_size": "--batch-size", "learning_rate": "--learning-rate",
               "augmentation": "--augmentation", "patience": "--patience", "schedule": "--schedule",
               "seed": "--seed"}


def retrain_command(config: dict) -> str:
    """The train command for ``config``: today's defaults plus an option for each setting that differs.

    The defaults move on (40 epochs since the eleventh session) while the shipped model stays
    as it was trained, so a bare command would no longer retrain it.
    """
    defaults = TrainConfig().to_dict()
    options = [f"{flag} {config[key]}" for key, flag in CLI_OPTIONS.items()
               if key in config and config[key] != defaults[key]]
    return " ".join(["python -m rps train --data ../shared/datasets/rock-paper-scissors/Rock-Paper-Scissors",
                     "--out assets/model", *options])


def weakest_class(matrix: list[list[int]], names: list[str]) -> str:
    """The class of lowest recall in a confusion matrix, and what it is mistaken for."""
    recalls = [row[index] / max(sum(row), 1) for index, row in enumerate(matrix)]
    weakest = min(range(len(names)), key=recalls.__getitem__)
    if recalls[weakest] == 1.0:
        return "none (every class 100%)"
    mistaken = [(count, name) for name, count in zip(names, matrix[weakest]) if name != names[weakest] and count]
    called = f", mostly called {max(mistaken)[1]}" if mistaken else ""
    return f"**{names[weakest]}** (recall {percent(recalls[weakest])}{called})"


def main() -> None:
    metadata = json.loads((MODEL / "model.json").read_text())
    measured = json.loads((RESULTS / "shipped_model.json").read_text())
    shipped_sha256 = model_sha256(MODEL)
    if measured.get("model_sha256") != shipped_sha256:
        raise SystemExit("error: bench/results/shipped_model.json was measured on another model; "
                         "run python bench/shipped_model.py first.")
    figures = measured["figures"]
    names = metadata["class_names"]
    plots.save_figure(plots.confusion_figure(measured["confusion"]["real_dev"], names, "real photos (rps-real-dev)"),
                      MODEL / "confusion_real_dev.png")
    config = metadata["config"]
    command = retrain_command(config)
    lines = [
        "# Model card: the shipped rock-paper-scissors classifier",
        "",
        f"`assets/model/model.keras` ({figures['model_megabytes']} MB), described by `assets/model/model.json`.",
        f"Architecture `{metadata['architecture']}`: {metadata['architecture_description']} "
        f"({metadata['parameters']:,} parameters), input {metadata['image_size']}x{metadata['image_size']} RGB "
        "(raw 0-255 pixels; the frame keeps its aspect ratio, its short side extended with edge pixels), classes "
        f"{', '.join(names)}.",
        "",
        "## Measured figures",
        f"Machine: {measured['machine']}.",
        "",
        "| figure | measured | goal |",
        "|---|---|---|",
        f"| accuracy, official test set (372 rendered images) | {percent(figures['test_accuracy'])} | >= 99% |",
        f"| accuracy, validation folder (33 rendered images) | {percent(figures['validation_accuracy'])} | |",
        f"| accuracy, real photos never trained on (rps-real-dev, 90) | {percent(figures['real_dev_accuracy'])} | >= 90% |",
        f"| the same photos mirrored (hands entering from the left) | {percent(figures['real_dev_mirrored_accuracy'])} | |",
        f"| model file | {figures['model_megabytes']} MB | <= 5 MB |",
        f"| training from scratch, this config | {figures['training_minutes']} min | <= 15 min |",
        f"| `Predictor.predict`, one 640x480 frame, p50 / p95 | {figures['latency_p50_ms']} / "
        f"{figures['latency_p95_ms']} ms | p50 <= 10 ms |",
        f"| batched inference | {figures['batched_images_per_second']} images/s | >= 300 |",
        "",
        "Rerun: `python bench/shipped_model.py` (figures), `python bench/seeds.py`, "
        "`python bench/backdrops.py` and `python bench/hand_size.py` (the seed spread, the backdrops and the hand sizes under Limitations), then `python bench/model_card.py` (this card).",
        "",
        "Confusion matrices (rows: true class, columns: predicted, order "
        f"{', '.join(names)}):",
        "",
        f"- test: {measured['confusion']['test']}",
        f"- validation: {measured['confusion']['validation']}",
        f"- real photos: {measured['confusion']['real_dev']}",
        "",
        "![test confusion](model/confusion.png) ![real-photo confusion](model/confusion_real_dev.png)",
        "",
        "![training curves](model/curves.png)",
        "",
        "## Data",
        "Trained only on the training split (2,520 images) of the Rock Paper Scissors dataset by "
        "Laurence Moroney (2019, CC BY 2.0, http://laurencemoroney.com/rock-paper-scissors-dataset), "
        "computer-generated hands on white; validated on its validation folder (labelled by file name); "
        "tested on its test split. The real photos (rps-real-dev, Julien de la Bruère-Terreault, "
        "CC BY-SA 4.0) were used only to measure, never to train or to pick checkpoints.",
        f"Dataset fingerprint: `{metadata['dataset']['fingerprint']}`.",
        "",
        "## Training configuration",
        "| setting | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in config.items()],
        "",
        f"Retrain (one command, about {figures['training_minutes']} minutes on the machine above). Training is "
        "not repeatable bit for bit, even on one machine with the same seed, and TensorFlow's CPU kernels differ "
        "by processor: the same command gives another draw of the same recipe, as the seed spread under "
        "Limitations describes:",
        "",
        f"    {command}",
        "",
        f"Trained {metadata['training']['epochs_run']} epochs on {metadata['training']['device']}, "
        f"TensorFlow {metadata['training']['tensorflow']}, Keras {metadata['training']['keras']}.",
        "",
        "## Limitations",
        *unmet_accuracy_goals(figures),
        f"- Weakest class on the test set: {weakest_class(measured['confusion']['test'], names)}; "
        f"on real photos: {weakest_class(measured['confusion']['real_dev'], names)}.",
        "- Three classes only; anything else in front of the camera is still called rock, paper or scissors.",
        "- The real-photo figure comes from 90 photos of a few people's hands on one green background, "
        "all entering from the right (the mirrored row shows them entering from the left); other "
        "skin tones, lighting, cluttered backgrounds and partly hidden hands are not measured.",
        "- The training hands are rendered; the robust augmentation (background replacement, rotation "
        "up to 100 degrees either way, scale in proportion, mirror images, colour jitter, blur and noise, "
        "random patches erased, finger gaps filled in some images, with a quarter of the images left clean) narrows but does "
        "not close the gap to real hands. Hands upside down were never trained on.",
        *seed_spread(config, shipped_sha256),
        *plain_backdrops(shipped_sha256),
        *small_hands(shipped_sha256),
        "- Frames keep their aspect ratio (the short side is extended with its edge pixels); a hand that fills only a corner of a wide frame is small for the model.",
    ]
    (ROOT / "assets" / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {ROOT / 'assets' / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
