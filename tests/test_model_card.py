"""bench/model_card.py: figures only for the shipped file, intervals, a retrain command that parses."""

from __future__ import annotations

import json

import pytest

from bench import model_card


@pytest.mark.parametrize("correct, total, low, high", [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3
    (15, 148, 0.0624, 0.1605),  # the same table
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_interval(correct, total, low, high):
    assert model_card.wilson_interval(correct, total) == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("measured_sha, quoted", [("shipped", True), ("older", False)])
def test_figures_are_quoted_only_for_the_model_they_were_measured_on(tmp_path, monkeypatch, measured_sha, quoted):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    (tmp_path / "real_rooms.json").write_text(json.dumps({"model_sha256": measured_sha, "rows": {}}))
    results, missing = model_card.measured_rows("shipped")
    assert (results is not None) == quoted
    assert ("not measured" in missing) == (not quoted)


def test_figures_without_results(tmp_path, monkeypatch):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    assert model_card.measured_rows("shipped") == (None, "not measured: run `python -m bench.real_rooms`")


def test_retrain_command_names_both_datasets_and_only_settings_off_the_defaults():
    from rps.config import TrainConfig

    defaults = TrainConfig().to_dict()
    bare = ("python -m rps train --data ../shared/datasets/rock-paper-scissors/Rock-Paper-Scissors "
            "--data ../shared/datasets/rps-real-train --out runs/shipped")
    assert model_card.retrain_command(defaults) == bare
    older = {**defaults, "epochs": defaults["epochs"] - 8, "seed": 7}
    assert model_card.retrain_command(older) == f"{bare} --epochs {defaults['epochs'] - 8} --seed 7"


def test_retrain_command_parses_back_to_the_config():
    """Every option the card writes is one ``python -m rps train`` accepts, carrying its value."""
    from rps.cli import build_parser
    from rps.config import TrainConfig

    changed = TrainConfig(architecture="baseline", input="image", epochs=3, image_size=48, batch_size=8,
                          learning_rate=0.01, augmentation="study", patience=2, schedule="constant",
                          seed=7).to_dict()
    words = model_card.retrain_command(changed).split()
    assert words[:3] == ["python", "-m", "rps"]
    args = build_parser().parse_args(words[3:])
    assert [str(path) for path in args.data] == list(model_card.TRAINING_DATA)
    assert set(model_card.CLI_OPTIONS) <= set(changed)
    for field, flag in model_card.CLI_OPTIONS.items():
        assert getattr(args, flag.lstrip("-").replace("-", "_")) == changed[field], field


def test_the_shipped_card_quotes_the_shipped_model():
    card = (model_card.MODEL.parent / "MODEL_CARD.md").read_text()
    metadata = json.loads((model_card.MODEL / "model.json").read_text())
    assert model_card.retrain_command(metadata["config"]) in card
    assert "rps-real-train" in card and "CC BY-SA 4.0" in card and "Apache 2.0" in card
