"""The 21-points vocabulary of function bases: :data:`TWENTYONE` and its card arithmetic.

The state (``my_cards``, ``opponent_cards``, ``opponent_hidden``, ``opponent_stood``,
``deck``), the value types ``hand``, ``hand_risk``, ``summary`` and ``decision``, the
``right_when`` predicates (what the opponent shows, whether it stood), the properties a
stage or function may claim (hand totals, exact bust and opponent distributions, decision
rules), and how ``"hit"``/``"stand"`` becomes an env action. Card values and totals come
from :mod:`ld_envs.twenty_one` (never a copy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ld_agents.ld.games.spec import (
    COMMON_PREDICATES,
    GameSpec,
    Predicate,
    Property,
    State,
    ValueType,
    is_int,
)
from ld_envs import twenty_one as to

#: the opponent "shows a weak card" when its visible cards total at most this
WEAK_UPCARD_MAX = 6
DECISIONS = ("stand", "hit")


def _rank_ids(ranks: Sequence[str]) -> list[int]:
    return [to.RANKS.index(r) for r in ranks]


def rank_value(rank: str) -> int:
    """Hard value of a rank name: A 1, 2-10 pips, J/Q/K 10."""
    return to.card_value(to.RANKS.index(rank))


def best_total(ranks: Sequence[str]) -> int:
    """A hand's best total (``ld_envs.twenty_one.hand_value``) from rank names."""
    return to.hand_value(_rank_ids(ranks))


def soft_hand(ranks: Sequence[str]) -> bool:
    """Whether an ace counts 11 in the hand's best total (``ld_envs.twenty_one.is_soft``)."""
    return to.is_soft(_rank_ids(ranks))


def unseen_counts(state: State) -> dict[str, int]:
    """Per rank, the cards the agent has not seen (the deck and the face-down card)."""
    counts = dict(state["deck"])
    for r in [*state["my_cards"], *state["opponent_cards"]]:
        counts[r] -= 1
    return counts


def bust_probability(total: int, soft: bool, counts: Mapping[str, int]) -> float:
    """P(one card drawn from ``counts`` takes a hand of this total over 21)."""
    n = sum(counts.values())
    if soft or n == 0:
        return 0.0
    return sum(k for r, k in counts.items() if total + rank_value(r) > to.TARGET) / n


def opponent_distribution(state: State, model: str) -> list[list[float]]:
    """The opponent's possible totals as ``[[total, probability], ...]`` (ascending).

    The face-down card is any unseen card, each equally likely (cards are exchangeable).
    Totals over 21 are impossible (it would have lost). ``model="dealer"`` also uses its
    rule: a dealer that stood holds 17 or more (if no card fits, the rule is dropped).
    """
    visible = list(state["opponent_cards"])
    if not state.get("opponent_hidden"):
        return [[best_total(visible), 1.0]]
    counts = unseen_counts(state)
    weights: dict[int, float] = {}
    for rule in (True, False):
        for r, k in counts.items():
            t = best_total([r, *visible])
            if k <= 0 or t > to.TARGET:
                continue
            if rule and model == "dealer" and state["opponent_stood"] and t < to.DEALER_STANDS_AT:
                continue
            weights[t] = weights.get(t, 0.0) + k
        if weights:
            break
    z = sum(weights.values())
    return [[t, w / z] for t, w in sorted(weights.items())]


