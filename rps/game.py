"""Rock, paper, scissors against the app: rules, the app's strategy, a best-of-N game.

The app's move never looks at the player's current move: it is chosen from the player's
previous moves only, by the first of these that has evidence (and the round says which):

- ``markov-2``, ``markov-1``: Markov models of the player, counts of which move followed each
  pair of moves, then each move; the most frequent successor of the player's last two (or
  last) moves is predicted and beaten.  Players who cycle (rock, paper, scissors, ... or rock,
  rock, paper, ...) are read after a few rounds.
- ``frequency``: the player's most frequent move so far, beaten.  Players who favour one move.
- ``random``: a uniform draw, with no history (and for ties in the counts), so a player who
  plays uniformly at random wins, loses and draws a third of the time each.

Short Markov models suit people: their next move depends on their last one and on whether it
won (the conditional responses Wang, Xu and Zhou measured in 360 players, "Social cycling and
conditional responses in the Rock-Paper-Scissors game", Scientific Reports 4, 5830, 2014).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

MOVES = ("rock", "paper", "scissors")
BEATS = {"rock": "scissors", "paper": "rock", "scissors": "paper"}  # key beats value
COUNTER = {loser: winner for winner, loser in BEATS.items()}  # the move that beats key
# How sure a reading must be to count as the player's move (the top class's probability).
MIN_CONFIDENCE = 0.5
# The Markov models tried, longest context first: the last two moves, then the last one.
MARKOV_ORDERS = (2, 1)


def winner(player: str, app: str) -> str:
    """"player", "app" or "draw"."""
    if player == app:
        return "draw"
    return "player" if BEATS[player] == app else "app"


@dataclass
class Strategy:
    """The app's move from the player's history (oldest first); ``choose`` says which rule."""

    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def predict(self, history: Sequence[str]) -> tuple[str | None, str]:
        """The player's likely next move and the rule that predicted it (None, "random")."""
        for order in MARKOV_ORDERS:
            if len(history) <= order:
                continue
            context = list(history[-order:])
            followers = Counter(history[index + order] for index in range(len(history) - order)
                                if list(history[index:index + order]) == context)
            top = self._unique_top(followers)
            if top:
                return top, f"markov-{order}"
        top = self._unique_top(Counter(history))
        if top:
            return top, "frequency"
        return None, "random"

    def choose(self, history: Sequence[str]) -> tuple[str, str]:
        """``(app's move, rule)``: the move that beats the predicted one, or a uniform draw."""
        predicted, rule = self.predict(history)
        if predicted is None:
            return self._random.choice(MOVES), rule
        return COUNTER[predicted], rule

    @staticmethod
    def _unique_top(counts: Counter) -> str | None:
        if not counts:
            return None
        ranked = counts.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None  # a tie: no evidence either way
        return ranked[0][0]


@dataclass(frozen=True)
class Round:
    player: str
    app: str
    rule: str  # which rule chose the app's move: "markov-2", "markov-1", "frequency" or "random"
    winner: str  # "player", "app" or "draw"


@dataclass
class Game:
    """Best of ``rounds`` (first to more than half of them wins; draws do not count)."""

    rounds: int = 5
    seed: int | None = None
    history: list[Round] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.rounds % 2 == 0:
            raise ValueError(f"best of N needs an odd N of 1 or more, got {self.rounds}")
        self.strategy = Strategy(self.seed)
        self.pending: tuple[str, str] | None = None

    @property
    def score(self) -> dict[str, int]:
        counts = Counter(round_.winner for round_ in self.history)
        return {"player": counts["player"], "app": counts["app"], "draw": counts["draw"]}

    @property
    def over(self) -> bool:
        return max(self.score["player"], self.score["app"]) > self.rounds // 2

    @property
    def champion(self) -> str | None:
        if not self.over:
            return None
        return "player" if self.score["player"] > self.score["app"] else "app"

    def commit(self) -> tuple[str, str]:
        """The app's move for the next round, chosen now from the player's past moves alone and
        kept until a round is played (a round whose move could not be read keeps it)."""
        if self.pending is None:
            self.pending = self.strategy.choose([round_.player for round_ in self.history])
        return self.pending

    def play(self, player: str) -> Round:
        """Play one round: the app's committed move (``commit``) meets ``player``."""
        if player not in MOVES:
            raise ValueError(f"{player!r} is not one of {', '.join(MOVES)}")
        if self.over:
            raise ValueError("The game is over; start a new one.")
        app, rule = self.commit()
        self.pending = None
        played = Round(player, app, rule, winner(player, app))
        self.history.append(played)
        return played


def read_move(readings: Sequence[tuple[float, dict[str, float]]], start: float, end: float,
              min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """The player's move from webcam readings around "shoot": among ``(time, probabilities)``
    readings with ``start <= time <= end``, the most confident one's top class, when it is a
    move and at least ``min_confidence`` sure; else None ("couldn't see your hand")."""
    best, best_probability = None, min_confidence
    for moment, probabilities in readings:
        if not start <= moment <= end or not probabilities:
            continue
        label, probability = max(probabilities.items(), key=lambda item: item[1])
        if label in MOVES and probability >= best_probability:
            best, best_probability = label, probability
    return best
