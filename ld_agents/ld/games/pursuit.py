"""The pursuit vocabulary of function bases: :data:`PURSUIT` and the rules it is read with.

The state (``size``, ``pursuers``, ``evader``, ``restricted``), the value types
``cell_lists`` and ``targets`` (checkers and samplers), the ``right_when`` predicates
(evader far or near, an extra rule in force or not), the properties a stage or function
may claim, and how the ``select`` stage's targets become an env action. Everything calls
the rule functions of :mod:`ld_envs.pursuit` (never a copy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ld_agents.baselines.pursuit import check_board
from ld_agents.ld.games.spec import (
    COMMON_PREDICATES,
    GameSpec,
    Predicate,
    Property,
    State,
    ValueType,
    is_int,
)
from ld_envs import pursuit as pu

#: evader "near" when every pursuer is within this Manhattan distance of it
NEAR_DISTANCE = 6


def _cell_ok(c: Any, size: int) -> bool:
    return (
        isinstance(c, list) and len(c) == 2 and all(is_int(v) for v in c) and (pu.on_board(c, size))
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
    if not is_int(size) or size < 3:
        return f"state['size'] must be an int >= 3, got {size!r}"
    ps = state["pursuers"]
    if not isinstance(ps, list) or len(ps) != 3 or not all(_cell_ok(p, size) for p in ps):
        return f"state['pursuers'] must be three [x, y] cells on the board, got {ps!r}"
    if not _cell_ok(state["evader"], size):
        return f"state['evader'] must be an [x, y] cell on the board, got {state['evader']!r}"
    area = state["restricted"]
    if area is not None and (
        not isinstance(area, list) or len(area) != 4 or not all(is_int(v) for v in area)
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
    """The function-base state of a pursuer observation (``size``: the board's side; an
    observation from another board is refused, :func:`check_board`)."""
    check_board(obs, size)
    area = obs.get("restricted")
    return {
        "size": int(size),
        "pursuers": [[int(v) for v in p] for p in np.asarray(obs["pursuers"]).tolist()],
        "evader": [int(v) for v in np.asarray(obs["evader"]).tolist()],
        "restricted": None if area is None else [int(v) for v in np.asarray(area).tolist()],
    }


def _within(cell: Sequence[int], d: int, size: int) -> list[list[int]]:
    """The on-board cells within Manhattan distance ``d`` of ``cell``, in (x, y) order; only
    the board is scanned, so a huge ``d`` (a base file's parameter) costs no more than the
    board."""
    x, y = cell
    return [
        [cx, cy]
        for cx in range(max(0, x - d), min(size - 1, x + d) + 1)
        for cy in range(max(0, y - d), min(size - 1, y + d) + 1)
        if abs(cx - x) + abs(cy - y) <= d
    ]


def check_cell_lists(value: Any, state: State) -> str | None:
    """Why ``value`` is not three lists of distinct ``[x, y]`` integer cells on the board
    (one per pursuer), or None."""
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
            if isinstance(t, list) and len(t) == 2 and all(is_int(v) for v in t):
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
            check_cell_lists,
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
        **COMMON_PREDICATES,
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
            "no rule beyond the base game is in force (no restricted area, no new rule)",
            lambda s, p: s.get("restricted") is None and s.get("rule") is None,
        ),
        "new_rule_in_force": Predicate(
            "new_rule_in_force",
            "a new rule (state['rule'], its text; ld_envs.pursuit_rules) is in force",
            lambda s, p: s.get("rule") is not None,
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
