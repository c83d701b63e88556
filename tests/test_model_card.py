"""bench/model_card.py: the card quotes seed and backdrop figures only when they were measured on the shipped model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import model_card  # noqa: E402

CONFIG = {"architecture": "compact", "augmentation": "robust", "seed": 42}


def write_seeds(folder: Path, shas: list[str]) -> None:
    rows = [{"seed": seed, "model_sha256": sha} for seed, sha in zip((42, 7), shas)]
    summary = {name: {"mean": 0.9, "min": 0.8, "max": 1.0} for name in ("test", "real_dev", "real_dev_mirrored")}
    (folder / "seeds.json").write_text(json.dumps({"config": {**CONFIG, "seed": 42}, "rows": rows,
                                                   "summary": summary}))


@pytest.mark.parametrize("shas, quoted", [(["shipped", "other"], True), (["older", "other"], False)])
def test_seed_spread_needs_the_shipped_model_among_the_runs(tmp_path, monkeypatch, shas, quoted):
    # Same config, older code: the recipe name matches but the runs are not the shipped recipe's.
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    write_seeds(tmp_path, shas)
    line = " ".join(model_card.seed_spread(CONFIG, "shipped"))
    assert ("2 seeds of this config (42, 7)" in line) == quoted
    assert ("not measured" in line) == (not quoted)


def test_seed_spread_without_results(tmp_path, monkeypatch):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    assert "not measured" in " ".join(model_card.seed_spread(CONFIG, "shipped"))


def write_results(folder: Path, benchmark: str, sha: str, **figures) -> None:
    """A bench/results/<benchmark>.json holding one model's figures."""
    entry = {"model_sha256": sha, **figures}
    (folder / f"{benchmark}.json").write_text(json.dumps({"models": {"assets/model": entry}}))


@pytest.mark.parametrize("measured_sha, quoted", [("shipped", True), ("older", False)])
def test_plain_backdrops_needs_figures_of_the_shipped_model(tmp_path, monkeypatch, measured_sha, quoted):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    scores = {"as rendered": 1.0, "grey": 0.874, "black": 0.914, "plain mean": 0.894}
    write_results(tmp_path, "backdrops", measured_sha, test=scores)
    line = " ".join(model_card.plain_backdrops("shipped"))
    assert ("score 89.4% on average" in line and "worst: grey, 87.4%" in line) == quoted
    assert ("not measured" in line) == (not quoted)


def test_plain_backdrops_without_results(tmp_path, monkeypatch):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    assert "not measured" in " ".join(model_card.plain_backdrops("shipped"))


@pytest.mark.parametrize("measured_sha, quoted", [("shipped", True), ("older", False)])
def test_small_hands_quotes_the_weakest_class_at_the_smallest_size(tmp_path, monkeypatch, measured_sha, quoted):
    monkeypatch.setattr(model_card, "RESULTS", tmp_path)
    rows = {"100% on white": {"paper": 1.0, "rock": 1.0, "scissors": 1.0, "all": 1.0},
            "65% on plain (mean)": {"paper": 0.512, "rock": 0.995, "scissors": 0.995, "all": 0.834}}
    write_results(tmp_path, "hand_size", measured_sha, rows=rows)
    line = " ".join(model_card.small_hands("shipped"))
    assert ("shrunk to 65% of the frame" in line and "paper is right 51.2%" in line
            and "all classes: 83.4%" in line) == quoted
    assert ("not measured" in line) == (not quoted)


def test_retrain_command_names_every_setting_that_differs_from_the_defaults():
    from rps.config import TrainConfig

    defaults = TrainConfig().to_dict()
    bare = ("python -m rps train --data ../shared/datasets/rock-paper-scissors/Rock-Paper-Scissors "
            "--out assets/model")
    assert model_card.retrain_command(defaults) == bare
    older = {**defaults, "epochs": defaults["epochs"] - 8, "seed": 7}
    assert model_card.retrain_command(older) == f"{bare} --epochs {defaults['epochs'] - 8} --seed 7"


def test_retrain_command_parses_back_to_the_config():
    """Every option the card writes is one ``python -m rps train`` accepts, carrying its value."""
    from rps.cli import build_parser
    from rps.config import TrainConfig

    changed = TrainConfig(architecture="baseline", epochs=3, image_size=48, batch_size=8, learning_rate=0.01,
                          augmentation="study", patience=2, schedule="constant", seed=7).to_dict()
    words = model_card.retrain_command(changed).split()
    assert words[:3] == ["python", "-m", "rps"]
    args = build_parser().parse_args(words[3:])
    assert set(model_card.CLI_OPTIONS) <= set(changed)
    for field, flag in model_card.CLI_OPTIONS.items():
        assert getattr(args, flag.lstrip("-").replace("-", "_")) == changed[field], field
