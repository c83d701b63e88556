"""rps.finetune and `python -m rps finetune`: a new head on the shipped model's frozen features."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import write_hand_dataset
from rps.callbacks import ProgressRecorder
from rps.cli import main
from rps.datasets import open_dataset
from rps.errors import ConfigError, DatasetError
from rps.finetune import MIN_PER_CLASS, build_finetuned, finetune
from rps.prediction import SHIPPED_MODEL, Predictor

# Integration tests (fine-tuning runs): CI runs them all; `-m "not slow"` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    return write_hand_dataset(tmp_path_factory.mktemp("hands") / "data", per_class=6)


def test_finetuning_trains_a_head_that_every_door_serves(hands, tmp_path):
    result = finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "run", epochs=8)
    assert result.held_out.count == 3  # one photo of each class held back (20% of 6, at least one)
    predictor = Predictor(result.folder)
    assert predictor.class_names == ["paper", "rock", "scissors"] and predictor.bundle.input_mode == "hand"
    assert result.metadata["architecture"] == "finetuned" and len(result.history) == 8
    assert result.metadata["config"]["base"] == "assets/model"  # not the server's absolute path
    prediction = predictor.predict(hands / "rock" / "rock01-000.png")
    assert prediction.label in predictor.class_names and prediction.crop is not None


def test_the_base_stays_frozen_and_only_the_head_learns():
    base = Predictor().bundle.model
    model = build_finetuned(base, 5)
    assert model.output_shape == (None, 5)
    assert [weight.path.split("/")[0] for weight in model.trainable_weights] == ["probabilities"] * 2
    before = [weight.numpy().copy() for weight in model.non_trainable_weights[:3]]
    keypoints = np.random.default_rng(0).normal(0, 0.2, (4, 21, 3)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(keypoints, np.array([0, 1, 2, 3]), epochs=1, verbose=0)
    for old, weight in zip(before, model.non_trainable_weights[:3]):
        np.testing.assert_array_equal(old, weight.numpy())


def test_too_few_photos_of_a_class_is_a_sentence(hands, tmp_path):
    few = tmp_path / "few"
    shutil.copytree(hands, few)
    for extra in sorted((few / "paper").iterdir())[MIN_PER_CLASS - 1:]:
        extra.unlink()
    with pytest.raises(DatasetError, match=f"at least {MIN_PER_CLASS} photos .* paper has fewer"):
        finetune(open_dataset(few), SHIPPED_MODEL, tmp_path / "run", epochs=1)
    assert not (tmp_path / "run").exists()


def test_a_base_that_does_not_read_keypoints_is_refused(hands, tmp_path, tiny_model):
    with pytest.raises(ConfigError, match="reads hand keypoints"):
        finetune(open_dataset(hands), tiny_model, tmp_path / "run", epochs=1)


def test_the_cli_finetunes(hands, tmp_path, capsys):
    code = main(["finetune", "--data", str(hands), "--epochs", "3", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and "held-out accuracy" in out
    assert "18 photos, of which the last 20% of each class in file-name order (at least one) is held back" in out
    metadata = json.loads((tmp_path / "run" / "model.json").read_text())
    assert metadata["class_names"] == ["paper", "rock", "scissors"]
    assert metadata["dataset"]["train"] + metadata["dataset"]["validation"] == 18
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755  # readable like any folder, not mkdtemp's 0700


def test_the_cli_skips_unreadable_photos_on_request(hands, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(hands, data)
    broken = sorted((data / "rock").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:100])
    code = main(["finetune", "--data", str(data), "--epochs", "2", "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    # The hint names an option this command has.
    assert code == 2 and broken.name in err and "rps finetune" in err and "--skip-unreadable" in err
    assert not (tmp_path / "refused").exists()
    code = main(["finetune", "--data", str(data), "--epochs", "2", "--skip-unreadable", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and "Skipped 1 unreadable file" in out
    assert len(json.loads((tmp_path / "run" / "model.json").read_text())["dataset"]["skipped_unreadable"]) == 1


def test_the_second_stage_trains_the_base_too(hands, tmp_path):
    base = Predictor().bundle.model
    first_kernel = next(weight for weight in base.weights if "kernel" in weight.path).numpy()
    result = finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "run", epochs=3, unfreeze_epochs=2)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5]
    assert result.metadata["config"]["unfreeze_epochs"] == 2
    tuned = Predictor(result.folder).bundle.model
    tuned_kernel = next(weight for weight in tuned.weights if "kernel" in weight.path).numpy()
    assert tuned_kernel.shape == first_kernel.shape and not np.allclose(tuned_kernel, first_kernel)
    with pytest.raises(ConfigError, match="Unfreeze epochs must be a whole number"):
        finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "bad", epochs=1, unfreeze_epochs=-1)


def test_the_head_can_read_the_pooled_convolution_features(hands, tmp_path):
    from rps.finetune import feature_extractor

    base = Predictor().bundle.model
    keypoints = np.random.default_rng(0).normal(0, 0.2, (2, 21, 3)).astype(np.float32)
    dense = feature_extractor(base, "dense")(keypoints).numpy()
    pooled = feature_extractor(base, "pooled")(keypoints).numpy()
    # Three members: 64 dense features each, 128 pooled convolution channels each (ReLU, so >= 0).
    assert dense.shape == (2, 3 * 64) and pooled.shape == (2, 3 * 128) and (pooled >= 0).all()
    result = finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "run", epochs=2, features="pooled")
    assert result.metadata["config"]["features"] == "pooled"
    with pytest.raises(ConfigError, match="features must be one of dense, pooled"):
        finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "bad", epochs=1, features="raw")


def test_the_saved_model_is_fit_again_on_every_sample_after_the_held_out_score(hands, tmp_path):
    dataset = open_dataset(hands)
    recorder = ProgressRecorder()
    refit = finetune(dataset, SHIPPED_MODEL, tmp_path / "refit", epochs=3, callbacks=[recorder])
    kept = finetune(dataset, SHIPPED_MODEL, tmp_path / "kept", epochs=3, refit=False)
    # The held-out figure scores the same fit on the first 80% either way (same seed) ...
    assert refit.held_out.accuracy == kept.held_out.accuracy and refit.history == kept.history
    assert refit.refitted and not kept.refitted
    found = refit.metadata["dataset"]["hands_found"]
    assert refit.metadata["dataset"]["served_model_fit_on"] == found["train"][0] + found["validation"][0]
    assert kept.metadata["dataset"]["served_model_fit_on"] == found["train"][0]
    # Teach's progress line is told of the second fit, and its curves stay the first fit's.
    snapshot = recorder.snapshot()
    assert snapshot.refitting == refit.metadata["dataset"]["served_model_fit_on"] and len(snapshot.history) == 3
    # ... but only the refit saved a model that saw the held-back photos: its weights differ.
    head = [Predictor(run.folder).bundle.model.get_layer("probabilities").get_weights()[0] for run in (refit, kept)]
    assert not np.allclose(head[0], head[1])


def test_a_stop_during_the_second_fit_saves_nothing(hands, tmp_path):
    import threading

    from rps.errors import TrainingStopped

    stop = threading.Event()

    class StopWhenRefitting(ProgressRecorder):
        def on_refit(self, samples):
            stop.set()

    with pytest.raises(TrainingStopped):
        finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "run", epochs=2, callbacks=[StopWhenRefitting()],
                 stop_event=stop)
    assert not (tmp_path / "run").exists()


def test_no_second_fit_when_no_held_back_sample_shows_a_hand(hands, tmp_path):
    blanks = tmp_path / "blanks"
    shutil.copytree(hands, blanks)
    for folder in blanks.iterdir():  # the latest sample of each class, the one held back, is a blank wall
        Image.new("RGB", (96, 96), (200, 200, 200)).save(folder / "zzz-wall.png")
    result = finetune(open_dataset(blanks), SHIPPED_MODEL, tmp_path / "run", epochs=2)
    assert not result.refitted and result.held_out.count == 3 and result.held_out.accuracy == 0.0
    found = result.metadata["dataset"]["hands_found"]
    assert found["validation"][0] == 0 and result.metadata["dataset"]["served_model_fit_on"] == found["train"][0]
    assert result.metadata["config"]["refit"] is False and "note" not in result.metadata["metrics"]


def test_the_second_fit_starts_from_the_base_as_loaded_after_an_unfrozen_stage(hands, tmp_path, monkeypatch):
    import rps.finetune

    seen = []
    original = rps.finetune._fit_head

    def recording(base, *args, **kwargs):
        seen.append([weight.copy() for weight in base.get_weights()])
        return original(base, *args, **kwargs)

    monkeypatch.setattr(rps.finetune, "_fit_head", recording)
    result = finetune(open_dataset(hands), SHIPPED_MODEL, tmp_path / "run", epochs=1, unfreeze_epochs=1)
    assert result.refitted and len(seen) == 2
    for first, second in zip(*seen):  # the first fit's unfrozen stage tuned the base in place
        np.testing.assert_array_equal(first, second)
