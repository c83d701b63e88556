"""python -m rps: each command works; bad input exits 2 with one line and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import draw_gesture
from rps.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_evaluate_predict_show(tmp_path, capsys, kaggle_dataset):
    code, out, err = run(capsys, "train", "--data", kaggle_dataset, "--arch", "baseline", "--input", "image", "--epochs", 1,
                         "--image-size", 32, "--batch-size", 8, "--augmentation", "none", "--out", tmp_path / "run")
    assert code == 0, err
    assert "Test accuracy" in out and (tmp_path / "run" / "model.keras").is_file()

    code, out, _ = run(capsys, "evaluate", "--data", kaggle_dataset, "--model", tmp_path / "run", "--json")
    report = json.loads(out)
    assert code == 0 and {"accuracy", "classes", "per_class", "confusion"} <= set(report)
    assert sum(map(sum, report["confusion"])) == 9  # the test/ split

    image = kaggle_dataset / "test" / "rock" / sorted(p.name for p in (kaggle_dataset / "test" / "rock").iterdir())[0]
    code, out, _ = run(capsys, "predict", "--model", tmp_path / "run", "--json", image, image)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 2
    assert lines[0]["image"] == str(image) and lines[0]["label"] in lines[0]["probabilities"]

    code, out, _ = run(capsys, "show", "--data", kaggle_dataset, "--out", tmp_path / "grid.png")
    assert code == 0 and (tmp_path / "grid.png").stat().st_size > 1000


def test_predict_goes_on_past_an_unreadable_file(tmp_path, capsys, tiny_model):
    good = tmp_path / "rock.png"
    draw_gesture("rock").save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    code, out, err = run(capsys, "predict", "--model", tiny_model, "--json", good, bad, good)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and len(lines) == 3 and err.count("error:") == 1
    assert lines[1]["label"] is None and lines[1]["reason"] == "unreadable" and "not a readable image" in lines[1]["error"]
    assert lines[0]["label"] == lines[2]["label"] is not None


def test_training_on_photos_without_hands_says_so(tmp_path, capsys, kaggle_dataset):
    code, _, err = run(capsys, "train", "--data", kaggle_dataset, "--epochs", 1, "--out", tmp_path / "run")
    assert code == 2 and "No hand was found in any training photo of class" in err
    assert "--input image" in err or "input 'image'" in err
    assert not (tmp_path / "run").exists()


def test_train_on_two_datasets_with_the_same_classes(tmp_path, capsys):
    from conftest import write_class_folders

    first, second = write_class_folders(tmp_path / "a", per_class=3), write_class_folders(tmp_path / "b", per_class=3)
    code, out, err = run(capsys, "train", "--data", first, "--data", second, "--arch", "baseline", "--input", "image",
                         "--epochs", 1, "--image-size", 32, "--batch-size", 4, "--augmentation", "none",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "model.json").read_text())["dataset"]["train"] + \
        json.loads((tmp_path / "run" / "model.json").read_text())["dataset"]["validation"] == 18


def bad_cases(tmp_path, tiny_model):
    one_class = tmp_path / "one"
    (one_class / "rock").mkdir(parents=True)
    draw_gesture("rock").save(one_class / "rock" / "a.png")
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    empty_class = tmp_path / "empty"
    for name in ("rock", "paper"):
        (empty_class / name).mkdir(parents=True)
    draw_gesture("rock").save(empty_class / "rock" / "a.png")
    return {
        "missing-folder": ["train", "--data", tmp_path / "nope", "--epochs", 1],
        "one-class": ["train", "--data", one_class],
        "empty-class": ["train", "--data", empty_class],
        "zero-epochs": ["train", "--data", empty_class, "--epochs", 0],
        "not-an-image": ["predict", "--model", tiny_model, not_image],
        "missing-image": ["predict", "--model", tiny_model, tmp_path / "nope.png"],
        "missing-model": ["predict", "--model", tmp_path / "nomodel", not_image],
        "evaluate-wrong-layout": ["evaluate", "--model", tiny_model, "--data", tmp_path / "nope"],
    }


@pytest.mark.parametrize("case", ["missing-folder", "one-class", "empty-class", "zero-epochs",
                                  "not-an-image", "missing-image", "missing-model", "evaluate-wrong-layout"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, tiny_model, case):
    code, _, err = run(capsys, *bad_cases(tmp_path, tiny_model)[case])
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_file_as_the_model_or_a_folder_as_a_photo_is_named_as_such(tmp_path, capsys, tiny_model):
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"not for this runtime")
    code, _, err = run(capsys, "predict", "--model", exported, tmp_path)
    assert code == 2 and "model.onnx is a file; give a model folder" in err
    code, out, err = run(capsys, "predict", "--model", tiny_model, tmp_path)
    assert f"{tmp_path} is a folder; give image files" in out + err


def test_evaluate_reads_a_zip_as_train_and_finetune_do(tmp_path, capsys, tiny_model):
    from conftest import write_class_folders, zip_folder

    folder = write_class_folders(tmp_path / "data", per_class=3)
    archive = zip_folder(folder, tmp_path / "data.zip")
    code, from_folder, err = run(capsys, "evaluate", "--model", tiny_model, "--data", folder, "--json")
    assert code == 0, err
    code, from_zip, err = run(capsys, "evaluate", "--model", tiny_model, "--data", archive, "--json")
    assert code == 0, err
    assert json.loads(from_zip) == json.loads(from_folder) and json.loads(from_zip)["count"] == 9
    code, _, err = run(capsys, "evaluate", "--model", tiny_model, "--data", tmp_path / "data" / "rock" / "rock01-000.png")
    assert code == 2 and "not a folder of labelled images or a .zip of one" in err


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.keras").write_text("an earlier run")
    for command in ("train", "finetune"):
        for out, expected in ((a_file / "run", "cannot be created"), (taken, "already exists and is not empty")):
            code, out_text, err = run(capsys, command, "--data", tmp_path / "no-such-data", "--out", out)
            # Refused on the folder, before the data is even looked at (it does not exist).
            assert code == 2 and expected in err and "Data:" not in out_text and len(err.strip().splitlines()) == 1
    assert (taken / "model.keras").read_text() == "an earlier run"


@pytest.mark.slow  # a subprocess starts Python and TensorFlow
def test_module_entry_point_prints_one_line_on_error(tmp_path):
    # As a user runs it: without the test session's TF_CPP_MIN_LOG_LEVEL.
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "rps", "predict", "--model", str(tmp_path), "x.png"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env=environment)
    assert done.returncode == 2
    # One line: TensorFlow's native start-up logs are silenced too.
    assert done.stderr.strip().splitlines() == [f"error: No model at {tmp_path / 'model.keras'}."]
    assert "Traceback" not in done.stderr


def test_train_accepts_the_ablation_recipes():
    from rps.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "d", "--augmentation", "robust-no-blur"])
    assert args.augmentation == "robust-no-blur"


def test_a_flags_help_gives_no_default_that_reads_backwards(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    refit = text[text.index("--no-refit"):]
    assert "fit again on all photos" in refit and "(default: True)" not in refit[:300]
