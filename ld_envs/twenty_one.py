"""The "21 points" card game of the Logic Distillation paper (section 4.4, Table 3).

The rules live here as small pure functions (``hand_value``, ``is_bust``,
``compare_totals``, ``bust_probability``, ``observation``...) that the env, the built-in
opponents, the exact solver (``ld_agents.baselines.optimal``), the prompts and the tests all call;
:class:`TwentyOneEnv` only holds state, draws from ``self.np_random`` and renders.

Cards are ints ``0..25``: ``suit * 13 + rank`` with ranks ``A, 2, ..., 10, J, Q, K``
(rank index 0..12) and suits ``S`` (spades, 0) and ``H`` (hearts, 1). In observations a
hand is a fixed-length int64 array of card codes: a card id, :data:`EMPTY` for an unused
slot, :data:`HIDDEN` for the face-down card.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ld_envs.errors import (
    NOT_STARTED,
    InvalidAction,
    InvalidArgument,
    guard_observation,
    unknown_name,
)

logger = logging.getLogger(__name__)

RANKS: tuple[str, ...] = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
SUITS: tuple[str, ...] = ("S", "H")
N_RANKS = len(RANKS)
N_CARDS = N_RANKS * len(SUITS)  # 26
#: The full deck, card ids in order (the deck's make-up is public).
DECK: tuple[int, ...] = tuple(range(N_CARDS))
TARGET = 21
#: An ace counts 11 (1 + ACE_BONUS) unless that takes the hand over TARGET.
ACE_BONUS = 10
#: The dealer-style opponent hits below this total.
DEALER_STANDS_AT = 17

STAND, HIT = 0, 1
ACTIONS = ("stand", "hit")

#: Slots per hand in an observation: a hand of 8 cards can still total <= 21
#: (A A 2 2 3 3 4 4 = 20) and the ninth card busts it, so no hand ever holds 10.
MAX_HAND = 9
#: Card code of an unused slot.
EMPTY = N_CARDS
#: Card code of the face-down card.
HIDDEN = N_CARDS + 1
N_CODES = N_CARDS + 2
#: Totals in observations range over 0..MAX_TOTAL (a bust hand can reach 21 + 10).
MAX_TOTAL = TARGET + 10

#: Value classes used by counting and the solver: 0 = ace, 1..8 = pips 2..9, 9 = ten-valued.
N_CLASSES = 10
#: How many cards of each value class the full deck holds (2 per rank, 8 ten-valued).
CLASS_COUNTS: tuple[int, ...] = (2, 2, 2, 2, 2, 2, 2, 2, 2, 8)

OUTCOMES = ("win", "loss", "draw")

# ----------------------------------------------------------------------------- cards


def rank_of(card: int) -> int:
    """Rank index of a card: 0 = A, 1..9 = 2..10, 10 = J, 11 = Q, 12 = K."""
    return card % N_RANKS


def suit_of(card: int) -> int:
    """Suit index of a card: 0 = spades, 1 = hearts."""
    return card // N_RANKS


def card_value(card: int) -> int:
    """Hard value of a card: an ace 1, 2-10 their pips, J, Q, K 10."""
    return min(card % N_RANKS, 9) + 1


def card_class(card: int) -> int:
    """Value class of a card (``card_value - 1``): 0 = ace, ..., 9 = any ten-valued card."""
    return min(card % N_RANKS, 9)


def card_name(card: int) -> str:
    """Short name of a card, e.g. ``"AS"``, ``"10H"``, ``"QS"``."""
    return RANKS[card % N_RANKS] + SUITS[card // N_RANKS]


def make_deck() -> list[int]:
    """The 26 cards (A-K in two suits) in id order; shuffle a copy to play."""
    return list(DECK)


# ----------------------------------------------------------------------------- hands


def total_of(hard: int, has_ace: bool) -> int:
    """Best total from a hand's hard total (aces as 1) and whether it holds an ace.

    One ace counts 11 unless that takes the hand over 21, then 1 (two aces as 11 would
    always bust, so only one can ever count 11).
    """
    return hard + ACE_BONUS if has_ace and hard + ACE_BONUS <= TARGET else hard


def hand_value(cards: Iterable[int]) -> int:
    """A hand's total: the best total under the ace rule (see :func:`total_of`)."""
    hard = 0
    has_ace = False
    for c in cards:
        r = c % N_RANKS
        if r == 0:
            has_ace = True
        hard += r + 1 if r < 9 else 10
    return total_of(hard, has_ace)


