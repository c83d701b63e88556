"""rps.game: the rules, the app's strategy against scripted and random players, reading a move."""

from __future__ import annotations

import itertools
import random

import pytest

from rps.game import MOVES, Game, Strategy, read_move, winner


def test_the_rules():
    assert winner("rock", "scissors") == "player" and winner("rock", "paper") == "app"
    assert winner("paper", "paper") == "draw"


def app_wins_after(player_moves, rounds: int = 40, warm_up: int = 10, seed: int = 0) -> float:
    """The app's share of wins over the rounds after ``warm_up``, against a scripted player."""
    strategy, history, wins = Strategy(seed), [], 0
    for index, move in zip(range(rounds), player_moves):
        app, _ = strategy.choose(history)  # chosen before the player's move is known
        if index >= warm_up:
            wins += winner(move, app) == "app"
        history.append(move)
    return wins / (rounds - warm_up)


@pytest.mark.parametrize("pattern", [["rock"], ["paper"], ["rock", "paper", "scissors"],
                                     ["scissors", "paper", "rock"], ["rock", "rock", "paper"]])
def test_the_app_reads_a_player_who_repeats_a_pattern(pattern):
    assert app_wins_after(itertools.cycle(pattern)) >= 0.8


def test_against_uniform_random_moves_the_app_wins_a_third():
    results = {"app": 0, "player": 0, "draw": 0}
    for seed in range(200):
        player = random.Random(1000 + seed)
        strategy, history = Strategy(seed), []
        for _ in range(30):
            app, _ = strategy.choose(history)
            move = player.choice(MOVES)
            results[winner(move, app)] += 1
            history.append(move)
    total = sum(results.values())
    for share in results.values():
        assert abs(share / total - 1 / 3) < 0.03, results


def test_the_app_commits_before_the_move_and_names_its_rule():
    game = Game(rounds=5, seed=1)
    committed = game.commit()
    assert game.commit() == committed  # unchanged until a round is played
    first = game.play("rock")
    assert (first.app, first.rule) == committed
    assert first.rule == "random"  # no history yet
    game.play("rock")
    assert game.history[-1].rule in ("frequency", "markov")
    assert sum(game.score.values()) == 2


def test_best_of_n_ends_when_one_side_has_a_majority():
    game = Game(rounds=3, seed=0)
    while not game.over:
        game.play("rock")
    assert game.champion in ("player", "app") and max(game.score["player"], game.score["app"]) == 2
    with pytest.raises(ValueError, match="over"):
        game.play("rock")
    with pytest.raises(ValueError, match="odd"):
        Game(rounds=4)


def test_the_move_is_the_most_confident_reading_around_shoot():
    readings = [(0.5, {"rock": 0.9, "paper": 0.1}),  # before the window
                (1.0, {"paper": 0.7, "rock": 0.3}),
                (1.2, {"scissors": 0.95, "rock": 0.05}),
                (2.5, {"rock": 0.99})]  # after it
    assert read_move(readings, 0.9, 1.5) == "scissors"
    assert read_move([(1.0, {})], 0.9, 1.5) is None  # no hand seen
    assert read_move([(1.0, {"rock": 0.4, "paper": 0.35, "scissors": 0.25})], 0.9, 1.5) is None  # unsure
    assert read_move([(1.0, {"A": 0.9, "rock": 0.1})], 0.9, 1.5) is None  # a taught class, not a move
