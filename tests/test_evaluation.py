"""rps.evaluation: metrics match hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from rps.evaluation import summarise


def test_metrics_match_hand_counts():
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    report = summarise(true, predicted, ["a", "b", "c"])
    assert report.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.accuracy == pytest.approx(4 / 6, abs=1e-4)
    assert report.per_class["a"] == {"precision": 1.0, "recall": pytest.approx(0.6667, abs=1e-4),
                                     "f1": 0.8, "support": 3}
    assert report.per_class["b"]["precision"] == 0.5
    assert report.per_class["c"]["recall"] == 1.0


def test_a_class_never_predicted_has_zero_precision():
    report = summarise(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert report.per_class["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