def is_soft(cards: Iterable[int]) -> bool:
    """True when an ace counts 11 in the hand's total."""
    cards = list(cards)
    hard = sum(card_value(c) for c in cards)
    return hand_value(cards) != hard


def is_bust(cards: Iterable[int]) -> bool:
    """True when the hand's total is over 21 (that player loses at once)."""
    return hand_value(cards) > TARGET


def compare_totals(own_total: int, other_total: int) -> int:
    """Reward of the showdown when both have stood: +1 higher, -1 lower, 0 equal."""
    return (own_total > other_total) - (own_total < other_total)


def outcome_name(reward: float) -> str:
    """``"win"``, ``"loss"`` or ``"draw"`` for a final reward of +1, -1 or 0."""
    return "win" if reward > 0 else "loss" if reward < 0 else "draw"


def dealer_action(cards: Iterable[int], stands_at: int = DEALER_STANDS_AT) -> int:
    """The dealer rule: hit below ``stands_at`` (17), stand otherwise."""
    return HIT if hand_value(cards) < stands_at else STAND


def unseen_cards(own: Iterable[int], other_visible: Iterable[int]) -> list[int]:
    """Cards a player cannot see: the deck plus the other's face-down card, in id order."""
    seen = set(own) | set(other_visible)
    return [c for c in DECK if c not in seen]


def bust_probability(own: Sequence[int], unseen: Sequence[int]) -> float:
    """Probability that one more card drawn uniformly from ``unseen`` busts ``own``.

    ``unseen`` holds the cards the player cannot see (:func:`unseen_cards`): the deck and
    the other's face-down card, each equally likely to come next. 0.0 when it is empty.
    """
    if not unseen:
        return 0.0
    hard = sum(card_value(c) for c in own)
    # the smallest total a hit can reach is hard + value (aces as 1): bust iff that is > 21
    return sum(1 for c in unseen if hard + card_value(c) > TARGET) / len(unseen)


# ----------------------------------------------------------------------------- observations

_EMPTY_HAND = np.full(MAX_HAND, EMPTY, dtype=np.int64)


def hand_codes(cards: Sequence[int], hide_first: bool = False) -> np.ndarray:
    """Encode a hand as MAX_HAND card codes (EMPTY after the last card)."""
    codes = _EMPTY_HAND.copy()
    codes[: len(cards)] = cards
    if hide_first and cards:
        codes[0] = HIDDEN
    return codes


def decode_hand(codes: Iterable[int]) -> list[int]:
    """The visible card ids of an encoded hand (EMPTY and HIDDEN slots dropped)."""
    return [int(c) for c in codes if c < N_CARDS]


def observation(
    own: Sequence[int],
    other: Sequence[int],
    own_stood: bool,
    other_stood: bool,
    deck_left: int,
    open_cards: bool = False,
) -> dict[str, Any]:
    """What a player sees, from its own perspective (the same for agent and opponent).

    Its own cards, the other's cards with the other's first card face down unless
    ``open_cards``, who has stood, the number of cards left in the deck and the two
    visible totals. See :class:`TwentyOneEnv` for the encoding.
    """
    hide = not open_cards
    return {
        "own": hand_codes(own),
        "opponent": hand_codes(other, hide_first=hide),
        "stood": np.array((own_stood, other_stood), dtype=np.int8),
        "deck_left": deck_left,
        "own_total": hand_value(own),
        "opponent_visible_total": hand_value(other[1:] if hide else other),
    }


def observation_space() -> spaces.Dict:
    """The ``Dict`` space of :func:`observation`."""
    hand = spaces.MultiDiscrete(np.full(MAX_HAND, N_CODES, dtype=np.int64))
    return spaces.Dict(
        {
            "own": hand,
            "opponent": spaces.MultiDiscrete(np.full(MAX_HAND, N_CODES, dtype=np.int64)),
            "stood": spaces.MultiBinary(2),
            "deck_left": spaces.Discrete(N_CARDS + 1),
            "own_total": spaces.Discrete(MAX_TOTAL + 1),
            "opponent_visible_total": spaces.Discrete(MAX_TOTAL + 1),
        }
    )


# ----------------------------------------------------------------------------- players


