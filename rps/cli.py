"""``python -m rps``: download, train, finetune, evaluate, predict, show, export, live.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

# TensorFlow's C++ start-up chatter ("could not find cuda drivers" on every CPU machine) buries
# the one line a user needs to read.  Set TF_CPP_MIN_LOG_LEVEL=0 to see it again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# OpenCV's warnings (no camera at an index, a codec it cannot find) would precede the one line
# the CLI prints; OPENCV_LOG_LEVEL=INFO brings them back.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _DefaultsShown(argparse.HelpFormatter):
    """Each option's default after its help, unless the help names it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or action.nargs == 0 or action.default in (None, False, argparse.SUPPRESS)
                or "default" in text):  # a flag's default is its absence
            return text
        return f"{text} (default: {action.default})"


def build_parser() -> argparse.ArgumentParser:
    from rps.config import TrainConfig
    from rps.names import ARCHITECTURE_NAMES, AUGMENTATIONS, SCHEDULES

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m rps", description=__doc__.splitlines()[0].replace("``", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser

    def command(name: str, **options) -> argparse.ArgumentParser:
        # Every option's default is shown in its help.
        return add(name, formatter_class=_DefaultsShown, **options)

    download = command("download", help="download the study's dataset from Kaggle")
    download.add_argument("--dest", type=Path, default=Path("data/rock-paper-scissors"),
                          help="folder to unpack the dataset into")

    train = command("train", help="train a model and write a run folder")
    train.add_argument("--data", type=Path, required=True, action="append",
                       help="dataset folder or .zip; repeat to train on several with the same classes")
    train.add_argument("--input", choices=("hand", "image"), default=defaults.input,
                       help="hand: find the hand first (its keypoints, and its aligned crop for architectures "
                            "that read pixels); image: the whole photo")
    train.add_argument("--arch", choices=sorted(ARCHITECTURE_NAMES), default=defaults.architecture,
                       help="hand: the shipped skeleton CNN; baseline, improved, regularised: the study's; "
                            "compact: a small whole-photo CNN")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs per model")
    train.add_argument("--image-size", type=int, default=defaults.image_size)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--augmentation", choices=AUGMENTATIONS, default=defaults.augmentation)
    train.add_argument("--patience", type=int, default=defaults.patience,
                       help="early-stopping patience on val_loss (0: off)")
    train.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule,
                       help="learning rate: constant, or cosine decay to zero over the run")
    train.add_argument("--seed", type=int, default=defaults.seed, help="initial weights, shuffling, augmentation")
    train.add_argument("--members", type=int, default=defaults.members,
                       help="train this many models (seeds seed, seed+1, ...) and serve their average")
    train.add_argument("--skip-unreadable", action="store_true",
                       help="leave out files that cannot be decoded (listed in model.json) "
                            "instead of stopping")
    train.add_argument("--out", type=Path, help="run folder (default runs/<time>-<arch>)")

    finetune = command("finetune", help="teach new gestures: a new head on a model's features")
    finetune.add_argument("--data", type=Path, required=True, help="class folders (or a .zip) of your photos")
    finetune.add_argument("--base", type=Path, default=None, help="model folder (default: the shipped model)")
    finetune.add_argument("--epochs", type=_positive, default=60, help="epochs of the new head")
    finetune.add_argument("--unfreeze-epochs", type=int, default=0,
                          help="then train every layer at a low learning rate for this many epochs (default 0, "
                               "as the app's Teach tab)")
    finetune.add_argument("--features", choices=("dense", "pooled"), default="pooled",
                          help="which base features the new head reads: the dense layer before the base's "
                               "classifier, or the last convolution block's pooled maps")
    finetune.add_argument("--seed", type=int, default=42, help="initial weights and shuffling")
    finetune.add_argument("--no-refit", dest="refit", action="store_false",
                          help="save the model fit without the held-back photos (about half the fitting time); "
                               "by default it is fit again on all photos once those are scored")
    finetune.add_argument("--skip-unreadable", action="store_true",
                          help="leave out files that cannot be decoded (listed in model.json) instead of stopping")
    finetune.add_argument("--out", type=Path, required=True, help="run folder to write")

    export = command("export", help="write a model as TensorFlow Lite, ONNX or a SavedModel")
    export.add_argument("--format", choices=("tflite", "onnx", "saved_model"), required=True)
    export.add_argument("--int8", action="store_true", help="tflite: quantize to int8 (the example images calibrate)")
    export.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    export.add_argument("--out", type=Path, required=True, help="file to write (a folder for saved_model)")
    export.add_argument("--overwrite", action="store_true", help="replace --out if it exists (a folder only if it "
                                                                 "holds a SavedModel)")

    live = command("live", help="label a webcam or a video live, in a window or a written video")
    source = live.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=None, help="camera index (default 0)")
    source.add_argument("--video", type=Path, default=None, help="a video file instead of a camera")
    live.add_argument("--out", type=Path, default=None, help="write the annotated video here (.mp4 or .avi)")
    live.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    live.add_argument("--no-window", action="store_true", help="no window even where a display is")
    live.add_argument("--max-frames", type=_positive, default=None, help="stop after this many frames")

    evaluate = command("evaluate", help="accuracy and confusion on a labelled folder")
    evaluate.add_argument("--data", type=Path, required=True,
                          help="class-folder folder, a Kaggle root (its test/ is used), or a .zip of either")
    evaluate.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    evaluate.add_argument("--batch-size", type=_positive, default=64, help="photos per model call")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    predict = command("predict", help="classify images")
    predict.add_argument("images", nargs="+", type=Path, help="photos to label (any common format)")
    predict.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")

    show = command("show", help="save a grid of sample images per class")
    show.add_argument("--data", type=Path, required=True, help="dataset folder or .zip")
    show.add_argument("--out", type=Path, required=True, help="picture to write (.png, or .jpg)")
    show.add_argument("--per-class", type=_positive, default=4, help="images per class")
    return parser