def _check_twentyone_state(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"a 21-points state is a dict, got {type(state).__name__}"
    need = {"my_cards", "opponent_cards", "opponent_hidden", "opponent_stood", "deck"}
    missing = need - set(state)
    if missing:
        return f"a 21-points state needs keys {sorted(need)}; missing {sorted(missing)}"
    for key in ("my_cards", "opponent_cards"):
        cards = state[key]
        if not isinstance(cards, list) or not all(c in to.RANKS for c in cards):
            return f"state[{key!r}] must be a list of ranks {list(to.RANKS)}, got {cards!r}"
    deck = state["deck"]
    if not isinstance(deck, dict) or set(deck) != set(to.RANKS):
        return f"state['deck'] must map every rank {list(to.RANKS)} to its count"
    if state["opponent_hidden"] not in (0, 1):
        return "state['opponent_hidden'] must be 0 or 1"
    if not isinstance(state["opponent_stood"], bool):
        return "state['opponent_stood'] must be true or false"
    seen = [*state["my_cards"], *state["opponent_cards"]]
    for r in to.RANKS:
        if seen.count(r) > deck[r]:
            return f"more {r} cards in the hands than the deck holds"
    return None


FULL_DECK: dict[str, int] = {r: len(to.SUITS) for r in to.RANKS}


def sample_twentyone_state(rng: np.random.Generator) -> State:
    """A random decision point: a shuffled 26-card deck, the agent with 2-5 cards (not
    bust), the opponent with 1-3 visible cards (not bust), stood or not; the face-down
    card hidden 90% of the time (open cards otherwise)."""
    while True:
        deck = [r for r in to.RANKS for _ in to.SUITS]
        order = [deck[i] for i in rng.permutation(len(deck))]
        mine, opp = [order.pop(), order.pop()], [order.pop(), order.pop()]
        for _ in range(int(rng.integers(0, 4))):
            if best_total(mine) >= 19:
                break
            mine.append(order.pop())
        for _ in range(int(rng.integers(0, 3))):
            if best_total(opp) >= 17:
                break
            opp.append(order.pop())
        stood = (best_total(opp) >= 17 and rng.random() < 0.8) or rng.random() < 0.1
        if best_total(mine) > to.TARGET or best_total(opp) > to.TARGET:
            continue
        hidden = 1 if rng.random() < 0.9 else 0
        return {
            "my_cards": mine,
            "opponent_cards": opp[hidden:],
            "opponent_hidden": hidden,
            "opponent_stood": bool(stood),
            "deck": dict(FULL_DECK),
        }


def twentyone_state_from_obs(obs: Mapping[str, Any], **_: Any) -> State:
    """The function-base state of a 21-points observation (the agent's side)."""
    own = to.decode_hand(np.asarray(obs["own"]).tolist())
    codes = np.asarray(obs["opponent"]).tolist()
    hidden = 1 if codes and codes[0] == to.HIDDEN else 0
    return {
        "my_cards": [to.RANKS[to.rank_of(c)] for c in own],
        "opponent_cards": [to.RANKS[to.rank_of(c)] for c in to.decode_hand(codes)],
        "opponent_hidden": hidden,
        "opponent_stood": bool(np.asarray(obs["stood"])[1]),
        "deck": dict(FULL_DECK),
    }


def _check_hand(value: Any, state: State, keys: tuple[str, ...] = ("total", "soft")) -> str | None:
    if not isinstance(value, dict):
        return f"expected a dict with keys {list(keys)}, got {type(value).__name__}"
    missing = [k for k in keys if k not in value]
    if missing:
        return f"missing key(s) {missing}"
    if not is_int(value["total"]) or not 0 <= value["total"] <= 40:
        return f"'total' must be an int in [0, 40], got {value['total']!r}"
    if not isinstance(value["soft"], bool):
        return f"'soft' must be true or false, got {value['soft']!r}"
    if "p_bust" in keys:
        p = value["p_bust"]
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            return f"'p_bust' must be a probability in [0, 1], got {p!r}"
    if "opponent" in keys:
        dist = value["opponent"]
        if not isinstance(dist, list) or not dist:
            return "'opponent' must be a non-empty list of [total, probability] pairs"
        for pair in dist:
            ok = (
                isinstance(pair, list)
                and len(pair) == 2
                and is_int(pair[0])
                and isinstance(pair[1], (int, float))
                and not isinstance(pair[1], bool)
                and 0.0 <= pair[1] <= 1.0
            )
            if not ok:
                return f"'opponent' holds {pair!r}, not a [total, probability] pair"
        if abs(sum(p for _, p in dist) - 1.0) > 1e-6:
            return f"'opponent' probabilities sum to {sum(p for _, p in dist):.6f}, not 1"
    return None


def _ref_hand(state: State) -> dict[str, Any]:
    cards = state["my_cards"]
    return {"total": best_total(cards), "soft": soft_hand(cards)}


def _ref_risk(state: State) -> dict[str, Any]:
    hand = _ref_hand(state)
    return {**hand, "p_bust": bust_probability(hand["total"], hand["soft"], unseen_counts(state))}


def _ref_summary(state: State) -> dict[str, Any]:
    return {**_ref_risk(state), "opponent": opponent_distribution(state, "dealer")}


def _prop_hand_total(state: State, prev: Any, out: Any, aces: str) -> str | None:
    cards = state["my_cards"]
    hard = sum(rank_value(r) for r in cards)
    n_aces = cards.count("A")
    if aces == "best":
        want = _ref_hand(state)
    elif aces == "one":
        want = {"total": hard, "soft": False}
    else:
        want = {"total": hard + 10 * n_aces, "soft": n_aces > 0}
    got = {"total": out.get("total"), "soft": out.get("soft")}
    if got != want:
        return f"cards {cards} with aces counted as {aces}: expected {want}, got {got}"
    return None


def _prop_keeps_input(state: State, prev: Any, out: Any) -> str | None:
    changed = [k for k in prev if k not in out or out[k] != prev[k]]
    if changed:
        return f"the input's key(s) {changed} were dropped or changed"
    return None


def _prop_bust(state: State, prev: Any, out: Any, pool: str) -> str | None:
    counts = unseen_counts(state) if pool == "unseen" else dict(state["deck"])
    want = bust_probability(prev["total"], prev["soft"], counts)
    if not math.isclose(out["p_bust"], want, abs_tol=1e-9):
        return (
            f"total {prev['total']} (soft={prev['soft']}), {pool} cards: bust probability "
            f"{want:.6f} expected, got {out['p_bust']!r}"
        )
    return None


def _prop_opponent(state: State, prev: Any, out: Any, model: str) -> str | None:
    want = opponent_distribution(state, model)
    got = out["opponent"]
    ok = len(got) == len(want) and all(
        g[0] == w[0] and math.isclose(g[1], w[1], abs_tol=1e-9)
        for g, w in zip(got, want, strict=True)
    )
    if not ok:
        return f"opponent totals ({model} model) {want} expected, got {got}"
    return None


def _prop_hits_at_or_below(state: State, prev: Any, out: Any, total: int) -> str | None:
    if prev["total"] <= total and out != "hit":
        return f"total {prev['total']} <= {total}: 'hit' expected, got {out!r}"
    return None


def _prop_stands_at_or_above(state: State, prev: Any, out: Any, total: int) -> str | None:
    if prev["total"] >= total and out != "stand":
        return f"total {prev['total']} >= {total}: 'stand' expected, got {out!r}"
    return None


def _prop_sure_win(state: State, prev: Any, out: Any) -> str | None:
    if all(prev["total"] > t for t, _ in prev["opponent"]) and out != "stand":
        return f"total {prev['total']} beats every opponent total: 'stand' expected, got {out!r}"
    return None


def _visible_total(state: State) -> int:
    return best_total(state["opponent_cards"])


TWENTYONE = GameSpec(
    name="twentyone",
    state_description=(
        "{'my_cards': [rank, ...] (ranks 'A', '2'..'10', 'J', 'Q', 'K', in the order "
        "received), 'opponent_cards': [rank, ...] (the opponent's visible cards in order; "
        "its face-down first card is not listed), 'opponent_hidden': 1 if its first card "
        "is face down else 0, 'opponent_stood': bool, 'deck': {rank: count} (the full "
        "deck's public make-up: 2 of each rank)}"
    ),
    check_state=_check_twentyone_state,
    sample_state=sample_twentyone_state,
    types={
        "none": ValueType(
            "none",
            "nothing (the first stage)",
            lambda v, s: None if v is None else "expected null",
            lambda s, r: None,
        ),
        "hand": ValueType(
            "hand",
            "{'total': int, 'soft': bool}: my hand's total and whether an ace counts 11",
            _check_hand,
            lambda s, r: _ref_hand(s),
        ),
        "hand_risk": ValueType(
            "hand_risk",
            "the hand dict plus 'p_bust': the probability that one more card busts me",
            lambda v, s: _check_hand(v, s, ("total", "soft", "p_bust")),
            lambda s, r: _ref_risk(s),
        ),
        "summary": ValueType(
            "summary",
            "the hand_risk dict plus 'opponent': [[total, probability], ...], the "
            "opponent's possible totals",
            lambda v, s: _check_hand(v, s, ("total", "soft", "p_bust", "opponent")),
            lambda s, r: _ref_summary(s),
        ),
        "decision": ValueType(
            "decision",
            "'hit' or 'stand'",
            lambda v, s: None if v in DECISIONS else f"expected 'hit' or 'stand', got {v!r}",
            lambda s, r: "stand",
        ),
    },
    predicates={
        **COMMON_PREDICATES,
        "opponent_stood": Predicate(
            "opponent_stood", "the opponent has stood", lambda s, p: bool(s["opponent_stood"])
        ),
        "opponent_shows_strong": Predicate(
            "opponent_shows_strong",
            f"the opponent has not stood and its visible cards total more than {WEAK_UPCARD_MAX}",
            lambda s, p: not s["opponent_stood"] and _visible_total(s) > WEAK_UPCARD_MAX,
        ),
        "opponent_shows_weak": Predicate(
            "opponent_shows_weak",
            f"the opponent has not stood and its visible cards total {WEAK_UPCARD_MAX} or less",
            lambda s, p: not s["opponent_stood"] and _visible_total(s) <= WEAK_UPCARD_MAX,
        ),
    },
    properties={
        "hand_total": Property(
            "hand_total",
            "total and soft flag of my cards, aces counted as `aces` (best: 11 unless that "
            "busts; one: always 1; eleven: always 11)",
            _prop_hand_total,
            {"aces": ("best", "one", "eleven")},
        ),
        "keeps_input": Property(
            "keeps_input",
            "the output dict keeps every key of the input unchanged",
            _prop_keeps_input,
        ),
        "bust_probability": Property(
            "bust_probability",
            "'p_bust' is the exact share of cards in `pool` (unseen: the deck minus the "
            "cards I see; full_deck: all 26) that would bust the input total",
            _prop_bust,
            {"pool": ("unseen", "full_deck")},
        ),
        "opponent_distribution": Property(
            "opponent_distribution",
            "'opponent' is the exact distribution of the opponent's total (`model` dealer: "
            "a stood opponent holds 17+; any_hidden: only 'not bust')",
            _prop_opponent,
            {"model": ("dealer", "any_hidden")},
        ),
        "hits_at_or_below": Property(
            "hits_at_or_below",
            "'hit' whenever the input total is <= `total`",
            _prop_hits_at_or_below,
            {"total": None},
        ),
        "stands_at_or_above": Property(
            "stands_at_or_above",
            "'stand' whenever the input total is >= `total`",
            _prop_stands_at_or_above,
            {"total": None},
        ),
        "stands_when_sure_win": Property(
            "stands_when_sure_win",
            "'stand' whenever the input total beats every possible opponent total",
            _prop_sure_win,
        ),
    },
    decision_type="decision",
    decision_to_action=lambda d, s: to.HIT if d == "hit" else to.STAND if d == "stand" else None,
    state_from_obs=twentyone_state_from_obs,
    fallback_action=lambda s: to.STAND,
)
