"""The Play tab's handlers: a round reads the move around "Shoot!" and keeps visitors apart."""

from __future__ import annotations

import time

import numpy as np

from rps.prediction import Prediction
from ui import play


class Seeing:
    """A classifier that sees ``label`` in every frame (or no hand for None)."""

    def __init__(self, label: str | None):
        self.label = label

    def classify(self, frame):
        if self.label is None:
            return Prediction({}, "no hand")
        return Prediction({name: (0.9 if name == self.label else 0.05) for name in ("rock", "paper", "scissors")})


def play_with(player: play.Player, classifier) -> list[play.RoundView]:
    """A round in which each beat of the countdown lets the camera send a frame."""
    def beat(seconds):
        play.see_frame(classifier, player, np.zeros((4, 4, 3), np.uint8))
    return list(play.play_round(player, sleep=beat))


def test_a_round_counts_down_reads_the_move_and_scores():
    player = play.Player(rounds=3)
    views = play_with(player, Seeing("rock"))
    assert [view.countdown for view in views[:4]] == [f"# {word}" for word in play.COUNTDOWN]
    assert "You played **rock**" in views[-1].result and "random" in views[-1].result
    assert sum(player.game.score.values()) == 1 and len(views[-1].history) == 1


def test_the_history_names_each_rule_in_words_not_by_its_code_name():
    game = play.Game(5)
    for move in ("rock", "rock", "paper", "rock"):  # random, then frequency, then the Markov rules
        game.play(move)
    rules = [played.rule for played in game.history]
    assert {"frequency", "markov-1"} <= set(rules)
    shown = [row[-1] for row in play.history_rows(game)][::-1]  # the table lists the newest first
    assert shown == [play.RULE_SHORT[rule] for rule in rules]
    assert not any("markov" in words for words in shown) and "your most frequent move" in shown


def test_no_hand_around_shoot_asks_again_and_keeps_the_apps_move():
    player = play.Player()
    views = play_with(player, Seeing(None))
    assert "Couldn't see your hand" in views[-1].result and player.game.history == []
    committed = player.game.pending
    play_with(player, Seeing("paper"))
    assert (player.game.history[0].app, player.game.history[0].rule) == committed


def test_old_readings_do_not_count_as_the_move():
    player = play.Player()
    player.readings.append((time.monotonic() - 30, {"rock": 0.99}))
    views = list(play.play_round(player, sleep=lambda seconds: None))
    assert "Couldn't see your hand" in views[-1].result


def test_a_finished_game_says_so_and_visitors_have_their_own_games():
    players = play.Players(limit=2)
    ann = players.get("ann")
    for _ in range(10):
        if ann.game.over:
            break
        play_with(ann, Seeing("rock"))
    assert ann.game.over and "game" in play.score_text(ann.game)
    assert "over" in list(play.play_round(ann, sleep=lambda seconds: None))[-1].result
    assert players.get("bob").game.history == []
    players.get("cy")
    assert players.get("ann").game.history == []  # the least recently seen was forgotten


def test_a_personal_model_without_the_three_moves_says_how_to_play():
    class Letters:
        def classify(self, frame):
            return Prediction({"A": 0.9, "B": 0.1})

    player = play.Player()
    views = play_with(player, Letters())
    assert "knows no rock, paper or scissors" in views[-1].result and player.game.history == []