def run_download(args) -> None:
    from rps.kaggle_download import download_dataset

    root = download_dataset(args.dest)
    print(f"Dataset ready at {root}")


def run_train(args) -> None:
    from rps.config import TrainConfig
    from rps.artifacts import check_output_folder
    from rps.datasets import merge_datasets, open_dataset
    from rps.training import train

    config = TrainConfig(
        architecture=args.arch, input=args.input, image_size=args.image_size, batch_size=args.batch_size,
        epochs=args.epochs, learning_rate=args.learning_rate, augmentation=args.augmentation,
        patience=args.patience, seed=args.seed, schedule=args.schedule,
        skip_unreadable=args.skip_unreadable, members=args.members,
    )
    out = args.out or Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{args.arch}"
    check_output_folder(out)  # before the photos are read, not after the fit
    # Zips are unpacked into a folder that is removed when the run ends, however it ends.
    with tempfile.TemporaryDirectory(prefix="rps-data-") as unpacked:
        # Skipping unreadable files skips the header check too; training names what it skips.
        datasets = [open_dataset(source, unpack_to=Path(unpacked) / str(index),
                                 verify=not args.skip_unreadable)
                    for index, source in enumerate(args.data)]
        dataset = merge_datasets(datasets)
        print(f"Data: {dataset.describe()}" + ("" if dataset.validation else " (model.json says which)"))
        result = train(dataset, config, out, verbose=1)
    skipped = result.metadata["dataset"]["skipped_unreadable"]
    if skipped:
        print(f"Skipped {len(skipped)} unreadable file(s), listed in {result.folder / 'model.json'}:")
        for problem in skipped[:10]:
            print(f"  {problem}")
    print(f"Saved {result.folder} ({result.device}, {result.seconds_per_epoch:.1f} s/epoch)")
    print(f"Validation accuracy {result.validation.accuracy:.4f}")
    if result.evaluation:
        print(f"Test accuracy {result.evaluation.accuracy:.4f}")


def run_finetune(args) -> None:
    from rps.datasets import open_dataset
    from rps.artifacts import check_output_folder
    from rps.finetune import HELD_OUT_FRACTION, finetune
    from rps.prediction import SHIPPED_MODEL

    check_output_folder(args.out)
    with tempfile.TemporaryDirectory(prefix="rps-data-") as unpacked:
        dataset = open_dataset(args.data, unpack_to=Path(unpacked), verify=not args.skip_unreadable)
        print(f"Data: classes {', '.join(dataset.class_names)}; {len(dataset.train)} photos, of which "
              f"the last {HELD_OUT_FRACTION:.0%} of each class in file-name order (at least one) is held back "
              "to check the model")
        result = finetune(dataset, args.base or SHIPPED_MODEL, args.out, epochs=args.epochs, seed=args.seed,
                          verbose=0, unfreeze_epochs=args.unfreeze_epochs, features=args.features,
                          skip_unreadable=args.skip_unreadable, refit=args.refit)
    skipped = result.metadata["dataset"]["skipped_unreadable"]
    if skipped:
        print(f"Skipped {len(skipped)} unreadable file(s), listed in {result.folder / 'model.json'}")
    fit_on = result.metadata["dataset"]["served_model_fit_on"]
    print(f"Saved {result.folder} in {result.seconds:.1f} s; held-out accuracy {result.held_out.accuracy:.4f} "
          f"on {result.held_out.count} photos" + (f"; the saved model was then fit on all {fit_on} photos with a hand"
                                                  if result.refitted else ""))


