"""The exact best response to a known 21-points opponent, and its exact value.

The opponent's policy is known, as a function of what it sees: any object with
``action_probs(obs) -> (p_stand, p_hit)`` on the observation of
:func:`ld_envs.twenty_one.observation` (the built-in ``dealer``, ``random`` and
``scripted`` players have it; deterministic ones answer 0/1). The game is then a
one-player decision problem under uncertainty, solved here by expectimax over the unseen
cards:

- A state is what the agent has seen: its cards and the opponent's visible cards, in
  order (the order tells when each was drawn), and whether the opponent has stood.
- The face-down card ``h`` is carried as a belief. Cards are dealt from a uniformly
  shuffled deck, so before any opponent decision P(h = x) is proportional to the number
  of unseen cards of value x. Every opponent decision (hit or stand, given its own cards
  including ``h`` and what it saw then) multiplies it by that decision's probability, and
  every opponent card that did not bust it rules out the ``h`` that would have. So the
  belief is ``unseen_count(x) * L(x)``, with the likelihood ``L`` carried down the tree.
  Removing a drawn card from the unseen counts is exactly the conditioning on the draw.
- The agent's value at a state is the larger of standing (the opponent then plays out,
  averaged over ``h`` and the deck) and hitting (averaged over the next card, the
  opponent's reply and its card). Ties go to standing.

Cards are handled by value class (ace, 2..9, ten-valued): the solver assumes the
opponent's probabilities depend on card values, not on suits or on J/Q/K versus 10 (true
of every built-in player). Two solvers share these rules:

- :class:`FastSolver`, for opponents that declare ``own_cards_only`` and hit with
  probability 0/1 (dealer) or one constant (random): states are card multisets, the
  likelihood is a bit mask, branch weights come in closed form. The full solve from every
  deal takes about 1.5-2.5 s of CPU on this project's machines (100k-230k states).
- :class:`ReferenceSolver`, for any opponent with ``action_probs``: ordered card
  sequences and a float likelihood (exact, much slower for a full solve; acting from an
  observation only solves the subtree below it). The tests check the two agree.

API: ``solve(opponent, open_cards)`` gives the best response's win / loss / draw
probabilities averaged over every deal exactly (no sampling, cached per process);
``evaluate(agent, opponent, open_cards)`` gives the same figures for a fixed policy;
:class:`OptimalPolicy` (``ld_agents.make("optimal", "TwentyOne-v0", opponent=...,
open_cards=...)``) acts from an observation alone by replaying the rounds it implies with
the solver's own transitions and reading the same memoised table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ld_agents.base import Policy, register
from ld_envs.errors import InvalidArgument, unknown_name
from ld_envs.twenty_one import (
    ACE_BONUS,
    CLASS_COUNTS,
    HIDDEN,
    HIT,
    N_CARDS,
    N_CLASSES,
    N_RANKS,
    OPPONENTS,
    STAND,
    TARGET,
    observation,
)

logger = logging.getLogger(__name__)

#: tolerance below which hitting is not preferred to standing
TIE_EPS = 1e-12
_CLASSES = range(N_CLASSES)
#: card ids of each value class, used to build observations for an opponent policy
_IDS_OF_CLASS: list[list[int]] = [
    [s * N_RANKS + r for s in range(2) for r in range(N_RANKS) if min(r, 9) == k]
    for k in range(N_CLASSES)
]


@dataclass(frozen=True)
class Solution:
    """Exact outcome probabilities of an agent policy from a fresh deal."""

    win: float
    loss: float
    draw: float
    expected_reward: float
    opponent: str
    open_cards: bool
    #: the agent policy: ``"optimal"`` for :func:`solve`, its name for :func:`evaluate`
    agent: str = "optimal"
    #: agent decision states evaluated (memo size) and the seconds the solve took
    states: int = 0
    seconds: float = 0.0


# ----------------------------------------------------------------------------- hands
# A hand is (seq, counts, hard): value classes in the order drawn, counts per class, and
# the hard total (aces as 1).

Hand = tuple[tuple[int, ...], tuple[int, ...], int]
_EMPTY_COUNTS = (0,) * N_CLASSES
EMPTY_HAND: Hand = ((), _EMPTY_COUNTS, 0)


def _add(hand: Hand, k: int) -> Hand:
    seq, cnt, hard = hand
    return (*seq, k), (*cnt[:k], cnt[k] + 1, *cnt[k + 1 :]), hard + k + 1


def _hand(classes: tuple[int, ...] | list[int]) -> Hand:
    hand = EMPTY_HAND
    for k in classes:
        hand = _add(hand, k)
    return hand


def _total(hard: int, cnt: tuple[int, ...]) -> int:
    return hard + ACE_BONUS if cnt[0] and hard + ACE_BONUS <= TARGET else hard


def _total_with(hand: Hand, k: int) -> int:
    """Total of ``hand`` plus one card of class ``k``."""
    hard = hand[2] + k + 1
    return hard + ACE_BONUS if (hand[1][0] or k == 0) and hard + ACE_BONUS <= TARGET else hard


def _cmp(a: int, b: int) -> tuple[float, float]:
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
                obs = _obs_for(own[0], (), False, False, deck_left, self.open_cards)
            else:
                obs = _obs_for(own[0], other[0], False, other_stood, deck_left, self.open_cards)
            probs = self.policy.action_probs(obs)
            p = float(probs[1])
            if not 0.0 <= p <= 1.0 or abs(float(probs[0]) + p - 1.0) > 1e-9:
                raise InvalidArgument(
                    f"{type(self.policy).__name__}.action_probs returned {probs!r}; "
                    f"expected (p_stand, p_hit) summing to 1"
                )
            self._cache[key] = p
        return p


def _obs_for(
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


# ----------------------------------------------------------------------------- fast solver
# Hands are (code, hard, has_ace) with code = sum(count[k] * 3**k) (k < 9: at most 2 of a
# class) + count[9] * 3**9, so a multiset is one int. The belief's likelihood is a bit mask
# over the face-down card's class: exact when the opponent's hit probability is 0/1 for
# every hand (dealer) or one constant (random), because every factor it contributes is then
# 0 or a constant that normalisation removes. With the hidden card open the mask has one
# bit, so both variants share the code.

_POW = (*tuple(3**k for k in range(9)), 3**9)
_OFF = 9 * 3**9  # > every hand code
_ALL = (1 << N_CLASSES) - 1
_BITS: list[list[int]] = [[h for h in _CLASSES if m >> h & 1] for m in range(1 << N_CLASSES)]

FHand = tuple[int, int, bool]
FState = tuple[FHand, FHand, bool, int, tuple[int, ...]]


def _fadd(hand: FHand, k: int) -> FHand:
    return hand[0] + _POW[k], hand[1] + k + 1, hand[2] or k == 0


def _fhand(classes: list[int] | tuple[int, ...]) -> FHand:
    hand: FHand = (0, 0, False)
    for k in classes:
        hand = _fadd(hand, k)
    return hand


def _ftotal(hard: int, ace: bool) -> int:
    return hard + ACE_BONUS if ace and hard + ACE_BONUS <= TARGET else hard


def _dec(u: tuple[int, ...], k: int) -> tuple[int, ...]:
    return (*u[:k], u[k] - 1, *u[k + 1 :])


def _classes_of(code: int) -> list[int]:
    """The value classes of a hand code, in class order."""
    out: list[int] = []
    for k in range(9):
        out += [k] * (code // _POW[k] % 3)
    return out + [9] * (code // _POW[9])


def _opponent_hands() -> list[list[int]]:
    """Every hand of >= 2 cards the opponent can act on (hard total <= 21), as classes."""
    out: list[list[int]] = []

    def rec(k: int, hard: int, cards: list[int]) -> None:
        if k == N_CLASSES:
            if len(cards) >= 2:
                out.append(list(cards))
            return
        for m in range(CLASS_COUNTS[k] + 1):
            if hard + m * (k + 1) > TARGET:
                break
            rec(k + 1, hard + m * (k + 1), cards + [k] * m)

    rec(0, 0, [])
    return out


def _own_cards_table(policy: Any, open_cards: bool) -> dict[int, float]:
    """P(hit) of an own-cards-only policy for every hand it can act on, by hand code."""
    model = OpponentModel(policy, open_cards)
    return {
        _fhand(classes)[0]: model.p_hit(_hand(classes), EMPTY_HAND, False, N_CARDS - len(classes))
        for classes in _opponent_hands()
    }


def fast_path_table(policy: Any, open_cards: bool) -> dict[int, float] | None:
    """P(hit) per opponent hand code when :class:`FastSolver` applies, else None.

    It applies when the policy declares ``own_cards_only`` and its hit probabilities are
    all 0/1 or all one constant.
    """
    if not getattr(policy, "own_cards_only", False):
        return None
    table = _own_cards_table(policy, open_cards)
    values = set(table.values())
    if values <= {0.0, 1.0} or len(values) == 1:
        return table
    return None


class FastSolver:
    """Expectimax best response to an own-cards-only opponent with 0/1 or constant hit
    probabilities (the built-in ``dealer`` and ``random``), on card multisets.

    Branch weights use a closed form instead of a loop over the face-down card: with
    ``u`` the unseen counts, the number of ways to deal distinct cards of classes
    (h, c, d) is ``u_h (u_c - [c=h]) (u_d - [d=c] - [d=h])``, which is symmetric in the
    three, so sums over ``h`` reduce to prefix sums computed once per state.
    """

    def __init__(
        self, opponent: Any, open_cards: bool, table: dict[int, float], agent: Any = None
    ) -> None:
        self.open_cards = bool(open_cards)
        self.opponent = opponent
        self._p_hit = table
        self._opp: dict[int, tuple[list[float], int, int]] = {}
        self._values: dict[int, tuple[float, float, int]] = {}
        self._playouts: dict[int, tuple[float, float]] = {}
        # with an agent policy the solver evaluates it instead of maximising
        self._agent = agent
        self._agent_model = None if agent is None else OpponentModel(agent, self.open_cards)
        self._agent_p: dict[Any, float] = {}
        # an own-cards-only agent's probabilities come from its table of hands
        self._agent_table = (
            None
            if agent is None or not getattr(agent, "own_cards_only", False)
            else _own_cards_table(agent, self.open_cards)
        )

    @property
    def n_states(self) -> int:
        """Decision states evaluated so far."""
        return len(self._values)

    def _opp_row(self, o: FHand) -> tuple[list[float], int, int]:
        """For a visible opponent hand: P(hit) per face-down class, and the masks of the
        classes under which it may hit / may stand."""
        row = self._opp.get(o[0])
        if row is None:
            ph = [0.0] * N_CLASSES
            hit_ok = stand_ok = 0
            for h in _CLASSES:
                held = o[0] // _POW[h] if h == 9 else o[0] // _POW[h] % 3
                if o[1] + h + 1 > TARGET or held >= CLASS_COUNTS[h]:
                    continue
                p = self._p_hit[o[0] + _POW[h]]
                ph[h] = p
                if p > 0.0:
                    hit_ok |= 1 << h
                if p < 1.0:
                    stand_ok |= 1 << h
            row = self._opp[o[0]] = (ph, hit_ok, stand_ok)
        return row

    # ------------------------------------------------------------- transitions

    @staticmethod
    def _umask(u: tuple[int, ...]) -> int:
        m = 0
        for k in _CLASSES:
            if u[k]:
                m |= 1 << k
        return m

    def child(self, state: FState, c: int, opp_hit: bool, d: int | None) -> FState:
        """The state after the agent draws ``c`` and the opponent (if in) stands or hits ``d``."""
        a, o, stood, like, u = state
        u1 = _dec(u, c)
        a2 = _fadd(a, c)
        if stood:
            return a2, o, True, like & self._umask(u1), u1
        _, hit_ok, stand_ok = self._opp_row(o)
        deck_after = sum(u1) - 1
        if not opp_hit or d is None or deck_after <= 0:
            mask = like if deck_after <= 0 else like & stand_ok
            return a2, o, True, mask & self._umask(u1), u1
        u2 = _dec(u1, d)
        k = 19 - o[1] - d  # the opponent stays in iff h <= k
        nb = (1 << (min(k, 9) + 1)) - 1 if k >= 0 else 0
        return a2, _fadd(o, d), False, like & hit_ok & nb & self._umask(u2), u2

    # ------------------------------------------------------------- values

    def value(self, state: FState) -> tuple[float, float, int]:
        """(win, loss, action) of the optimal policy at a decision state."""
        return self._value(*state)

    def _value(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...]
    ) -> tuple[float, float, int]:
        if self.open_cards:  # every card is known: only the opponent's multiset matters
            key = (((a[0] * _OFF + o[0] + _POW[like.bit_length() - 1]) << 1) | stood) << 1
        else:
            key = ((((a[0] * _OFF + o[0]) << 1) | stood) << N_CLASSES) | like
        hit = self._values.get(key)
        if hit is not None:
            return hit
        total_w = 0
        for h in _BITS[like]:
            total_w += u[h]
        deck_n = sum(u) - 1
        if self._agent is not None:  # evaluate the given agent policy
            p = self._agent_hit_probability(a, o, stood, like, u) if deck_n > 0 else 0.0
            win = loss = 0.0
            if p < 1.0:
                s_win, s_loss = self._stand_value(a, o, stood, like, u, total_w)
                win, loss = (1.0 - p) * s_win, (1.0 - p) * s_loss
            if p > 0.0:
                h_win, h_loss = self._hit(a, o, stood, like, u, total_w, deck_n)
                win, loss = win + p * h_win, loss + p * h_loss
            result = (win, loss, HIT if p >= 0.5 else STAND)
            self._values[key] = result
            return result
        s_win, s_loss = self._stand_value(a, o, stood, like, u, total_w)
        result = (s_win, s_loss, STAND)
        if deck_n > 0:
            room = TARGET - a[1]  # a card of class c busts the agent iff c >= room
            p_bust = 0
            for c in range(max(room, 0), N_CLASSES):
                if u[c]:
                    p_bust += u[c] * (total_w - (like >> c & 1))
            # hitting wins at most when the next card does not bust: prune when that
            # bound cannot beat standing
            if 1.0 - 2.0 * p_bust / (deck_n * total_w) > s_win - s_loss + TIE_EPS:
                h_win, h_loss = self._hit(a, o, stood, like, u, total_w, deck_n)
                if h_win - h_loss > s_win - s_loss + TIE_EPS:
                    result = (h_win, h_loss, HIT)
        self._values[key] = result
        return result

    def _stand_value(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...], total_w: int
    ) -> tuple[float, float]:
        """(win, loss) of standing now."""
        if not stood:
            return self._stand(a, o, like, u)
        t_agent = _ftotal(a[1], a[2])
        win = loss = 0
        o_hard, o_ace = o[1], o[2]
        for h in _BITS[like]:
            t = _ftotal(o_hard + h + 1, o_ace or h == 0)
            if t_agent > t:
                win += u[h]
            elif t_agent < t:
                loss += u[h]
        return win / total_w, loss / total_w

    def _agent_hit_probability(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...]
    ) -> float:
        """P(hit) of the evaluated agent policy, from the observation it would see."""
        if self._agent_table is not None:
            return self._agent_table[a[0]] if a[1] <= TARGET else 0.0
        h = like.bit_length() - 1 if self.open_cards else 0
        key = (a[0], o[0], stood, h)
        p = self._agent_p.get(key)
        if p is None:
            if not self.open_cards:  # a placeholder for the face-down card (hidden anyway)
                h = (like & -like).bit_length() - 1
            obs = _obs_for(
                _classes_of(a[0]),
                (h, *_classes_of(o[0])),
                False,
                stood,
                sum(u) - 1,
                self.open_cards,
            )
            probs = self._agent.action_probs(obs)
            p = self._agent_p[key] = float(probs[1])
        return p

    def _hit(
        self,
        a: FHand,
        o: FHand,
        stood: bool,
        like: int,
        u: tuple[int, ...],
        total_w: int,
        deck_n: int,
    ) -> tuple[float, float]:
        """(win, loss) of hitting now and playing optimally afterwards."""
        value = self._value
        umask = self._umask(u)
        win = loss = 0.0
        deck_after = deck_n - 1
        a_code, a_hard, a_ace = a
        if not stood and deck_after > 0:
            ph, hit_ok, stand_ok = self._opp_row(o)
            s0 = 0.0
            prefix = [0.0] * N_CLASSES
            run = 0.0
            for h in _CLASSES:
                if like >> h & 1:
                    s0 += u[h] * (1.0 - ph[h])
                    run += u[h] * ph[h]
                prefix[h] = run
            hit_like = like & hit_ok
            # per opponent card d: the weight sums over h that keep it in (t0) or bust it,
            # the mask of h that keep it in, and its new visible hand
            rows = []
            if hit_like:
                o_code, o_hard, o_ace = o
                for d in _CLASSES:
                    k = 19 - o_hard - d  # the opponent stays in iff h <= k
                    if k >= 0:
                        kk = k if k < 9 else 9
                        t0 = prefix[kk]
                        nb = hit_like & ((1 << (kk + 1)) - 1)
                    else:
                        t0 = 0.0
                        nb = 0
                    md = ph[d] if hit_like >> d & 1 else 0.0
                    rows.append(
                        (d, k, t0, prefix[9] - t0, nb, md, d <= k,
                         (o_code + _POW[d], o_hard + d + 1, o_ace or d == 0))
                    )  # fmt: skip
        for c in _CLASSES:
            uc = u[c]
            if not uc:
                continue
            lc = like >> c & 1
            if a_hard + c + 1 > TARGET:  # the agent busts at once
                loss += uc * (total_w - lc)
                continue
            u1 = (*u[:c], uc - 1, *u[c + 1 :])
            umask1 = umask if uc > 1 else umask & ~(1 << c)
            a2 = (a_code + _POW[c], a_hard + c + 1, a_ace or c == 0)
            if stood or deck_after <= 0:  # (an opponent's hit from an empty deck is a stand)
                w = uc * (total_w - lc)
                if w > 0:
                    cw, cl, _ = value(a2, o, True, like & umask1, u1)
                    win += w * cw
                    loss += w * cl
                continue
            mc = ph[c] if lc else 0.0
            ws = uc * (s0 - (lc - mc))  # lc * (1 - ph[c])
            if ws > 0.0:
                cw, cl, _ = value(a2, o, True, like & stand_ok & umask1, u1)
                win += ws * cw
                loss += ws * cl
            for d, k, t, bust, nb, md, d_in, o2 in rows:
                ud = u1[d]
                if not ud:
                    continue
                if c <= k:
                    t -= mc
                else:
                    bust -= mc
                if d_in:
                    t -= md
                else:
                    bust -= md
                f = uc * ud / deck_after
                win += f * bust
                if t > 1e-12:
                    mask = nb & umask1 if ud > 1 else nb & umask1 & ~(1 << d)
                    u2 = (*u1[:d], ud - 1, *u1[d + 1 :])
                    cw, cl, _ = value(a2, o2, False, mask, u2)
                    win += f * t * cw
                    loss += f * t * cl
        scale = deck_n * total_w
        return win / scale, loss / scale

    def _stand(self, a: FHand, o: FHand, like: int, u: tuple[int, ...]) -> tuple[float, float]:
        """(win, loss) when the agent stands on ``a`` and the opponent (still in) plays out,
        averaged over the belief about the face-down card."""
        win = loss = 0.0
        total_w = 0
        a_key = a[0] * _OFF
        playout = self._playout
        deck_n = sum(u) - 1
        for h in _BITS[like]:
            uh = u[h]
            total_w += uh
            w, lo = playout(a_key, a, _fadd(o, h), _dec(u, h), deck_n)
            win += uh * w
            loss += uh * lo
        return win / total_w, loss / total_w

    def _playout(
        self, a_key: int, a: FHand, opp: FHand, deck: tuple[int, ...], deck_n: int
    ) -> tuple[float, float]:
        """(win, loss) for the agent standing on ``a`` while the opponent, holding ``opp``
        (every card), plays out from ``deck`` (``deck_n`` cards)."""
        key = a_key + opp[0]
        hit = self._playouts.get(key)
        if hit is not None:
            return hit
        p_hit = self._p_hit[opp[0]] if deck_n else 0.0
        win = loss = 0.0
        if p_hit < 1.0:
            t_agent = _ftotal(a[1], a[2])
            t_opp = _ftotal(opp[1], opp[2])
            if t_agent > t_opp:
                win = 1.0 - p_hit
            elif t_agent < t_opp:
                loss = 1.0 - p_hit
        if p_hit > 0.0:
            room = TARGET - opp[1]  # a card of class d busts the opponent iff d >= room
            f = p_hit / deck_n
            for d in _CLASSES:
                ud = deck[d]
                if not ud:
                    continue
                if d >= room:
                    win += f * ud
                else:
                    cw, cl = self._playout(a_key, a, _fadd(opp, d), _dec(deck, d), deck_n - 1)
                    win += f * ud * cw
                    loss += f * ud * cl
        result = (win, loss)
        self._playouts[key] = result
        return result

    # ------------------------------------------------------------- from the deal

    def initial_states(self) -> list[tuple[FState, float]]:
        """Every first decision state with its exact probability."""
        out: dict[Any, tuple[FState, float]] = {}
        for a1 in _CLASSES:
            for a2 in _CLASSES:
                for o2 in _CLASSES:
                    for h in _CLASSES if self.open_cards else [None]:
                        counts = list(CLASS_COUNTS)
                        p, left = 1.0, N_CARDS
                        for k in (a1, a2, o2) if h is None else (a1, h, a2, o2):
                            p *= counts[k] / left
                            counts[k] -= 1
                            left -= 1
                        if p <= 0.0:
                            continue
                        if h is not None:
                            counts[h] += 1  # the open face-down card stays "unseen"
                        u = tuple(counts)
                        like = self._umask(u) if h is None else 1 << h
                        state: FState = (_fhand((a1, a2)), _fhand((o2,)), False, like, u)
                        key = (state[0][0], state[1][0], like)
                        prev = out.get(key)
                        out[key] = (state, p + (prev[1] if prev else 0.0))
        return list(out.values())

    def solve(self) -> tuple[float, float]:
        """(win, loss) of the optimal policy averaged exactly over every deal."""
        win = loss = 0.0
        for state, p in self.initial_states():
            w, lo, _ = self.value(state)
            win += p * w
            loss += p * lo
        return win, loss

    # ------------------------------------------------------------- from an observation

    def state_from_observation(self, obs: dict[str, Any]) -> FState:
        """Replay the rounds an observation implies with the tree's own transitions."""
        a_seq, rest, h, opp_stood, rounds, opp_hits = _read_observation(obs, self.open_cards)
        u_list = list(CLASS_COUNTS)
        for k in (*a_seq[:2], rest[0]):
            u_list[k] -= 1
        u = tuple(u_list)
        like = self._umask(u) if h is None else 1 << h
        state: FState = (_fhand(a_seq[:2]), _fhand(rest[:1]), False, like, u)
        for r in range(1, rounds + 1):
            hits = r <= opp_hits
            state = self.child(state, a_seq[1 + r], hits, rest[r] if hits else None)
            if not state[3]:
                raise InvalidArgument(
                    f"observation has probability 0 under the opponent model: {obs!r}"
                )
        if opp_stood != state[2]:
            raise InvalidArgument(f"observation is not reachable under the round order: {obs!r}")
        return state

    def action(self, obs: dict[str, Any]) -> int:
        """The optimal action in an observation (stand once the agent has stood)."""
        if obs["stood"][0]:
            return STAND
        return self.value(self.state_from_observation(obs))[2]


