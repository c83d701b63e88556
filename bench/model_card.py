"""Write ``assets/MODEL_CARD.md`` from what was measured on the shipped model.

Reads ``assets/model/model.json`` (training record) and ``bench/results/real_rooms.json``
(written by ``bench/real_rooms.py``).  Figures are quoted only when they were measured on this
very model file (its SHA-256), each with n and a 95% Wilson score interval.

    python -m bench.model_card
"""

from __future__ import annotations

import json
import math

from bench.common import RESULTS, ROOT, model_sha256

MODEL = ROOT / "assets" / "model"
CARD = ROOT / "assets" / "MODEL_CARD.md"
# The options of ``python -m rps train`` that the card's retrain command may need, by config field.
CLI_OPTIONS = {
    "architecture": "--arch", "input": "--input", "image_size": "--image-size",
    "batch_size": "--batch-size", "epochs": "--epochs", "learning_rate": "--learning-rate",
    "augmentation": "--augmentation", "patience": "--patience", "schedule": "--schedule", "seed": "--seed",
    "members": "--members",
}
TRAINING_DATA = ("../shared/datasets/rock-paper-scissors/Rock-Paper-Scissors", "../shared/datasets/rps-real-train")


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (Wilson, 1927): sound near 0% and 100%."""
    if total == 0:
        return 0.0, 1.0
    share = correct / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def with_interval(share: float, total: int) -> str:
    low, high = wilson_interval(round(share * total), total)
    return f"{share:.1%} (n={total}, 95% CI {low:.1%}-{high:.1%})"


def retrain_command(config: dict, data: tuple[str, ...] = TRAINING_DATA) -> str:
    """The one command that retrains this model: the data, then every setting off its default."""
    from rps.config import TrainConfig

    defaults = TrainConfig().to_dict()
    words = ["python -m rps train"] + [f"--data {source}" for source in data] + ["--out runs/shipped"]
    words += [f"{flag} {config[field]}" for field, flag in CLI_OPTIONS.items()
              if field in config and config[field] != defaults[field]]
    return " ".join(words)


def measured_rows(sha: str) -> tuple[dict | None, str]:
    path = RESULTS / "real_rooms.json"
    if not path.is_file():
        return None, "not measured: run `python -m bench.real_rooms`"
    results = json.loads(path.read_text())
    if results.get("model_sha256") != sha:
        return None, "not measured on this model file: rerun `python -m bench.real_rooms`"
    return results, ""


def seeds_command(results: dict, members: int) -> str:
    """The ``bench/seeds.py`` command that measured ``results``."""
    seeds = [key.removeprefix("seed ") for key in results["rows"] if key.startswith("seed ")]
    return f"python -m bench.seeds --seeds {' '.join(seeds)}" + ("" if members == 1 else f" --members {members}")


def seed_spread(sha: str, members: int = 1) -> list[str]:
    """The run-to-run lines, from ``bench/seeds.py`` (``--members`` for an ensemble), when the
    shipped file is among its runs; for an ensemble, the single models' spread too."""
    name = "seeds" if members == 1 else f"seeds-members{members}"
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return []
    results = json.loads(path.read_text())
    if sha not in {row.get("model_sha256") for row in results["rows"].values()}:
        return []
    spread = results["summary"]["wild-dev mean"]
    kind = "training runs of this recipe" if members == 1 else f"ensembles of {members} of this recipe"
    seeds = ", ".join("42" if key == "shipped" else key.split("seed ")[-1].rstrip(")") for key in results["rows"])
    lines = ["", f"Run to run: {len(results['rows'])} {kind} (seeds {seeds}) score {spread['min']:.1%} to "
                 f"{spread['max']:.1%} on the webcam rooms, mean {spread['mean']:.1%}; this file is the default "
                 f"seed's run, not a pick (`{seeds_command(results, members)}`)."]
    single = RESULTS / "seeds.json"
    if members > 1 and single.is_file():
        alone = json.loads(single.read_text())["summary"]["wild-dev mean"]
        lines[-1] += (f" Single models of the recipe scored {alone['min']:.1%} to {alone['max']:.1%} "
                      f"(mean {alone['mean']:.1%}).")
    return lines