def run_evaluate(args) -> None:
    from rps.datasets import evaluation_split
    from rps.evaluation import evaluate_prepared, prepare_split

    predictor = _predictor(args.model)
    predictor.check_ready()
    with tempfile.TemporaryDirectory(prefix="rps-data-") as unpacked:
        _, images = evaluation_split(args.data, tuple(predictor.class_names), unpack_to=Path(unpacked))
        # An unreadable photo is named inside the dataset, not by the temporary folder of a zip.
        root = Path(unpacked) / "unpacked" if args.data.is_file() else args.data
        prepared = prepare_split(images.paths, predictor.preprocessor, root=root)
    report = evaluate_prepared(predictor.runner, prepared, images.labels, predictor.class_names,
                               args.batch_size)
    if args.json:
        print(json.dumps(report.to_dict()))
        return
    print(f"accuracy {report.accuracy:.4f} on {report.count} images "
          f"(declined, counted as wrong: {report.no_hand} no hand, {report.too_dark} too dark)")
    for name, scores in report.per_class.items():
        print(f"  {name:>12}: precision {scores['precision']:.3f}  recall {scores['recall']:.3f}"
              f"  f1 {scores['f1']:.3f}  n={scores['support']}")
    print("confusion (rows true, columns predicted):")
    for name, row in zip(report.classes, report.confusion):
        print(f"  {name:>12}: {row}")


def run_predict(args) -> int:
    """Every image gets its line; an unreadable one gets an error line and the exit status 2."""
    from rps.errors import ImageError

    predictor = _predictor(args.model)
    status = 0
    for image in args.images:
        try:
            prediction = predictor.predict(image)
        except ImageError as error:
            status = 2
            # Name the file once: most messages already start with it.
            print(f"error: {error}" if image.name in str(error) else f"error: {image}: {error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"image": str(image), "label": None, "reason": "unreadable",
                                  "error": str(error), "probabilities": {}}))
            continue
        label = prediction.label
        if args.json:
            print(json.dumps({"image": str(image), "label": label, "reason": prediction.reason,
                              "probabilities": dict(prediction)}))
        elif label is None:
            print(f"{image}: {prediction.reason}")
        else:
            print(f"{image}: {label} ({prediction[label]:.1%})")
    return status


def _predictor(model: Path | None):
    from rps.prediction import Predictor

    predictor = Predictor(model)
    if predictor.warning:
        print(f"warning: {predictor.warning}", file=sys.stderr)
    return predictor


def run_show(args) -> None:
    from rps.datasets import open_dataset
    from rps.plots import sample_grid

    dataset = open_dataset(args.data)
    print(f"Saved {sample_grid(dataset.train, dataset.class_names, args.out, args.per_class)}")


def run_export(args) -> None:
    from rps.export import export_model

    if args.int8 and args.format != "tflite":
        from rps.export import ExportError

        raise ExportError("--int8 applies to --format tflite only.")
    exported = export_model(args.model, args.out, "tflite-int8" if args.int8 else args.format,
                            overwrite=args.overwrite)
    print(f"Saved {exported.path} ({exported.format}, {exported.bytes / 2**20:.2f} MiB)")


def run_live(args) -> None:
    from rps.live import check_source, has_display, run_live

    if args.video is not None:
        check_source(args.video)
    window = not args.no_window and has_display()
    if not window and args.out is None:
        from rps.live import VideoSourceError

        why = "--no-window was given" if args.no_window else "there is no display to show a window on"
        raise VideoSourceError(f"Nothing to show or write ({why}): give --out FILE.mp4 to write the video.")
    source = args.video if args.video is not None else (args.camera or 0)
    report = run_live(source, _predictor(args.model), out=args.out, window=window, max_frames=args.max_frames)
    print(f"{report.frames} frames, {report.p50_ms:.1f} ms per frame (p50)"
          + (f"; saved {args.out}" if args.out and report.frames else ""))


COMMANDS = {
    "download": run_download, "train": run_train, "finetune": run_finetune, "evaluate": run_evaluate,
    "predict": run_predict, "show": run_show, "export": run_export, "live": run_live,
}


def main(argv: list[str] | None = None) -> int:
    # Arguments first: --help and a mistyped option answer before TensorFlow loads (seconds).
    args = build_parser().parse_args(argv)
    from rps.errors import RpsError
    from rps.native_logs import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow  # noqa: F401  (imported here, once, with its start-up logs silenced)

    try:
        status = COMMANDS[args.command](args)
    except RpsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file system refusing a path: as plain a sentence as any other
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return status or 0


def entry_point() -> None:
    """The ``rps`` console script that ``pip install .`` adds: ``python -m rps`` by another name."""
    sys.exit(main())
