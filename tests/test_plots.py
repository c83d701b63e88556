"""rps.plots: the pictures a run writes."""

from __future__ import annotations

from rps.plots import history_figure


def test_a_short_run_has_whole_epochs_on_its_axis():
    figure = history_figure([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}, {"epoch": 2, "loss": 0.5, "accuracy": 0.8}])
    figure.canvas.draw()
    for axis in figure.axes:
        ticks = [tick for tick in axis.get_xticks() if axis.get_xlim()[0] <= tick <= axis.get_xlim()[1]]
        assert ticks and all(float(tick).is_integer() for tick in ticks)
