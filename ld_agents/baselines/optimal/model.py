"""What both solvers share: hands by value class, the opponent model, observations.

A hand is ``(seq, counts, hard)``: value classes (ace, 2..9, ten-valued) in the order
drawn, counts per class, and the hard total (aces as 1). :class:`OpponentModel` turns an
opponent policy's ``action_probs`` into its hit probability by hand; :func:`observation_for`
builds the observation a policy would see for given value classes, and
:func:`read_observation` reads the value classes and round count back from one.
"""

from __future__ import annotations

from typing import Any

from ld_envs.errors import InvalidArgument
from ld_envs.twenty_one import (
    ACE_BONUS,
    HIDDEN,
    N_CARDS,
    N_CLASSES,
    N_RANKS,
    OPPONENTS,
    TARGET,
    observation,
)

#: tolerance below which hitting is not preferred to standing
TIE_EPS = 1e-12
#: the value classes: 0 = ace, 1..8 = 2..9, 9 = ten-valued
CLASSES = range(N_CLASSES)
#: card ids of each value class, used to build observations for an opponent policy
_IDS_OF_CLASS: list[list[int]] = [
    [s * N_RANKS + r for s in range(2) for r in range(N_RANKS) if min(r, 9) == k]
    for k in range(N_CLASSES)
]

Hand = tuple[tuple[int, ...], tuple[int, ...], int]
_EMPTY_COUNTS = (0,) * N_CLASSES
EMPTY_HAND: Hand = ((), _EMPTY_COUNTS, 0)


def add_card(hand: Hand, k: int) -> Hand:
    """``hand`` with one more card, of class ``k``."""
    seq, cnt, hard = hand
    return (*seq, k), (*cnt[:k], cnt[k] + 1, *cnt[k + 1 :]), hard + k + 1


def hand_of(classes: tuple[int, ...] | list[int]) -> Hand:
    """The hand of these value classes, in this order."""
    hand = EMPTY_HAND
    for k in classes:
        hand = add_card(hand, k)
    return hand


def hand_total(hard: int, cnt: tuple[int, ...]) -> int:
    """The best total of a hand: its hard total, plus 10 for an ace when that stays <= 21."""
    return hard + ACE_BONUS if cnt[0] and hard + ACE_BONUS <= TARGET else hard


def showdown(a: int, b: int) -> tuple[float, float]:
    """(win, loss) of a showdown of totals a (agent) and b (opponent)."""
    return (1.0, 0.0) if a > b else (0.0, 1.0) if a < b else (0.0, 0.0)


# ----------------------------------------------------------------------------- opponent model


class OpponentModel:
    """The opponent's hit probability as a function of the value classes it has seen."""

    def __init__(self, policy: Any, open_cards: bool) -> None:
        if not callable(getattr(policy, "action_probs", None)):
            raise InvalidArgument(
                f"the exact optimum needs the opponent's action probabilities: give a "
                f"built-in name ({', '.join(sorted(OPPONENTS))}) or a policy with "
                f"action_probs(obs) -> (p_stand, p_hit); got {type(policy).__name__}"
            )
        self.policy = policy
        self.open_cards = open_cards
        self.own_only = bool(getattr(policy, "own_cards_only", False))
        self._cache: dict[Any, float] = {}

    def p_hit(self, own: Hand, other: Hand, other_stood: bool, deck_left: int) -> float:
        """P(hit) for the opponent holding ``own`` (its first card first) facing ``other``."""
        key: Any = own[1] if self.own_only else (own[0], other[0], other_stood, deck_left)
        p = self._cache.get(key)
        if p is None:
            if self.own_only:
                obs = observation_for(own[0], (), False, False, deck_left, self.open_cards)
            else:
                obs = observation_for(
                    own[0], other[0], False, other_stood, deck_left, self.open_cards
                )
            probs = self.policy.action_probs(obs)
            p = float(probs[1])
            if not 0.0 <= p <= 1.0 or abs(float(probs[0]) + p - 1.0) > 1e-9:
                raise InvalidArgument(
                    f"{type(self.policy).__name__}.action_probs returned {probs!r}; "
                    f"expected (p_stand, p_hit) summing to 1"
                )
            self._cache[key] = p
        return p


def observation_for(
    own: tuple[int, ...],
    other: tuple[int, ...],
    own_stood: bool,
    other_stood: bool,
    deck_left: int,
    open_cards: bool,
) -> dict[str, Any]:
    """An observation with representative card ids for the given value classes."""
    used = [0] * N_CLASSES
    ids: list[list[int]] = []
    for seq in (own, other):
        cards = []
        for k in seq:
            cards.append(_IDS_OF_CLASS[k][used[k]])
            used[k] += 1
        ids.append(cards)
    return observation(ids[0], ids[1], own_stood, other_stood, deck_left, open_cards)


def read_observation(
    obs: dict[str, Any], open_cards: bool
) -> tuple[list[int], list[int], int | None, bool, int, int]:
    """Value classes of an observation: agent cards, the opponent's cards after its first,
    the first one's class when open (else None), whether the opponent stood, the rounds
    played and the opponent's hits."""
    own = [int(c) for c in obs["own"] if c < N_CARDS]
    codes = [int(c) for c in obs["opponent"]]
    hidden = bool(codes) and codes[0] == HIDDEN
    if hidden == open_cards:
        raise InvalidArgument(
            f"this optimal policy was solved for open_cards={open_cards}, but the observation "
            f"shows the opponent's first card {'face down' if hidden else 'face up'}; build "
            f"it with the env's open_cards"
        )
    opp = [c for c in codes if c < N_CARDS]
    a_seq = [min(c % N_RANKS, 9) for c in own]
    o_seq = [min(c % N_RANKS, 9) for c in opp]
    h = None if hidden else o_seq.pop(0)
    opp_stood = bool(obs["stood"][1])
    if len(a_seq) < 2 or not o_seq:
        raise InvalidArgument(f"not a TwentyOne observation after the deal: {obs!r}")
    rounds = len(a_seq) - 2
    opp_hits = len(o_seq) - 1
    if opp_hits > rounds or (not opp_stood and opp_hits != rounds):
        raise InvalidArgument(
            f"observation is not reachable under the round order (agent hits {rounds}, "
            f"opponent hits {opp_hits}, opponent stood {opp_stood}): {obs!r}"
        )
    return a_seq, o_seq, h, opp_stood, rounds, opp_hits
