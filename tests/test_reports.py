"""rps.reports: the Markdown the app shows for a served model."""

from __future__ import annotations

from rps.reports import model_summary

METADATA = {"class_names": ["paper", "rock", "scissors"], "image_size": 64, "architecture": "hand",
            "input": "hand", "parameters": 1000}


def test_an_ensembles_epochs_are_counted_per_member():
    summary = model_summary({**METADATA, "config": {"epochs": 40, "members": 3},
                             "training": {"epochs_run": 120, "device": "CPU", "seconds": 438.0}})
    assert "Trained 120 epochs (3 members x 40) on CPU" in summary


def test_an_ensemble_stopped_early_is_not_given_a_per_member_count():
    summary = model_summary({**METADATA, "config": {"epochs": 40, "members": 3},
                             "training": {"epochs_run": 97, "device": "CPU", "seconds": 300.0}})
    assert "Trained 97 epochs (over 3 members) on CPU" in summary


def test_a_refit_models_time_includes_its_second_fit():
    summary = model_summary({**METADATA, "config": {"epochs": 5, "refit": True},
                             "training": {"epochs_run": 5, "device": "CPU", "seconds": 3.7, "seconds_with_refit": 6.7}})
    assert "Trained 5 epochs on CPU in 3.7 s, then fit again on all its photos: 6.7 s in all" in summary


def test_a_single_model_says_its_epochs_alone():
    summary = model_summary({**METADATA, "config": {"epochs": 40, "members": 1},
                             "training": {"epochs_run": 40, "device": "CPU", "seconds": 100.0}})
    assert "Trained 40 epochs on CPU" in summary


def test_a_note_on_what_the_validation_figure_scores_is_shown_beside_it():
    note = "validation accuracy: the same recipe fit on the first 80% of each class"
    summary = model_summary({**METADATA, "metrics": {"validation_accuracy": 0.9, "test_accuracy": None,
                                                     "note": note}})
    lines = summary.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("- validation accuracy: **90.00%**"))
    assert lines[index + 1] == f"- ({note})"
