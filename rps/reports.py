"""What the app and the CLI say about predictions, models and runs, as Markdown.

Every user-chosen name (a class, a file, a run) passes through ``escape_markdown`` so it shows
literally.  Nothing here imports gradio: the app places these texts in its components.
"""

from __future__ import annotations

import html
from pathlib import Path

# The Classify and Live labels show this many of the most probable classes, whatever the
# served model has (3 for rock, paper, scissors; a 27-letter alphabet shows its top 5).
TOP_CLASSES = 5

DECLINED_TEXT = {
    "no hand": "No hand found: hold one hand up, palm or back to the camera, fully in view.",
    "too dark": "Too dark to see a hand: turn on a light or face a window.",
}


def escape_markdown(text: str) -> str:
    """``text`` shown literally inside Markdown: no HTML elements, emphasis, links or tables."""
    escaped = html.escape(str(text), quote=False)
    return "".join("\\" + character if character in "\\`*_[]()#|!~" else character
                   for character in escaped)


def top_classes(prediction, count: int = TOP_CLASSES) -> dict[str, float] | str:
    """The ``count`` most probable classes of a ``rps.prediction.Prediction``, most probable
    first, or the sentence saying why the photo was declined."""
    if prediction.reason:
        return DECLINED_TEXT.get(prediction.reason, prediction.reason)
    return dict(sorted(prediction.items(), key=lambda item: -item[1])[:count])


def model_summary(metadata: dict) -> str:
    """A served model's ``model.json`` as a short Markdown summary: classes, input, size,
    the metrics it recorded (unset ones left out), how it was trained, its settings."""
    metrics = metadata.get("metrics", {})
    training = metadata.get("training", {})
    config = metadata.get("config", {})
    lines = [
        f"### Served model: `{escape_markdown(metadata.get('architecture', '?'))}`",
        f"- Classes ({len(metadata['class_names'])}): "
        f"{', '.join(escape_markdown(name) for name in metadata['class_names'])}",
        _input_line(metadata),
        f"- Parameters: {metadata['parameters']:,}" if isinstance(metadata.get("parameters"), int)
        else "- Parameters: ?",
    ]
    for key, value in metrics.items():
        if key == "note":
            lines.append(f"- ({escape_markdown(value)})")
        elif value is not None:
            lines.append(f"- {key.replace('_', ' ')}: **{value:.2%}**" if isinstance(value, float)
                         else f"- {key.replace('_', ' ')}: {value}")
    if training:
        members, run = config.get("members"), training.get("epochs_run")
        each = ""
        if isinstance(members, int) and members > 1:  # an ensemble's epochs are counted over its members
            each = (f" ({members} members x {config['epochs']})" if run == members * config.get("epochs", 0)
                    else f" (over {members} members)")
        refit = (f", then fit again on all its photos: {training['seconds_with_refit']} s in all"
                 if "seconds_with_refit" in training else "")
        lines.append(f"- Trained {training.get('epochs_run', '?')} epochs{each} on {training.get('device', '?')}"
                     f" in {training.get('seconds', '?')} s{refit}")
    if config:
        lines.append("\n| setting | value |\n|---|---|")
        lines.extend(f"| {key} | {escape_markdown(value)} |" for key, value in config.items() if value is not None)
    return "\n".join(lines)


# Architectures that read only the hand's keypoints (the crop is for people to look at).
KEYPOINT_ONLY = ("hand", "finetuned")


def _input_line(metadata: dict) -> str:
    size = metadata.get("image_size", "?")
    if metadata.get("input") != "hand":
        return f"- Input: the whole photo at {size}x{size} RGB"
    if metadata.get("architecture") in KEYPOINT_ONLY:
        return ("- Input: the 21 keypoints of the hand found in the photo, aligned upright (drawn as a "
                f"{size}x{size} skeleton inside the model); photos without a hand are answered \"no hand\"")
    return (f"- Input: the hand found in the photo, as an aligned {size}x{size} RGB crop and its 21 keypoints; "
            "photos without a hand are answered \"no hand\"")