def figure_table(results: dict) -> list[str]:
    rows = results["rows"]
    sources = [name for name in rows if name.startswith("wild-dev/")]
    lines = ["| photos | shipped pipeline | landmark rules (untrained) | whole-photo CNN before it |",
             "|---|---|---|---|"]
    for name in sources:
        row = rows[name]
        lines.append(f"| webcam room: {name.split('/')[1]} | {with_interval(row['pipeline'], row['n'])} "
                     f"| {row['rules']:.1%} | {row['whole-photo CNN']:.1%} |")
    mean = rows["wild-dev mean of sources"]
    lines.append(f"| **webcam rooms, mean of the {len(sources)} sources** (`rps-real-wild-dev`; one person "
                 "and room each, so the mean of four is itself uncertain by a few points) "
                 f"| **{mean['pipeline']:.1%}** (worst source {mean['worst source (pipeline)']:.1%}) "
                 f"| {mean['rules']:.1%} | {mean['whole-photo CNN']:.1%} |")
    labelled = {"real-dev": "green-screen photos (`rps-real-dev`)", "study test": "the study's test set (rendered)"}
    for key, title in labelled.items():
        row = rows[key]
        lines.append(f"| {title} | {with_interval(row['pipeline'], row['n'])} | {row['rules']:.1%} "
                     f"| {row['whole-photo CNN']:.1%} |")
    small = rows.get("wild-dev photos small in a 640x480 frame with a face")
    if small:
        lines.append(f"| the webcam photos shrunk to 200 px into 640x480 frames of a face (a stand-in for whole "
                     f"frames) | {with_interval(small['pipeline'], small['n'])}; {small['no_hand']} declined "
                     f"| {small['rules']:.1%} | {small['whole-photo CNN']:.1%} |")
    row = rows["no-hand frames"]
    lines.append(f"| frames with no hand, answered \"no hand\" | {with_interval(row['pipeline'], row['n'])} "
                 f"| {row['rules']:.1%} | {row['whole-photo CNN']:.1%} |")
    for key, row in rows.items():
        if key.startswith("real photos at"):
            lines.append(f"| {key} (green-screen and webcam photos dimmed) | "
                         f"{with_interval(row['pipeline'], row['n'])}; declined {row['no_hand']} \"no hand\", "
                         f"{row['too_dark']} \"too dark\", "
                         f"wrong guesses {row['wrong_guesses']:.1%} | {row['rules']:.1%} "
                         f"| {row['whole-photo CNN']:.1%} |")
    timing = results["latency_640x480"]
    lines += ["", f"One 640x480 frame through `Predictor.predict` (decode excluded, detection and "
                  f"model included), p50 / p95: **{timing['pipeline']['p50_ms']} / {timing['pipeline']['p95_ms']} ms** "
                  f"({timing['ratio_p50']}x the whole-photo CNN's {timing['whole-photo CNN']['p50_ms']} ms, "
                  f"measured alternately in the same run); a frame without a hand, which takes every retry "
                  f"of the detector, {timing['no-hand frames']['pipeline']['p50_ms']} ms. "
                  f"Machine: {results['machine']}."]
    return lines


def failure_lines(sha: str, results: dict | None) -> list[str]:
    """"Where it fails", counted by ``bench/wild_errors.py`` for this very file."""
    path = RESULTS / "wild_errors.json"
    errors = json.loads(path.read_text()) if path.is_file() else {}
    if errors.get("model_sha256") != sha:
        return ["- Not counted for this model file yet: run `python -m bench.wild_errors`."]
    totals = errors["totals"]
    misses = totals["no_hand"] + totals["wrong_answers"]
    small = (results or {}).get("rows", {}).get("wild-dev photos small in a 640x480 frame with a face")
    worst_room = max(errors["sources"].items(),
                     key=lambda item: item[1]["confusions"].get("scissors called rock", 0))
    scissors_rock = totals["confusions"].get("scissors called rock", 0)
    return [
        "- A hand the landmarker does not find is answered \"no hand\": hands cut by the frame's edge, "
        "a fist filling the whole frame, low-contrast grey light, a hand that is a small part of a "
        f"whole frame. On the webcam photos that is {totals['no_hand']} of {totals['n']} ({totals['no_hand']} "
        f"of the {misses} misses)" + (f"; on the stand-in for whole frames, {small['no_hand']} of {small['n']}."
                                      if small else "."),
        "- A hand seen edge-on (fingers pointing at the camera or along the frame) gets poor "
        f"keypoints: scissors seen that way are called rock ({scissors_rock} of the "
        f"{totals['wrong_answers']} wrong answers on the webcam photos, "
        f"{worst_room[1]['confusions'].get('scissors called rock', 0)} of them in one room). The other wrong "
        "answers: " + ", ".join(f"{key} {count}" for key, count in totals["confusions"].items()
                                if key != "scissors called rock") + " (`bench/results/wild_errors.json`).",
    ]


