"""Per-game vocabularies that give a function base its meaning.

A function base (``ld_agents.ld.base``) is data a teacher writes; this module is
the trusted project code that the loader, the validator, the ground-truth labeller and
the LD policy read it with. For each game a :class:`GameSpec` holds:

- the **state** the functions receive (a JSON dict, built from an env observation by
  :meth:`GameSpec.state_from_obs`) and a checker for it;
- the **value types** a stage may consume or produce (``"cell_lists"``, ``"hand"``...),
  each with a checker and a sampler of realistic values (used to test a stage's
  functions on inputs that do not depend on the base's other functions);
- the **predicates** a manual entry's ``right_when`` may name: the machine-readable form
  of "when to call it", from which the ground-truth labeller picks the right function;
- the **properties** a stage or a function may claim (``cells_within_distance``,
  ``bust_probability``...), checked on sampled inputs by the validator;
- how the last stage's output becomes an env action (:meth:`GameSpec.decision_to_action`).

Everything here calls the rule functions of ``ld_envs.pursuit`` / ``ld_envs.twenty_one``
(never a copy). To support a new predicate or property, add it to the game's table below
and document it in ``docs/function_bases.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ld_envs import pursuit as pu
from ld_envs import twenty_one as to
from ld_envs.errors import InvalidArgument, unknown_name

logger = logging.getLogger(__name__)

State = dict[str, Any]
#: a check returns ``None`` when it holds, else what is wrong (one sentence)
Check = Callable[..., "str | None"]


@dataclass(frozen=True)
class ValueType:
    """A kind of value passed between stages."""

    name: str
    description: str
    check: Callable[[Any, State], str | None]
    sample: Callable[[State, np.random.Generator], Any]


@dataclass(frozen=True)
class Predicate:
    """A state condition a manual entry's ``right_when`` may name."""

    name: str
    description: str
    test: Callable[[State, Any], bool]


@dataclass(frozen=True)
class Property:
    """A claim a stage or function makes about its output, checkable on one call.

    ``params`` maps each parameter name to the values it may take (``None`` = any int).
    ``check(state, prev, out, **params)`` returns ``None`` or what is wrong.
    """

    name: str
    description: str
    check: Callable[..., str | None]
    params: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class GameSpec:
    """Everything the project knows about one game's function bases."""

    name: str
    state_description: str
    check_state: Callable[[Any], str | None]
    sample_state: Callable[[np.random.Generator], State]
    types: Mapping[str, ValueType]
    predicates: Mapping[str, Predicate]
    properties: Mapping[str, Property]
    #: the type the last stage must produce
    decision_type: str
    #: turns the last stage's output into an env action (``None`` entries / unreadable
    #: decisions become the env's illegal choice where it has one)
    decision_to_action: Callable[[Any, State], Any]
    #: builds the state from an env observation (keyword context, e.g. ``size``)
    state_from_obs: Callable[..., State]
    #: the action used when a stage fails and the game has no illegal choice
    fallback_action: Callable[[State], Any]

    def property_problem(self, spec: Any) -> str | None:
        """Why a property reference (``"name"`` or ``{"name": ..., params}``) is invalid."""
        name, params = split_property(spec)
        if name not in self.properties:
            return f"unknown property {name!r}; known: {', '.join(sorted(self.properties))}"
        allowed = self.properties[name].params
        for key, value in params.items():
            if key not in allowed:
                return f"property {name!r} has no parameter {key!r}; it takes {sorted(allowed)}"
            choices = allowed[key]
            if choices is None:
                if not isinstance(value, int) or isinstance(value, bool):
                    return f"property {name!r} parameter {key!r} must be an int, got {value!r}"
            elif value not in choices:
                return (
                    f"property {name!r} parameter {key!r} must be one of {list(choices)}, "
                    f"got {value!r}"
                )
        missing = set(allowed) - set(params)
        if missing:
            return f"property {name!r} needs parameter(s) {sorted(missing)}"
        return None