def served_history(history: list[dict]) -> str:
    """The served-model history (``ModelService.served_history``), newest first, at most 20."""
    if not history:
        return "\n\n### Served history\nThe bundled model has served since the start."
    rows = [f"| {entry.get('served_at', '?')} | `{escape_markdown(entry['model'])}` |" for entry in reversed(history)]
    return "\n\n### Served history (newest first)\n| since | model |\n|---|---|\n" + "\n".join(rows[:20])


def model_card_body(card: Path) -> str:
    """A Hugging Face model card (``assets/MODEL_CARD.md``) for showing in a page: without its
    YAML metadata and its picture links; "" when the file cannot be read."""
    try:
        text = Path(card).read_text()
    except OSError:
        return ""
    if text.startswith("---"):
        text = text.split("\n---", 1)[-1].lstrip("-\n")
    return "\n".join(line for line in text.splitlines() if not line.startswith("!["))


def progress_line(job) -> str:
    """One line on a ``rps.service.TrainingJob``: status, device, data, the current
    preparation, epoch and step, the estimated time left, and its message."""
    snapshot = job.progress()
    parts = [f"**{job.status}** on {job.device}: {escape_markdown(job.dataset_description)}"]
    if snapshot.preparing and not snapshot.epochs:
        split, done, total = snapshot.preparing
        doing = "finding the hands in" if job.config.input == "hand" else "reading"
        parts.append(f"{doing} the {split} photos: {done}/{total}")
    if snapshot.epochs:
        parts.append(f"epoch {min(snapshot.epoch + 1, snapshot.epochs)}/{snapshot.epochs}, "
                     f"step {snapshot.step}/{snapshot.steps or '?'}")
    if snapshot.eta_seconds is not None and not job.done:
        parts.append(f"about {snapshot.eta_seconds:.0f} s left (early stopping may end sooner)")
    if job.message:
        parts.append(escape_markdown(job.message))
    return " · ".join(parts)


def run_results(job) -> str:
    """A finished job's scores: validation, test with per-class precision, recall and F1, the
    comparison with the model serving now, how validation was chosen, files skipped."""
    result = job.result
    if result is None:
        return ""
    lines = [f"Run `{job.run_id}` ({result.seconds_per_epoch:.1f} s per epoch on {result.device}): "
             f"validation accuracy **{result.validation.accuracy:.2%}**"]
    if result.evaluation:
        lines[0] += f", test accuracy **{result.evaluation.accuracy:.2%}** on {result.evaluation.count} images"
        lines.append("")
        for name, scores in result.evaluation.per_class.items():
            lines.append(f"- {escape_markdown(name)}: precision {scores['precision']:.2f}, "
                         f"recall {scores['recall']:.2f}, F1 {scores['f1']:.2f}")
    comparison = getattr(job, "comparison", None)
    if comparison:
        lines.append(f"\nOn this run's {comparison['split']} photos ({comparison['photos']}): the new model "
                     f"**{comparison['new_accuracy']:.2%}**, the model serving now "
                     f"(`{escape_markdown(comparison['served_model'])}`) **{comparison['served_accuracy']:.2%}**.")
    dataset = result.metadata.get("dataset", {})
    if dataset.get("validation_split"):
        lines.append(f"\nValidation data: {dataset['validation_split']}.")
    skipped = dataset.get("skipped_unreadable") or []
    if skipped:
        lines.append(f"\nSkipped {len(skipped)} unreadable file(s), listed in the run's model.json:")
        lines.extend(f"- {escape_markdown(problem)}" for problem in skipped[:10])
    return "\n".join(lines)


def promotion_question(run_id: str, job) -> str:
    """The question asked before serving ``run_id`` to everyone, with what it would change
    (the job's comparison with the model serving now, when ``job`` is that run's)."""
    comparison = getattr(job, "comparison", None) if job and job.run_id == run_id else None
    change = ""
    if comparison:
        change = (f" On this run's {comparison['split']} photos it scores {comparison['new_accuracy']:.2%}; "
                  f"the model serving now scores {comparison['served_accuracy']:.2%}.")
    return (f"Serve run `{escape_markdown(run_id)}` to every visitor?{change} "
            "The Model tab can go back to the previous or the bundled model.")