def members_text(metadata: dict) -> str:
    members = metadata["config"].get("members", 1)
    return "" if members == 1 else f" ({members} members x {metadata['config']['epochs']})"


def model_text(metadata: dict) -> str:
    """The model in words: one regularised CNN, or the average of an ensemble of them."""
    layers = "(`hand`: batch-normalised 3x3 convolution blocks, global max pooling, L2, dropout)"
    members = metadata["config"].get("members", 1)
    if members == 1:
        return f"a regularised CNN {layers}"
    seeds = ", ".join(str(metadata["config"]["seed"] + index) for index in range(members))
    return (f"the average of the probabilities of {members} regularised CNNs {layers}, trained one "
            f"after another from seeds {seeds} (an ensemble; docs/hands-first.md says why)")


def card(metadata: dict, sha: str) -> str:
    results, missing = measured_rows(sha)
    size_mb = (MODEL / "model.keras").stat().st_size / 1e6
    training = metadata["training"]
    found = metadata["dataset"].get("hands_found") or {}
    train_found = found.get("train", ["?", "?"])
    lines = [
        "---",
        "license: cc-by-sa-4.0",
        "library_name: keras",
        "pipeline_tag: image-classification",
        "tags: [hand-gesture, rock-paper-scissors, keras, mediapipe, hand-landmarks]",
        "metrics: [accuracy]",
        "---",
        "",
        "# Model card: the shipped rock-paper-scissors classifier",
        "",
        f"`assets/model/model.keras` ({size_mb:.2f} MB, {metadata['parameters']:,} parameters), described by "
        "`assets/model/model.json`; with the hand landmarker in `assets/hand_landmarker/`.",
        "",
        "## What it does",
        "A photo or webcam frame goes through one pipeline (`rps.preprocessing`): exposure is "
        "normalised; MediaPipe's hand landmarker finds one hand and its 21 keypoints (none: the "
        "answer is \"no hand\"; a black frame: \"too dark\"); the hand is rotated upright, scaled "
        "and centred; and the model, " + model_text(metadata) + ", reads the hand's skeleton drawn "
        "as 6 bone heat maps (depth left out) and answers paper, rock or scissors. The model sees no "
        "pixel of the room: that is why it holds up in rooms it has never seen.",
        "",
        "**Intended use**: a webcam or photo of one hand showing rock, paper or scissors, about an "
        "arm's length from the camera, in ordinary indoor light; a demo, a game, a teaching example "
        "of a CNN. **Out of scope**: several hands at once (the most confident one is used), "
        "gestures other than the three (it will still pick one of the three), sign language, "
        "anything where a wrong answer harms someone.",
        "",
        "## How to get started",
        "```python",
        "from rps import Predictor  # pip install . (or -e .) in this repository",
        "prediction = Predictor().predict(\"hand.jpg\")  # path, bytes, PIL image or RGB array",
        "prediction.label, dict(prediction)  # 'rock', {'paper': ..., 'rock': ..., 'scissors': ...}",
        "```",
        "or `rps predict hand.jpg`, or `python app.py` for the web app. `prediction.label` is None, "
        "with `prediction.reason` \"no hand\" or \"too dark\", when the pipeline declines the photo.",
        "",
        "Elsewhere: `rps export --format tflite|onnx|saved_model [--int8]` writes the CNN alone, whose input is the hand's 21 keypoints (float32, 1 x 21 x 3) after MediaPipe's hand landmarker and `rps.hands`' alignment, and whose output is the probabilities in the order of the class names that each file carries in its own metadata; `rps live` labels a webcam or a video on the desktop.",
        "",
        "## Measured figures",
    ]
    if results is None:
        lines.append(f"Accuracy on real photos: {missing}.")
    else:
        lines += figure_table(results)
        lines += seed_spread(sha, metadata["config"].get("members", 1))
        lines += ["", "Rerun: `python -m bench.real_rooms`, then `python -m bench.model_card`. Every photo "
                  "goes through `Predictor.predict`; a \"no hand\" answer on a labelled photo counts as wrong. "
                  "The wild-dev figure is the mean over its four sources, as each source is one person "
                  "in one room."]
    lines += [
        "",
        f"Training record (`model.json`): validation accuracy {metadata['metrics']['validation_accuracy']:.1%} "
        f"(the study's 33-image validation folder), test accuracy {metadata['metrics']['test_accuracy']:.1%}; "
        f"{training['epochs_run']} epochs{members_text(metadata)} in {training['seconds'] / 60:.1f} min of "
        f"fitting on {training['device']} "
        f"({training['seconds_per_epoch']} s per epoch). Hands were found in {train_found[0]} of "
        f"{train_found[1]} training photos; the others were left out.",
        "",
        "![training curves](model/curves.png) ![test confusion](model/confusion.png)",
        "",
        "## Data",
        "- Trained on the training split (2,520 images) of the Rock Paper Scissors dataset by "
        "Laurence Moroney (2019, CC BY 2.0, http://laurencemoroney.com/rock-paper-scissors-dataset), "
        "computer-generated hands on white, and on `rps-real-train` (1,648 photos of real hands on a "
        "green backdrop, from \"rock-paper-scissors\" by Julien de la Bruère-Terreault, CC BY-SA 4.0). "
        "Because of the latter, this model is shared under CC BY-SA 4.0 obligations: name both "
        "sources and their licences when you redistribute it.",
        "- Validated on the study's validation folder, tested on its test split.",
        "- **Which sets shaped the recipe**: the hand-detector retries were chosen on `rps-real-train` "
        "and the no-hand frames (`bench/detector_retries.py`), so the no-hand figure is optimistic. "
        "The choice to feed the model the skeleton rather than the crop's pixels followed an error "
        "analysis on `rps-real-wild-dev` and `rps-real-dev` (a crop CNN called open hands in a dark "
        "room rock while the keypoints said paper), and leaving the landmarker's depth out followed "
        "a diagnosis on the study's test set (open hands tilted back called rock); those figures are "
        "optimistic by however much these choices fitted them. Averaging three models was chosen "
        "because three single runs of the recipe spread from 94.3% to 95.3% on `rps-real-wild-dev`, "
        "as much as their shortfall from the 95% goal; it was decided, and recorded, before any "
        "ensemble was scored, and shipped as first measured. No checkpoint, seed, epoch count or "
        "threshold was picked on any of them (docs/hands-first.md). Webcam photos kept outside this "
        "project check the result independently.",
        f"- Dataset fingerprint: `{metadata['dataset']['fingerprint']}`.",
        "- The hand landmarker (`assets/hand_landmarker/hand_landmarker.task`) holds MediaPipe's "
        "`palm_detection_full.tflite` and `hand_landmark_full.tflite` from the mediapipe 0.10.21 "
        "wheel, Apache 2.0 (`assets/hand_landmarker/LICENSE`); it was not trained here.",
        "",
        "## Where it fails",
        *failure_lines(sha, results),
        "- Several hands: only the most confident is classified. Gestures that are neither rock, paper "
        "nor scissors still get one of the three.",
        "- Training is not repeatable bit for bit on a CPU; another run of the same command is another "
        "draw, and only this file was measured.",
        "",
        "## Training configuration",
        f"Retrain ({training['seconds'] / 60:.1f} min of fitting on 2 cores, after finding the hands in every "
        f"photo): "
        f"`{retrain_command(metadata['config'])}`, then replace `assets/model` with `runs/shipped`",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in metadata["config"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    metadata = json.loads((MODEL / "model.json").read_text())
    CARD.write_text(card(metadata, model_sha256(MODEL)))
    print(f"wrote {CARD}")


if __name__ == "__main__":
    main()