def split_property(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{"name": "x", "k": v}`` -> ``("x", {"k": v})``."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return repr(spec), {}


def _always(state: State, prev: Any) -> bool:
    return True


def _never(state: State, prev: Any) -> bool:
    return False


_COMMON_PREDICATES = {
    "always": Predicate("always", "the stage's function for every state", _always),
    "never": Predicate("never", "never the right choice in this game (a distractor)", _never),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# =========================================================================== pursuit
#: evader "near" when every pursuer is within this Manhattan distance of it
NEAR_DISTANCE = 6


def _cell_ok(c: Any, size: int) -> bool:
    return (
        isinstance(c, list)
        and len(c) == 2
        and all(_is_int(v) for v in c)
        and (pu.on_board(c, size))
    )


def _check_pursuit_state(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"a pursuit state is a dict, got {type(state).__name__}"
    missing = {"size", "pursuers", "evader", "restricted"} - set(state)
    if missing:
        return (
            f"a pursuit state needs keys size, pursuers, evader, restricted; "
            f"missing {sorted(missing)}"
        )
    size = state["size"]
    if not _is_int(size) or size < 3:
        return f"state['size'] must be an int >= 3, got {size!r}"
    ps = state["pursuers"]
    if not isinstance(ps, list) or len(ps) != 3 or not all(_cell_ok(p, size) for p in ps):
        return f"state['pursuers'] must be three [x, y] cells on the board, got {ps!r}"
    if not _cell_ok(state["evader"], size):
        return f"state['evader'] must be an [x, y] cell on the board, got {state['evader']!r}"
    area = state["restricted"]
    if area is not None and (
        not isinstance(area, list) or len(area) != 4 or not all(_is_int(v) for v in area)
    ):
        return f"state['restricted'] must be null or [x0, y0, x1, y1], got {area!r}"
    return None


def _pursuit_area(state: State) -> pu.Area | None:
    a = state.get("restricted")
    return None if a is None else (a[0], a[1], a[2], a[3])


def sample_pursuit_state(rng: np.random.Generator) -> State:
    """A random pursuit state: board 8..21 (mostly 21), a restricted block 40% of the
    time, and the evader near the pursuers (within 4) a third of the time."""
    size = 21 if rng.random() < 0.7 else int(rng.integers(8, 22))
    area = pu.draw_area(rng, size) if rng.random() < 0.4 else None
    near = rng.random() < 0.35
    for _ in range(1000):
        evader = (int(rng.integers(size)), int(rng.integers(size)))
        if pu.in_area(evader, area):
            continue
        cells: list[pu.Cell] = []
        while len(cells) < 3:
            if near:
                c = (evader[0] + int(rng.integers(-4, 5)), evader[1] + int(rng.integers(-4, 5)))
            else:
                c = (int(rng.integers(size)), int(rng.integers(size)))
            if pu.enterable(c, size, area) and c != evader and c not in cells:
                cells.append(c)
        return {
            "size": size,
            "pursuers": [list(c) for c in cells],
            "evader": list(evader),
            "restricted": None if area is None else list(area),
        }
    raise AssertionError("no pursuit state drawn in 1000 tries")  # pragma: no cover


def pursuit_state_from_obs(obs: Mapping[str, Any], size: int = pu.DEFAULT_SIZE) -> State:
    """The function-base state of a pursuer observation (``size``: the board's side)."""
    area = obs.get("restricted")
    return {
        "size": int(size),
        "pursuers": [[int(v) for v in p] for p in np.asarray(obs["pursuers"]).tolist()],
        "evader": [int(v) for v in np.asarray(obs["evader"]).tolist()],
        "restricted": None if area is None else [int(v) for v in np.asarray(area).tolist()],
    }


def _within(cell: Sequence[int], d: int, size: int) -> list[list[int]]:
    x, y = cell
    return [
        [x + dx, y + dy]
        for dx in range(-d, d + 1)
        for dy in range(-d, d + 1)
        if abs(dx) + abs(dy) <= d and pu.on_board((x + dx, y + dy), size)
    ]


def _check_cell_lists(value: Any, state: State) -> str | None:
    if not isinstance(value, list) or len(value) != 3:
        return "expected a list of 3 lists of [x, y] cells (pursuers A, B, C)"
    size = state["size"]
    for i, cells in enumerate(value):
        if not isinstance(cells, list):
            return f"entry {i} is {type(cells).__name__}, not a list of cells"
        for c in cells:
            if not _cell_ok(c, size):
                return f"entry {i} holds {c!r}, not an [x, y] cell on the {size}x{size} board"
        if len({tuple(c) for c in cells}) != len(cells):
            return f"entry {i} lists a cell twice"
    return None


def _sample_cell_lists(state: State, rng: np.random.Generator) -> list[list[list[int]]]:
    """Candidate lists as an upstream stage would give them: the cells within 1-3
    (mostly 2) of each pursuer, often with later or all other pursuers' cells removed,
    sometimes the area's."""
    size, ps = state["size"], state["pursuers"]
    area = _pursuit_area(state)
    d = int(rng.choice([1, 2, 2, 2, 3]))
    out = []
    for i, p in enumerate(ps):
        cells = _within(p, d, size)
        u = rng.random()
        if u < 0.4:
            cells = [c for c in cells if c not in ps[i + 1 :]]
        elif u < 0.7:
            cells = [c for c in cells if not any(c == q for j, q in enumerate(ps) if j != i)]
        if area is not None and rng.random() < 0.6:
            cells = [c for c in cells if not pu.in_area(c, area)]
        out.append(cells)
    return out


def _check_targets(value: Any, state: State) -> str | None:
    if not isinstance(value, list) or len(value) != 3:
        return "expected a list of 3 target cells (A, B, C), each [x, y] or null"
    for i, c in enumerate(value):
        if c is not None and not _cell_ok(c, state["size"]):
            return f"target {i} is {c!r}, not null or an [x, y] cell on the board"
    return None


def _sample_targets(state: State, rng: np.random.Generator) -> list[list[int]]:
    return [list(p) for p in state["pursuers"]]


def _removed(kind: str, state: State, i: int) -> Callable[[list[int]], bool]:
    ps, ev, size = state["pursuers"], state["evader"], state["size"]
    others = [q for j, q in enumerate(ps) if j != i]
    area = _pursuit_area(state)
    tests: dict[str, Callable[[list[int]], bool]] = {
        "nothing": lambda c: False,
        "other_pursuers": lambda c: c in others,
        "later_pursuers": lambda c: c in ps[i + 1 :],
        "evader": lambda c: c == ev,
        "pursuers_and_evader": lambda c: c in others or c == ev,
        "restricted_area": lambda c: pu.in_area(c, area),
        "board_edge": lambda c: c[0] in (0, size - 1) or c[1] in (0, size - 1),
    }
    return tests[kind]


def _prop_cells_within(state: State, prev: Any, out: Any, distance: int) -> str | None:
    for i, p in enumerate(state["pursuers"]):
        want = {tuple(c) for c in _within(p, distance, state["size"])}
        got = {tuple(c) for c in out[i]}
        if got != want:
            extra, missing = sorted(got - want), sorted(want - got)
            return (
                f"pursuer {pu.PURSUER_NAMES[i]} at {p}: cells within {distance} on the board "
                f"expected; extra {extra[:4]}, missing {missing[:4]}"
            )
    return None


def _prop_subset(state: State, prev: Any, out: Any) -> str | None:
    for i in range(3):
        extra = [c for c in out[i] if c not in prev[i]]
        if extra:
            return f"entry {i} adds cells {extra[:4]} that were not in its input"
    return None


def _prop_removes_exactly(state: State, prev: Any, out: Any, cells: str) -> str | None:
    for i in range(3):
        gone = _removed(cells, state, i)
        want = [c for c in prev[i] if not gone(c)]
        if sorted(map(tuple, out[i])) != sorted(map(tuple, want)):
            extra = [c for c in out[i] if c not in want]
            missing = [c for c in want if c not in out[i]]
            return (
                f"entry {i}: removing exactly the {cells.replace('_', ' ')} cells expected; "
                f"kept wrongly {extra[:4]}, dropped wrongly {missing[:4]}"
            )
    return None


def _free_lists(prev: Any, out: Any) -> list[list[list[int]]]:
    """Per pursuer, its input cells not already chosen by an earlier pursuer."""
    free = []
    for i in range(3):
        taken = [out[j] for j in range(i) if out[j] is not None]
        free.append([c for c in prev[i] if c not in taken])
    return free


def _prop_choice_from_input(state: State, prev: Any, out: Any) -> str | None:
    free = _free_lists(prev, out)
    for i, t in enumerate(out):
        if t is None:
            if free[i]:
                return f"target {i} is null although {len(free[i])} free cells were offered"
        elif t not in prev[i]:
            return f"target {i} {t} is not among its input cells"
    chosen = [tuple(t) for t in out if t is not None]
    if len(set(chosen)) != len(chosen):
        return f"two pursuers target the same cell: {out}"
    return None


def _prop_extreme(state: State, prev: Any, out: Any, sign: int) -> str | None:
    ev = state["evader"]
    free = _free_lists(prev, out)
    for i, t in enumerate(out):
        if t is None or not free[i]:
            continue
        best = min(sign * pu.manhattan(c, ev) for c in free[i])
        if sign * pu.manhattan(t, ev) != best:
            word = "nearest to" if sign > 0 else "farthest from"
            return f"target {i} {t} is not a free cell {word} the evader {ev}"
    return None


def _prop_stays(state: State, prev: Any, out: Any) -> str | None:
    free = _free_lists(prev, out)
    for i, p in enumerate(state["pursuers"]):
        if p in free[i] and out[i] != p:
            return f"pursuer {pu.PURSUER_NAMES[i]} could stay at {p} but targets {out[i]}"
    return None


def _targets_to_action(targets: Any, state: State) -> np.ndarray:
    cells: list[pu.Cell | None] = [None, None, None]
    if isinstance(targets, list) and len(targets) == 3:
        for i, t in enumerate(targets):
            if isinstance(t, list) and len(t) == 2 and all(_is_int(v) for v in t):
                cells[i] = (t[0], t[1])
    pursuers = [(p[0], p[1]) for p in state["pursuers"]]
    return pu.encode_targets(pursuers, cells)


def _max_distance(state: State) -> int:
    return max(pu.manhattan(p, state["evader"]) for p in state["pursuers"])


PURSUIT = GameSpec(
    name="pursuit",
    state_description=(
        "{'size': int (board side), 'pursuers': [[x, y], [x, y], [x, y]] (A, B, C), "
        "'evader': [x, y], 'restricted': [x0, y0, x1, y1] (inclusive corners of the "
        "restricted block) or null when no restricted area is in force}"
    ),
    check_state=_check_pursuit_state,
    sample_state=sample_pursuit_state,
    types={
        "none": ValueType(
            "none",
            "nothing (the first stage)",
            lambda v, s: None if v is None else "expected null",
            lambda s, r: None,
        ),
        "cell_lists": ValueType(
            "cell_lists",
            "per pursuer A, B, C, a list of [x, y] cells on the board, no repeats",
            _check_cell_lists,
            _sample_cell_lists,
        ),
        "targets": ValueType(
            "targets",
            "per pursuer A, B, C, the [x, y] cell it moves to, or null for no choice",
            _check_targets,
            _sample_targets,
        ),
    },
    predicates={
        **_COMMON_PREDICATES,
        "evader_far": Predicate(
            "evader_far",
            f"some pursuer is more than {NEAR_DISTANCE} cells (Manhattan) from the evader",
            lambda s, p: _max_distance(s) > NEAR_DISTANCE,
        ),
        "evader_near": Predicate(
            "evader_near",
            f"every pursuer is within {NEAR_DISTANCE} cells (Manhattan) of the evader",
            lambda s, p: _max_distance(s) <= NEAR_DISTANCE,
        ),
        "no_extra_rule": Predicate(
            "no_extra_rule",
            "no rule beyond the base game is in force (no restricted area)",
            lambda s, p: s.get("restricted") is None,
        ),
        "restricted_area_in_force": Predicate(
            "restricted_area_in_force",
            "a restricted area that no piece may enter is in force",
            lambda s, p: s.get("restricted") is not None,
        ),
    },
    properties={
        "cells_within_distance": Property(
            "cells_within_distance",
            "each pursuer's list is exactly the on-board cells within `distance` of it",
            _prop_cells_within,
            {"distance": None},
        ),
        "subset_of_input": Property(
            "subset_of_input", "each output list is a subset of its input list", _prop_subset
        ),
        "removes_exactly": Property(
            "removes_exactly",
            "each output list is its input list minus exactly the named cells",
            _prop_removes_exactly,
            {
                "cells": (
                    "nothing",
                    "other_pursuers",
                    "later_pursuers",
                    "evader",
                    "pursuers_and_evader",
                    "restricted_area",
                    "board_edge",
                )
            },
        ),
        "choice_from_input": Property(
            "choice_from_input",
            "each target is one of its pursuer's input cells, targets are distinct, and "
            "null only when no free cell was offered",
            _prop_choice_from_input,
        ),
        "nearest_to_evader": Property(
            "nearest_to_evader",
            "each target is a free input cell nearest (Manhattan) to the evader",
            lambda s, p, o: _prop_extreme(s, p, o, 1),
        ),
        "farthest_from_evader": Property(
            "farthest_from_evader",
            "each target is a free input cell farthest (Manhattan) from the evader",
            lambda s, p, o: _prop_extreme(s, p, o, -1),
        ),
        "stays_when_possible": Property(
            "stays_when_possible",
            "a pursuer whose own cell is offered and free targets it",
            _prop_stays,
        ),
    },
    decision_type="targets",
    decision_to_action=_targets_to_action,
    state_from_obs=pursuit_state_from_obs,
    fallback_action=lambda s: np.full(3, pu.NO_CHOICE, dtype=np.int64),
)


# =========================================================================== 21 points
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
    if not _is_int(value["total"]) or not 0 <= value["total"] <= 40:
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
                and _is_int(pair[0])
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
    return {"total": best_total(cards), "soft": to.is_soft(_rank_ids(cards))}


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
        **_COMMON_PREDICATES,
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


GAMES: dict[str, GameSpec] = {"pursuit": PURSUIT, "twentyone": TWENTYONE}

#: disjoint seed streams for sampled states: train the student on one, measure on another
SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2, "contract": 3}


def sample_states(game: str, n: int, split: str = "train", seed: int = 0) -> list[State]:
    """``n`` sampled states of ``game`` from the ``split``'s own seed stream.

    Streams never overlap across splits (``np.random.default_rng([split_id, seed])``), so
    a student trained on ``"train"`` is measured on held-out ``"test"`` states.
    """
    if split not in SPLITS:
        raise unknown_name("split", split, list(SPLITS))
    if n < 0:
        raise InvalidArgument(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([SPLITS[split], seed])
    spec = game_spec(game)
    return [spec.sample_state(rng) for _ in range(n)]


def game_spec(name: str) -> GameSpec:
    """The :class:`GameSpec` of ``"pursuit"`` or ``"twentyone"``."""
    if not isinstance(name, str):
        raise InvalidArgument(f"a game name is a string, got {name!r}")
    try:
        return GAMES[name]
    except KeyError:
        raise unknown_name("game", name, list(GAMES)) from None