class TwentyOnePlayer:
    """Base of the built-in 21-point players (also the env's built-in opponents).

    A player owns its random generator, reads the observation of :func:`observation`
    from its own side, and says how likely it is to stand or hit there
    (:meth:`action_probs`), which lets ``ld_agents.baselines.optimal`` best-respond to it exactly.
    ``own_cards_only`` declares that the probabilities depend on the player's own cards
    alone, which the solver uses to merge states.
    """

    name: ClassVar[str] = ""
    own_cards_only: ClassVar[bool] = False

    def __init__(self, seed: int | None = None) -> None:
        self.np_random = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; reseed the player's generator when ``seed`` is given."""
        if seed is not None:
            self.np_random = np.random.default_rng(seed)

    def action_probs(self, obs: dict[str, Any]) -> tuple[float, float]:
        """``(p_stand, p_hit)`` in this observation."""
        raise NotImplementedError

    @guard_observation("twentyone")
    def act(self, obs: dict[str, Any]) -> int:
        """0 = stand, 1 = hit; drawn from :meth:`action_probs` with the own generator."""
        p_hit = self.action_probs(obs)[1]
        if p_hit <= 0.0:
            return STAND
        if p_hit >= 1.0:
            return HIT
        return HIT if self.np_random.random() < p_hit else STAND

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> list[int]:
        """Actions for several observations, in order."""
        return [self.act(o) for o in observations]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is a real bool (NumPy's too), else :class:`InvalidArgument`: a
    string such as ``"no"`` is truthy and must not be read as ``True``."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgument(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_total(name: str, value: Any) -> int:
    """``value`` if it is an int hand total a threshold can name (2 to 21: two aces
    to :data:`TARGET`), else :class:`InvalidArgument`."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not 2 <= int(value) <= TARGET:
        raise InvalidArgument(f"{name} must be an int hand total from 2 to {TARGET}, got {value!r}")
    return int(value)


def check_probability(name: str, value: Any) -> float:
    """``value`` if it is a real number in [0, 1] (not a bool or a string), else
    :class:`InvalidArgument`."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise InvalidArgument(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class DealerPlayer(TwentyOnePlayer):
    """Dealer-style player: hit while its own total is below 17 (:func:`dealer_action`)."""

    name = "dealer"
    own_cards_only = True

    def __init__(self, seed: int | None = None, stands_at: int = DEALER_STANDS_AT) -> None:
        super().__init__(seed)
        self.stands_at = check_total("stands_at", stands_at)

    def action_probs(self, obs: dict[str, Any]) -> tuple[float, float]:
        return (0.0, 1.0) if obs["own_total"] < self.stands_at else (1.0, 0.0)

    @guard_observation("twentyone")
    def act(self, obs: dict[str, Any]) -> int:
        return HIT if obs["own_total"] < self.stands_at else STAND


class RandomPlayer(TwentyOnePlayer):
    """Random player: hit with probability ``p_hit`` (0.5) from its own generator."""

    name = "random"
    own_cards_only = True

    def __init__(self, seed: int | None = None, p_hit: float = 0.5) -> None:
        super().__init__(seed)
        self.p_hit = check_probability("p_hit", p_hit)

    def action_probs(self, obs: dict[str, Any]) -> tuple[float, float]:
        return (1.0 - self.p_hit, self.p_hit)

    def act(self, obs: dict[str, Any]) -> int:
        return HIT if self.np_random.random() < self.p_hit else STAND


OPPONENTS: dict[str, type[TwentyOnePlayer]] = {"dealer": DealerPlayer, "random": RandomPlayer}


def make_opponent(opponent: str | Any) -> Any:
    """Resolve an ``opponent`` argument: a built-in name or any object with ``act(obs)``."""
    if isinstance(opponent, str):
        if opponent not in OPPONENTS:
            raise unknown_name("opponent", opponent, list(OPPONENTS))
        return OPPONENTS[opponent]()
    if isinstance(opponent, type):  # its act() would be unbound: a TypeError at reset
        raise InvalidArgument(
            f"opponent must be a policy object, not the class {opponent.__name__}; pass an "
            f"instance, e.g. {opponent.__name__}(), or a name ('dealer', 'random')"
        )
    if not callable(getattr(opponent, "act", None)):
        raise InvalidArgument(
            f"opponent must be 'dealer', 'random' or an object with act(obs), "
            f"got {type(opponent).__name__}"
        )
    check_opponent_seat(opponent)
    return opponent


def check_opponent_seat(opponent: Any, name: str | None = None) -> None:
    """Refuse a policy that declares ``agent_seat_only`` (the ``optimal`` best response:
    it replays the rounds an observation implies from the agent's side, so it cannot
    answer the opponent's observations) as the opponent."""
    if getattr(opponent, "agent_seat_only", False):
        what = name or getattr(opponent, "name", None) or type(opponent).__name__
        raise InvalidArgument(
            f"opponent {what!r} only plays the agent's seat (it is the best response to an "
            f"opponent, computed from the agent's side); pass it as the agent's policy and "
            f"choose another opponent: 'dealer', 'random' or a policy that plays either seat"
        )


# ----------------------------------------------------------------------------- env

AGENT, OPPONENT = 0, 1


class TwentyOneEnv(gym.Env):
    """The 26-card "21 points" game of the Logic Distillation paper, against an opponent.

    ## Description
    Two players, the agent and an opponent policy given to the env, each try to end with
    a higher total than the other without going over 21. The deck holds 26 cards: ranks
    A, 2-10, J, Q, K in two suits (spades, hearts). Cards 2-10 count their pips, J, Q, K
    count 10, and an ace counts 11 unless that takes the hand over 21, then 1 (a hand's
    total is its best total, :func:`hand_value`). The deck's make-up is public, so the
    unseen cards can be counted.

    Play goes in rounds: the agent, if still in, chooses hit or stand; then the opponent,
    if still in. Standing is final. A hit draws one card; a total over 21 busts and that
    player loses at once. A hit from an empty deck counts as a stand (with 26 cards this
    cannot happen in a full game; a stacked short deck given to ``reset`` can reach it).
    When both have stood the higher total wins and equal totals draw. Once the agent has
    stood it is never asked again: that same ``step`` plays the opponent out to the end.

    ## Action Space
    ``Discrete(2)``: 0 = stand, 1 = hit (Gymnasium Blackjack's convention).

    ## Observation Space
    ``Dict`` (see :func:`observation`), the same for both players from their own side:

    - ``"own"``: int64 (9,), the player's cards as card ids ``suit * 13 + rank`` (0..25;
      ranks A, 2..10, J, Q, K; suits S, H) in the order received, then ``EMPTY`` (26);
    - ``"opponent"``: int64 (9,), the other player's cards, slot 0 ``HIDDEN`` (27) while
      it is face down (always, unless ``open_cards``), then ``EMPTY``;
    - ``"stood"``: int8 (2,), ``[own, opponent]``, 1 once that player has stood;
    - ``"deck_left"``: int, cards left in the deck (0..26);
    - ``"own_total"``: int, the best total of the own cards (0..31);
    - ``"opponent_visible_total"``: int, the best total of the other's visible cards.

    Nothing else: the face-down card is not in it in any form (``deck_left`` counts
    the deck, which is public). The order of the cards tells the history: a player's
    k-th card (k >= 3) was drawn in round k - 2, so together with ``"stood"`` the
    observation determines every earlier decision of both players, which is what the
    exact optimum (``ld_agents.baselines.optimal``) reads to condition its belief about the
    face-down card.

    The opponent policy receives the same observation from its side (its own cards, the
    agent's cards with the agent's first card face down) and answers 0 or 1, so one
    policy class can play either side. An opponent answer that is not 0 or 1 counts as a
    stand (``info["opponent_invalid"]`` counts them).

    ## Starting State
    The deck is shuffled from the seed; the cards are dealt agent, opponent, agent,
    opponent, so each holds two. ``reset(options={"deck": [card ids]})`` deals from a
    given (possibly short, at least 4 distinct cards) deck in that order instead.

    ## Rewards
    +1 for a win, -1 for a loss, 0 for a draw, given at the end; 0 on every other step.

    ## Episode End
    Terminates when a player busts or when both have stood. Never truncated.

    ## Information
    ``"outcome"``: ``None`` while running, then ``"win"``, ``"loss"`` or ``"draw"``
    (from the agent's side); ``"agent_total"`` (the agent's total); ``"opponent_total"``
    (-1 while running, revealed at the end) and ``"opponent_cards"`` (a list of cards,
    empty while running, revealed at the end); ``"opponent_invalid"`` (count of unreadable
    opponent answers). Every key has one type on every step, so Gymnasium's vector envs
    can stack the infos of several games.

    ## Arguments
    ``gym.make("TwentyOne-v0", opponent="dealer", open_cards=False, render_mode=None)``;
    ``opponent`` is ``"dealer"`` (hit below 17, the default), ``"random"`` (hit with
    probability 0.5) or any object with ``act(obs)``, used as given (envs made with one
    object share its random generator: give ``make_vec(..., vectorization_mode="sync")`` a
    name); ``open_cards=True`` shows every
    card to both players. ``render_mode``: ``"rgb_array"`` (frame with both hands, the
    face-down card drawn face down until the end), ``"human"`` (pygame window) or
    ``"ansi"`` (text).

    ## References
    Chen et al., "Logic Distillation: Learning from Code Function by Function for
    Decision-making Tasks", IJCAI 2025, section 4.4 and Table 3.

    ## Version History
    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["human", "rgb_array", "ansi"],
        "render_fps": 2,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        opponent: str | Any = "dealer",
        open_cards: bool = False,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidArgument(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(open_cards, (bool, np.bool_)):
            raise InvalidArgument(f"open_cards must be True or False, got {open_cards!r}")
        self.render_mode = render_mode
        self.open_cards = bool(open_cards)
        self.opponent = make_opponent(opponent)
        self.observation_space = observation_space()
        self.action_space = spaces.Discrete(2)

        self.hands: tuple[list[int], list[int]] = ([], [])
        self.stood = [False, False]
        self._hard = [0, 0]
        self._ace = [False, False]
        self._deck: list[int] = []  # next card at the end
        self._reset_done = False  # step() before the first reset() is refused
        self.outcome: str | None = None
        self.opponent_invalid = 0
        self._renderer: Any = None

    # ----------------------------------------------------------------- state helpers

    @property
    def agent_cards(self) -> list[int]:
        """The agent's cards, in the order received."""
        return self.hands[AGENT]

    @property
    def opponent_cards(self) -> list[int]:
        """The opponent's cards, in the order received (the first is face down)."""
        return self.hands[OPPONENT]

    @property
    def deck(self) -> list[int]:
        """The cards left in the deck, next card first."""
        return self._deck[::-1]

    def total(self, player: int) -> int:
        """Best total of ``player``'s hand (0 = agent, 1 = opponent)."""
        return total_of(self._hard[player], self._ace[player])

    def _deal(self, player: int) -> None:
        card = self._deck.pop()
        self.hands[player].append(card)
        r = card % N_RANKS
        if r == 0:
            self._ace[player] = True
        self._hard[player] += r + 1 if r < 9 else 10

    def _obs_for(self, player: int) -> dict[str, Any]:
        other = 1 - player
        own_cards, other_cards = self.hands[player], self.hands[other]
        own = _EMPTY_HAND.copy()
        own[: len(own_cards)] = own_cards
        opp = _EMPTY_HAND.copy()
        opp[: len(other_cards)] = other_cards
        if self.open_cards:
            visible_total = total_of(self._hard[other], self._ace[other])
        else:
            opp[0] = HIDDEN
            visible_total = hand_value(other_cards[1:])
        return {
            "own": own,
            "opponent": opp,
            "stood": np.array((self.stood[player], self.stood[other]), dtype=np.int8),
            "deck_left": len(self._deck),
            "own_total": total_of(self._hard[player], self._ace[player]),
            "opponent_visible_total": visible_total,
        }

    def agent_observation(self) -> dict[str, Any]:
        """What the agent sees now (what ``reset`` and ``step`` return)."""
        return self._obs_for(AGENT)

    def opponent_observation(self) -> dict[str, Any]:
        """What the opponent sees now: the same encoding from its side."""
        return self._obs_for(OPPONENT)

    def _info(self) -> dict[str, Any]:
        done = self.outcome is not None
        return {
            "outcome": self.outcome,
            "agent_total": total_of(self._hard[AGENT], self._ace[AGENT]),
            "opponent_total": self.total(OPPONENT) if done else -1,
            "opponent_cards": list(self.hands[OPPONENT]) if done else [],
            "opponent_invalid": self.opponent_invalid,
        }

    # ----------------------------------------------------------------- API

    def action_masks(self) -> np.ndarray:
        """int8 (2,): which actions are legal (stand and hit always are while the game runs),
        as sb3-contrib's MaskablePPO reads it."""
        if not self._reset_done:
            raise InvalidAction(NOT_STARTED)
        return np.ones(2, dtype=np.int8)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and deep-copy without the renderer (pygame state); it is rebuilt lazily."""
        state = dict(self.__dict__)
        state["_renderer"] = None
        return state

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._reset_done = False  # until this reset has finished
        if options is not None and not isinstance(options, Mapping):
            raise InvalidArgument(
                f"reset options must be a dict such as {{'deck': [card ids]}}, got "
                f"{type(options).__name__} {options!r}"
            )
        options = options or {}
        unknown = set(options) - {"deck"}
        if unknown:
            raise InvalidArgument(f"unknown reset option(s) {sorted(unknown)}; known: deck")
        if options.get("deck") is not None:
            order = _check_deck(options["deck"])
        else:
            order = self.np_random.permutation(N_CARDS).tolist()
        if hasattr(self.opponent, "reset"):
            self.opponent.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._deck = order[::-1]
        self.hands = ([], [])
        self._hard = [0, 0]
        self._ace = [False, False]
        self.stood = [False, False]
        self.outcome = None
        self._reset_done = True
        self.opponent_invalid = 0
        for player in (AGENT, OPPONENT, AGENT, OPPONENT):
            self._deal(player)
        if self.render_mode == "human":
            self.render()
        return self._obs_for(AGENT), self._info()

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if action.__class__ is not int:
            action = _parse_action(action)
        elif action != 0 and action != 1:
            raise InvalidAction(f"a TwentyOne action is 0 (stand) or 1 (hit), got {action!r}")
        if self.outcome is not None:
            raise InvalidAction("the episode has ended; call reset() before step()")
        if not self._reset_done:
            raise InvalidAction(NOT_STARTED)
        stood = self.stood
        reward = 0.0
        if action == HIT and self._deck:
            self._deal(AGENT)
            if self._hard[AGENT] > TARGET:
                return self._end(-1.0)
        else:  # a stand, or a hit from an empty deck
            stood[AGENT] = True
        if stood[AGENT]:  # play the opponent out
            while not stood[OPPONENT]:
                if self._opponent_turn():
                    return self._end(1.0)
        elif not stood[OPPONENT] and self._opponent_turn():
            return self._end(1.0)
        if stood[OPPONENT] and stood[AGENT]:
            reward = float(compare_totals(self.total(AGENT), self.total(OPPONENT)))
            return self._end(reward)
        if self.render_mode == "human":
            self.render()
        return self._obs_for(AGENT), reward, False, False, self._info()

    def _opponent_turn(self) -> bool:
        """One opponent decision; True when it busts."""
        choice = self.opponent.act(self._obs_for(OPPONENT))
        if choice.__class__ is not int:
            try:
                choice = _parse_action(choice)
            except InvalidAction:
                logger.debug("unreadable opponent answer %r counted as a stand", choice)
                self.opponent_invalid += 1
                choice = STAND
        elif choice != 0 and choice != 1:
            self.opponent_invalid += 1
            choice = STAND
        if choice == HIT and self._deck:
            self._deal(OPPONENT)
            return self._hard[OPPONENT] > TARGET
        self.stood[OPPONENT] = True
        return False

    def _end(self, reward: float) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.outcome = outcome_name(reward)
        if self.render_mode == "human":
            self.render()
        return self._obs_for(AGENT), reward, True, False, self._info()

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array', "
                "'human' or 'ansi' to gym.make"
            )
            return None
        from ld_envs import twenty_one_render

        if self.render_mode == "ansi":
            return twenty_one_render.ansi(self)
        if self._renderer is None:
            self._renderer = twenty_one_render.TwentyOneRenderer(self.render_mode)
        return self._renderer.draw(self)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _parse_action(action: Any) -> int:
    """Accept 0/1 as a Python int, a numpy integer or a 0-d / size-1 integer array."""
    try:
        if isinstance(action, np.ndarray) and action.size == 1:
            action = action.reshape(()).item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise TypeError
        value = int(action)
    except (TypeError, ValueError):
        value = -1
    if value not in (STAND, HIT):
        raise InvalidAction(f"a TwentyOne action is 0 (stand) or 1 (hit), got {action!r}")
    return value


def _check_deck(deck: Any) -> list[int]:
    """Validate a stacked deck given to ``reset(options={"deck": ...})``."""
    if isinstance(deck, np.ndarray):
        deck = deck.tolist()
    if isinstance(deck, (str, bytes, Mapping)) or not isinstance(deck, Iterable):
        raise InvalidArgument(f"deck must be a sequence of card ids 0..25, got {deck!r}")
    order = list(deck)
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in order):
        raise InvalidArgument(
            f"deck must hold integer card ids 0..25 (no floats, bools or text), got {deck!r}"
        )
    order = [int(c) for c in order]
    if len(order) < 4 or len(set(order)) != len(order) or not all(0 <= c < N_CARDS for c in order):
        raise InvalidArgument(
            f"deck must hold at least 4 distinct card ids in 0..{N_CARDS - 1} (dealt agent, "
            f"opponent, agent, opponent, then drawn in order), got {deck!r}"
        )
    return order
