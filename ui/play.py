"""The Play tab: best of N against the app, from the webcam.

The app commits to its move before the countdown, from the player's previous moves alone
(``rps.game``); the player's move is the most confident webcam reading in a short window
around "shoot".  Each visitor (Gradio session) has their own game.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, NamedTuple

import gradio as gr

from rps.errors import RpsError
from rps.game import MOVES, Game, Round, read_move
from rps.reports import top_classes
from ui.classify import ClassifierFor
from ui.inputs import WEBCAM, LiveFrameInput

COUNTDOWN = ("Rock…", "Paper…", "Scissors…", "Shoot!")
BEAT_SECONDS = 0.6  # between the countdown's words
# The player's move is read from frames between this long before "Shoot!" and this long after.
BEFORE_SHOOT, AFTER_SHOOT = 0.4, 0.8
FRAME_SECONDS = 0.1
MAX_PLAYERS = 64
RULE_TEXT = {
    "random": "a random move (no pattern in your moves to go on yet)",
    "frequency": "the move that beats your most frequent one",
    "markov-1": "the move that beats what you usually play after your last move",
    "markov-2": "the move that beats what you usually play after your last two moves",
}
# The history table's column: what each rule read of the player, in a few words.
RULE_SHORT = {"random": "random", "frequency": "your most frequent move", "markov-1": "your habit after your last move",
              "markov-2": "your habit after your last two moves"}
WINNER_TEXT = {"player": "**You win the round!**", "app": "**The app wins the round.**", "draw": "**A draw.**"}


class Player:
    """One visitor's game and their recent webcam readings ``(time.monotonic(), probabilities)``."""

    def __init__(self, rounds: int = 5):
        self.game = Game(rounds)
        self.readings: deque[tuple[float, dict[str, float]]] = deque(maxlen=60)
        self.playing = threading.Lock()  # one round at a time: a second click never counts a move twice


class Players:
    """Every visitor's ``Player``, at most ``MAX_PLAYERS`` (the least recently seen goes)."""

    def __init__(self, limit: int = MAX_PLAYERS):
        self._players: OrderedDict[str, Player] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, key: str) -> Player:
        with self._lock:
            player = self._players.pop(key, None) or Player()
            self._players[key] = player
            while len(self._players) > self.limit:
                self._players.popitem(last=False)
            return player

    def new_game(self, key: str, rounds: int) -> Player:
        with self._lock:
            self._players[key] = Player(rounds)
        return self.get(key)

    def end(self, key: str) -> None:
        with self._lock:
            self._players.pop(key, None)


class RoundView(NamedTuple):
    countdown: str
    result: str
    score: str
    history: list[list[Any]]


def score_text(game: Game) -> str:
    score = game.score
    text = f"You **{score['player']}** · App **{score['app']}** · Draws {score['draw']} (best of {game.rounds})"
    if game.champion:
        text += " — **you win the game!**" if game.champion == "player" else " — **the app wins the game.**"
    return text


def history_rows(game: Game) -> list[list[Any]]:
    return [[index, played.player, played.app, played.winner, RULE_SHORT[played.rule]]
            for index, played in enumerate(game.history, 1)][::-1]


def round_text(played: Round) -> str:
    return (f"You played **{played.player}**, the app **{played.app}** ({RULE_TEXT[played.rule]}). "
            f"{WINNER_TEXT[played.winner]}")


def see_frame(classifier, player: Player, frame, moment: float | None = None):
    """Classify one webcam frame into the player's readings; the label to show, or a skip."""
    if frame is None:
        return gr.skip()
    try:
        prediction = classifier.classify(frame)
    except RpsError:
        return gr.skip()
    player.readings.append((time.monotonic() if moment is None else moment, dict(prediction)))
    return top_classes(prediction, 3)


def play_round(player: Player, sleep: Callable[[float], None] = time.sleep):
    """Count down, read the player's move around "Shoot!", play it: yields ``RoundView``s."""
    game = player.game
    if game.over:
        yield RoundView("", "The game is over: press *New game* to play again.", score_text(game), history_rows(game))
        return
    game.commit()  # the app's move is fixed now, before the player shows theirs
    for word in COUNTDOWN[:-1]:
        yield RoundView(f"# {word}", "", score_text(game), history_rows(game))
        sleep(BEAT_SECONDS)
    shoot = time.monotonic()
    yield RoundView(f"# {COUNTDOWN[-1]}", "", score_text(game), history_rows(game))
    sleep(AFTER_SHOOT)
    move = read_move(list(player.readings), shoot - BEFORE_SHOOT, shoot + AFTER_SHOOT)
    if move is None:
        classes = {name for _, probabilities in list(player.readings)[-10:] for name in probabilities}
        why = ("The model you use knows no rock, paper or scissors (a personal model from Teach?): press "
               "*Use the shared model again* in Teach to play." if classes and not classes & set(MOVES)
               else "Couldn't see your hand: hold it up to the camera and play the round again.")
        yield RoundView("# Again!", why, score_text(game), history_rows(game))
        return
    played = game.play(move)
    yield RoundView(f"# {played.player} vs {played.app}", round_text(played), score_text(game), history_rows(game))


def build_play_tab(classifier_for: ClassifierFor, players: Players) -> Callable[[gr.Request], None]:
    """The Play tab; returns the handler that forgets a visitor's game when they leave."""
    with gr.Tab("Play"):
        gr.Markdown("Play rock, paper, scissors against the app. Allow the camera and press record, then "
                    "*Play a round*: show your move on \"Shoot!\". The app picks its move before the "
                    "countdown, from your previous moves only, and learns your habits as you play.")
        with gr.Row():
            with gr.Column():
                camera = LiveFrameInput(sources=["webcam"], streaming=True, webcam_options=WEBCAM, type="numpy",
                                        label="Webcam", height=260, elem_id="play-camera")
                seen = gr.Label(label="What the app sees", num_top_classes=3, elem_id="play-seen")
            with gr.Column():
                countdown = gr.Markdown("", elem_id="play-countdown")
                result = gr.Markdown("", elem_id="play-result")
                score = gr.Markdown("", elem_id="play-score")
                with gr.Row():
                    rounds = gr.Radio([3, 5, 7], value=5, label="Best of")
                    play = gr.Button("Play a round", variant="primary", elem_id="play-round")
                    new = gr.Button("New game")
                history = gr.Dataframe(headers=["round", "you", "app", "winner", "the app went by"],
                                       interactive=False, elem_id="play-history")

    def on_frame(frame, request: gr.Request):
        return see_frame(classifier_for(request), players.get(request.session_hash), frame)

    def on_play(request: gr.Request):
        player = players.get(request.session_hash)
        if not player.playing.acquire(blocking=False):
            return  # a round is already counting down for this player
        try:
            yield from play_round(player)
        finally:
            player.playing.release()

    def on_new(best_of, request: gr.Request) -> RoundView:
        game = players.new_game(request.session_hash, int(best_of)).game
        return RoundView("", "A new game: press *Play a round*.", score_text(game), [])

    def end(request: gr.Request) -> None:
        players.end(request.session_hash)

    camera.stream(on_frame, camera, seen, stream_every=FRAME_SECONDS, time_limit=600, concurrency_limit=16,
                  show_progress="hidden", api_visibility="private")
    play.click(on_play, None, [countdown, result, score, history], api_visibility="private",
               show_progress="hidden")
    new.click(on_new, rounds, [countdown, result, score, history], api_visibility="private")
    return end