def _read_observation(
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


# ----------------------------------------------------------------------------- reference solver

#: a decision state: agent hand, opponent's visible hand (every card when open), whether
#: the opponent has stood, and the likelihood over the face-down card (None when open)
State = tuple[Hand, Hand, bool, tuple[float, ...] | None]


class ReferenceSolver:
    """Expectimax best response to any opponent with ``action_probs``, on ordered card
    sequences with a float likelihood; exact for every such opponent, and the reference
    that :class:`FastSolver` is tested against."""

    def __init__(self, opponent: Any, open_cards: bool = False) -> None:
        self.open_cards = bool(open_cards)
        self.model = OpponentModel(opponent, self.open_cards)
        self.own_only = self.model.own_only
        self._values: dict[Any, tuple[float, float, int]] = {}
        self._playouts: dict[Any, tuple[float, float]] = {}

    @property
    def n_states(self) -> int:
        """Decision states evaluated so far."""
        return len(self._values)

    # ------------------------------------------------------------- helpers

    def _key(self, state: State) -> Any:
        a, o, stood, like = state
        if self.own_only:
            return (a[1], o[1], stood, like)
        return (a[0], o[0], stood, like)

    @staticmethod
    def _unseen(a: Hand, o: Hand) -> list[int]:
        ac, oc = a[1], o[1]
        return [CLASS_COUNTS[k] - ac[k] - oc[k] for k in _CLASSES]

    def _belief(self, like: tuple[float, ...] | None, unseen: list[int]) -> list[tuple[Any, float]]:
        """(h, weight) pairs; h is None when every card is open."""
        if like is None:
            return [(None, 1.0)]
        return [(h, unseen[h] * like[h]) for h in _CLASSES if unseen[h] and like[h]]

    @staticmethod
    def _normalise(like: list[float], unseen: list[int]) -> tuple[float, ...] | None:
        like = [v if unseen[h] else 0.0 for h, v in enumerate(like)]
        top = max(like)
        if top <= 0.0:
            return None  # unreachable
        return tuple(v / top for v in like)

    def _opp_hand(self, o: Hand, h: int | None) -> Hand:
        if h is None:
            return o
        return ((h, *o[0]), (*o[1][:h], o[1][h] + 1, *o[1][h + 1 :]), o[2] + h + 1)

    # ------------------------------------------------------------- playout (agent stood)

    def _playout(self, a: Hand, opp: Hand) -> tuple[float, float]:
        """(win, loss) for the agent, standing on ``a``, while the opponent (full hand
        ``opp``, still in) plays out from the deck of the cards neither holds."""
        key = (a[1], opp[1]) if self.own_only else (a[0], opp[0])
        hit = self._playouts.get(key)
        if hit is not None:
            return hit
        deck = self._unseen(a, opp)
        n = sum(deck)
        p_hit = self.model.p_hit(opp, a, True, n) if n else 0.0
        t_agent = _total(a[2], a[1])
        win, loss = _cmp(t_agent, _total(opp[2], opp[1]))
        win *= 1.0 - p_hit
        loss *= 1.0 - p_hit
        if p_hit > 0.0:
            for d in _CLASSES:
                if not deck[d]:
                    continue
                p = p_hit * deck[d] / n
                if opp[2] + d + 1 > TARGET:
                    win += p
                else:
                    w, lo = self._playout(a, _add(opp, d))
                    win += p * w
                    loss += p * lo
        self._playouts[key] = (win, loss)
        return win, loss

    # ------------------------------------------------------------- agent decisions

    def value(self, state: State) -> tuple[float, float, int]:
        """(win, loss, action) of the optimal policy at a decision state."""
        key = self._key(state)
        hit = self._values.get(key)
        if hit is not None:
            return hit
        a, o, stood, like = state
        unseen = self._unseen(a, o)
        belief = self._belief(like, unseen)
        total_w = sum(w for _, w in belief)
        t_agent = _total(a[2], a[1])

        # stand
        s_win = s_loss = 0.0
        for h, w in belief:
            opp = self._opp_hand(o, h)
            if stood:
                sw, sl = _cmp(t_agent, _total(opp[2], opp[1]))
            else:
                sw, sl = self._playout(a, opp)
            s_win += w * sw
            s_loss += w * sl
        s_win /= total_w
        s_loss /= total_w
        result = (s_win, s_loss, STAND)

        n_unseen = sum(unseen)
        deck_n = n_unseen - (0 if like is None else 1)
        if deck_n > 0:  # a hit from an empty deck is a stand
            # upper bound of hitting: every card that does not bust the agent wins
            p_bust = 0.0
            for h, w in belief:
                for c in _CLASSES:
                    if a[2] + c + 1 > TARGET:
                        left = unseen[c] - (c == h)
                        p_bust += w * left / deck_n
            p_bust /= total_w
            if 1.0 - 2.0 * p_bust > s_win - s_loss + TIE_EPS:
                h_win, h_loss = self._hit_value(state, unseen, belief, total_w, deck_n)
                if h_win - h_loss > s_win - s_loss + TIE_EPS:
                    result = (h_win, h_loss, HIT)
        self._values[key] = result
        return result

    def _hit_value(
        self,
        state: State,
        unseen: list[int],
        belief: list[tuple[Any, float]],
        total_w: float,
        deck_n: int,
    ) -> tuple[float, float]:
        a, _o, _stood, _like = state
        win = loss = 0.0
        for c in _CLASSES:
            if not unseen[c]:
                continue
            if a[2] + c + 1 > TARGET:  # the agent busts at once
                for h, w in belief:
                    loss += w * (unseen[c] - (c == h)) / deck_n
                continue
            for child, weight, w_win, w_loss in self._children(state, c, unseen, belief, deck_n):
                win += w_win
                loss += w_loss
                if child is not None and weight > 0.0:
                    cw, cl, _ = self.value(child)
                    win += weight * cw
                    loss += weight * cl
        return win / total_w, loss / total_w

    def _children(
        self,
        state: State,
        c: int,
        unseen: list[int],
        belief: list[tuple[Any, float]],
        deck_n: int,
    ) -> list[tuple[State | None, float, float, float]]:
        """Branches after the agent draws a (non-busting) card of class ``c``.

        Returns ``(child, weight, win_weight, loss_weight)`` rows with unnormalised
        weights (summing with the belief weights); ``child`` is None for a row that only
        carries a terminal weight.
        """
        a, o, stood, like = state
        a2 = _add(a, c)
        rows: list[tuple[State | None, float, float, float]] = []
        if stood:  # the opponent has stood: nothing else happens this round
            weight = sum(w * (unseen[c] - (c == h)) / deck_n for h, w in belief)
            rows.append(((a2, o, True, like), weight, 0.0, 0.0))
            return rows
        deck_after = deck_n - 1
        u1 = list(unseen)
        u1[c] -= 1
        # per face-down card: P(draw c), P(opponent hits)
        stand_w = 0.0
        stand_like = [0.0] * N_CLASSES
        hit_rows: list[tuple[Any, float, float]] = []
        for h, w in belief:
            pc = w * (unseen[c] - (c == h)) / deck_n
            if pc <= 0.0:
                continue
            opp = self._opp_hand(o, h)
            p_hit = self.model.p_hit(opp, a2, False, deck_after) if deck_after else 0.0
            stand_w += pc * (1.0 - p_hit)
            if h is not None:
                stand_like[h] = like[h] * (1.0 - p_hit)  # type: ignore[index]
            if p_hit > 0.0:
                hit_rows.append((h, pc * p_hit, p_hit))
        if stand_w > 0.0:
            child_like = None if like is None else self._normalise(stand_like, u1)
            rows.append(((a2, o, True, child_like), stand_w, 0.0, 0.0))
        if not hit_rows:
            return rows
        for d in _CLASSES:
            if not u1[d]:
                continue
            u2 = list(u1)
            u2[d] -= 1
            weight = bust_w = 0.0
            child_like_raw = [0.0] * N_CLASSES
            for h, pw, p_hit in hit_rows:
                left = u1[d] - (d == h)
                if left <= 0:
                    continue
                pd = pw * left / deck_after
                hard = o[2] + d + 1 + (0 if h is None else h + 1)
                if hard > TARGET:
                    bust_w += pd
                else:
                    weight += pd
                    if h is not None:
                        child_like_raw[h] = like[h] * p_hit  # type: ignore[index]
            if weight > 0.0:
                child_like = None if like is None else self._normalise(child_like_raw, u2)
                rows.append(((a2, _add(o, d), False, child_like), weight, bust_w, 0.0))
            elif bust_w > 0.0:
                rows.append((None, 0.0, bust_w, 0.0))
        return rows

    # ------------------------------------------------------------- from the deal

    def initial_states(self) -> list[tuple[State, float]]:
        """Every first decision state with its exact probability."""
        out: dict[Any, tuple[State, float]] = {}
        full = list(CLASS_COUNTS)
        n = N_CARDS

        def draw(counts: list[int], k: int, left: int) -> float:
            p = counts[k] / left
            counts[k] -= 1
            return p

        for a1 in _CLASSES:
            for o1 in [None] if not self.open_cards else list(_CLASSES):
                for a2 in _CLASSES:
                    for o2 in _CLASSES:
                        counts = list(full)
                        p = draw(counts, a1, n)
                        left = n - 1
                        if o1 is not None:
                            if not counts[o1]:
                                continue
                            p *= draw(counts, o1, left)
                            left -= 1
                        if not counts[a2]:
                            continue
                        p *= draw(counts, a2, left)
                        left -= 1
                        if not counts[o2]:
                            continue
                        p *= draw(counts, o2, left)
                        a = _hand((a1, a2))
                        if o1 is None:
                            like: tuple[float, ...] | None = self._normalise(
                                [1.0] * N_CLASSES, counts
                            )
                            o = _hand((o2,))
                        else:
                            like = None
                            o = _hand((o1, o2))
                        state: State = (a, o, False, like)
                        key = self._key(state)
                        prev = out.get(key)
                        out[key] = (state, p + (prev[1] if prev else 0.0))
        return list(out.values())

    def solve(self) -> tuple[float, float]:
        """(win, loss) of the optimal policy averaged exactly over every deal."""
        win = loss = 0.0
        for state, p in self.initial_states():
            w, lo, _ = self.value(state)
            win += p * w
            loss += p * lo
        return win, loss

    # ------------------------------------------------------------- from an observation

    def state_from_observation(self, obs: dict[str, Any]) -> State:
        """Replay the rounds an observation implies with the tree's own transitions."""
        a_seq, rest, h, opp_stood, rounds, opp_hits = _read_observation(obs, self.open_cards)
        o_seq = rest if h is None else [h, *rest]
        first_o = 1 if h is None else 2
        a = _hand(a_seq[:2])
        o = _hand(o_seq[:first_o])
        like = self._normalise([1.0] * N_CLASSES, self._unseen(a, o)) if h is None else None
        state: State = (a, o, False, like)
        for r in range(1, rounds + 1):
            a_st, o_st, stood, like_st = state
            unseen = self._unseen(a_st, o_st)
            belief = self._belief(like_st, unseen)
            deck_n = sum(unseen) - (1 if h is None else 0)
            rows = self._children(state, a_seq[1 + r], unseen, belief, deck_n)
            if stood or r > opp_hits:
                want: tuple[Any, bool] = (o_st[0], True)
            else:
                want = ((*o_st[0], o_seq[first_o + r - 1]), False)
            match = [
                row[0] for row in rows if row[0] is not None and (row[0][1][0], row[0][2]) == want
            ]
            if not match:
                raise InvalidArgument(
                    f"observation has probability 0 under the opponent model: {obs!r}"
                )
            state = match[0]
        if opp_stood != state[2]:
            raise InvalidArgument(f"observation is not reachable under the round order: {obs!r}")
        return state

    def action(self, obs: dict[str, Any]) -> int:
        """The optimal action in an observation (stand once the agent has stood)."""
        if obs["stood"][0]:
            return STAND
        return self.value(self.state_from_observation(obs))[2]


# ----------------------------------------------------------------------------- API

_SOLVERS: dict[tuple[str, bool], FastSolver | ReferenceSolver] = {}


def make_solver(opponent: Any, open_cards: bool = False) -> FastSolver | ReferenceSolver:
    """A new solver for an opponent policy: :class:`FastSolver` when it applies (own cards
    only, hit probabilities 0/1 or constant), else :class:`ReferenceSolver`."""
    table = fast_path_table(opponent, bool(open_cards))
    if table is not None:
        return FastSolver(opponent, open_cards, table)
    return ReferenceSolver(opponent, open_cards)


def solver_for(opponent: str | Any = "dealer", open_cards: bool = False) -> Any:
    """The shared solver for a built-in opponent name, or a new one for a policy object."""
    if isinstance(opponent, str):
        if opponent not in OPPONENTS:
            raise unknown_name("opponent", opponent, list(OPPONENTS))
        key = (opponent, bool(open_cards))
        if key not in _SOLVERS:
            _SOLVERS[key] = make_solver(OPPONENTS[opponent](), open_cards)
        return _SOLVERS[key]
    return make_solver(opponent, open_cards)


_SOLUTIONS: dict[tuple[str, str, bool], Solution] = {}


def _name(policy: str | Any) -> str:
    return (
        policy if isinstance(policy, str) else getattr(policy, "name", "") or type(policy).__name__
    )


def _run(solver: Any, agent: str, opponent: str, open_cards: bool) -> Solution:
    start = time.perf_counter()
    win, loss = solver.solve()
    seconds = time.perf_counter() - start
    logger.info(
        "21 points, %s vs %s (open_cards=%s): %d states in %.2f s",
        agent,
        opponent,
        open_cards,
        solver.n_states,
        seconds,
    )
    return Solution(
        win=win,
        loss=loss,
        draw=1.0 - win - loss,
        expected_reward=win - loss,
        opponent=opponent,
        open_cards=bool(open_cards),
        agent=agent,
        states=solver.n_states,
        seconds=seconds,
    )


def solve(opponent: str | Any = "dealer", open_cards: bool = False) -> Solution:
    """Exact win / loss / draw probabilities and expected reward of the best response.

    Averaged exactly over every deal of the 26-card deck (no sampling). ``opponent`` is a
    built-in name (``"dealer"``, ``"random"``) or a policy with ``action_probs(obs)``.
    Results for built-in opponents are cached for the process (and the solver's table
    is shared with ``OptimalPolicy`` / ``ld_agents.make("optimal", ...)``).

    >>> solve("dealer").expected_reward  # doctest: +SKIP
    0.0019994240284...
    """
    cache_key = ("optimal", opponent, bool(open_cards)) if isinstance(opponent, str) else None
    if cache_key is not None and cache_key in _SOLUTIONS:
        return _SOLUTIONS[cache_key]
    solution = _run(solver_for(opponent, open_cards), "optimal", _name(opponent), open_cards)
    if cache_key is not None:
        _SOLUTIONS[cache_key] = solution
    return solution


def evaluate(
    agent: str | Any, opponent: str | Any = "dealer", open_cards: bool = False
) -> Solution:
    """Exact win / loss / draw probabilities of a fixed agent policy against an opponent.

    ``agent`` is a registered 21-point policy name (``"dealer"``, ``"random"``,
    ``"scripted"``) or a policy with ``action_probs(obs)`` whose probabilities depend on
    card values as multisets (the agent's cards in any order), as every built-in one's do.
    The opponent must be one :class:`FastSolver` handles (``dealer``, ``random``, or an
    own-cards-only policy with 0/1 or constant hit probabilities).
    """
    agent_name = _name(agent)
    if isinstance(agent, str):
        from ld_agents.base import make

        agent = make(agent, "TwentyOne-v0")
    if isinstance(opponent, str) and opponent not in OPPONENTS:
        raise unknown_name("opponent", opponent, list(OPPONENTS))
    opp = OPPONENTS[opponent]() if isinstance(opponent, str) else opponent
    table = fast_path_table(opp, bool(open_cards))
    if table is None:
        raise InvalidArgument(
            f"exact evaluation needs an own-cards-only opponent with 0/1 or constant hit "
            f"probabilities (dealer, random); got {_name(opponent)}"
        )
    solver = FastSolver(opp, open_cards, table, agent=agent)
    return _run(solver, agent_name, _name(opponent), open_cards)


class OptimalPolicy(Policy):
    """The exact best response to a known opponent policy, acting from the observation.

    ``opponent`` is ``"dealer"``, ``"random"`` (their solvers are shared per process) or
    a policy with ``action_probs(obs)``; ``open_cards`` must match the env's. The first
    decision of a new deal solves the subtree below it (milliseconds); :meth:`solution`
    solves every deal at once (the whole table, a few seconds for the built-ins) and
    returns the exact figures. Deterministic: ties go to standing.
    """

    def __init__(self, opponent: str | Any = "dealer", open_cards: bool = False) -> None:
        super().__init__()
        self.opponent = opponent
        self.open_cards = bool(open_cards)
        self.solver = solver_for(opponent, open_cards)

    def act(self, obs: dict[str, Any]) -> int:
        return self.solver.action(obs)

    def solution(self) -> Solution:
        """Exact win / loss / draw / expected reward of this policy from a fresh deal."""
        if isinstance(self.opponent, str):
            return solve(self.opponent, self.open_cards)
        return _run(self.solver, "optimal", _name(self.opponent), self.open_cards)

    def __getstate__(self) -> dict[str, Any]:
        # a built-in opponent's table is rebuilt (or shared) on the other side, not copied
        state = dict(self.__dict__)
        if isinstance(self.opponent, str):
            state["solver"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.solver is None:
            self.solver = solver_for(self.opponent, self.open_cards)


@register("optimal", "twentyone")
def _optimal(
    env_id: str, opponent: str | Any = "dealer", open_cards: bool = False, **_: Any
) -> OptimalPolicy:
    return OptimalPolicy(opponent=opponent, open_cards=open_cards)
