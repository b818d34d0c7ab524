"""Build the project's stand-in function bases in ``assets/function_bases/``.

The shipped bases stand in for a teacher LLM's output (they are labelled so in their
``provenance``). Their functions are written in ``pursuit_functions.py`` and
``twentyone_functions.py`` beside this script; their manual entries are below. Usage
examples are concrete: the stage input ``prev`` comes from running the right functions
of the earlier stages on the example state, and ``expected`` from running the function
itself, all in the sandbox; ``situations`` are seeded states where the manual's
``right_when`` picks the function. Every file is validated before it is written.

    .venv/bin/python scripts/function_bases/build.py [--check]

``--check`` rebuilds in memory and fails when a shipped file differs (for CI);
``tests/test_function_base_build.py`` makes the same comparison in the test suite
(:func:`build_all`, :func:`stale_files`).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.ld.base import FunctionBase, bases_dir
from ld_agents.ld.games import FULL_DECK, game_spec
from ld_agents.ld.sandbox import SandboxWorker
from ld_agents.ld.schema import SCHEMA_ID, SCHEMA_VERSION
from ld_agents.ld.validation import validate_base

HERE = Path(__file__).resolve().parent
CREATED = "2026-11-24"
STAND_IN = {
    "author": "ld-gym project",
    "stand_in": True,
    "note": (
        "written by the ld-gym project as a stand-in for a teacher's output (functions in "
        "scripts/function_bases/, built by scripts/function_bases/build.py); a base written by "
        "a real teacher replaces it"
    ),
    "created": CREATED,
    "model": None,
}


def sources(path: Path) -> dict[str, str]:
    """Each top-level function's exact source text, by name."""
    text = path.read_text()
    tree = ast.parse(text)
    return {
        n.name: ast.get_source_segment(text, n) + "\n"
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
    }


# =========================================================================== pursuit

PURSUIT_RULES = """\
Pursuit game. A square board of size x size cells, coordinates (x, y) with 0 <= x, y < size.
Three pursuers (A, B, C) chase one evader. Each step the three pursuers move (resolved in
order A, B, C), then the evader moves. A pursuer moves to any cell within Manhattan
distance 2 of its cell (staying counts), on the board, and never onto a cell another
pursuer occupies (A is checked against B's and C's current cells, B against A's new cell
and C's current cell, C against both new cells). A pursuer may move onto the evader's cell.
The evader moves at most 1 cell and never onto a pursuer. The pursuers win when every
pursuer is within Manhattan distance 1 of the evader (distance < 2). An illegal pursuer
move leaves it in place and counts one violation; more than 7 violations lose the game,
and so does reaching 100 steps without a capture."""

RESTRICTED_RULE = """\
New rule (emergency): a 5x5 restricted area, given as inclusive corners
[x0, y0, x1, y1] in state['restricted'], is in force. No piece may enter a cell inside
it; a pursuer move into it is illegal (a violation)."""

PURSUIT_STAGES = [
    {
        "name": "candidates",
        "description": "list the cells each pursuer could move to this step",
        "consumes": "none",
        "produces": "cell_lists",
        "properties": [],
    },
    {
        "name": "filter",
        "description": "remove the candidate cells the movement rules forbid",
        "consumes": "cell_lists",
        "produces": "cell_lists",
        "properties": ["subset_of_input"],
    },
    {
        "name": "constraints",
        "description": (
            "apply any extra rule in force beyond the base game (emergencies); "
            "pass the lists on unchanged when there is none"
        ),
        "consumes": "cell_lists",
        "produces": "cell_lists",
        "properties": ["subset_of_input"],
    },
    {
        "name": "select",
        "description": "choose one target cell per pursuer from its remaining cells",
        "consumes": "cell_lists",
        "produces": "targets",
        "properties": ["choice_from_input"],
    },
]

PURSUIT_MANUAL: dict[str, dict[str, Any]] = {
    "moves_within_two": {
        "stage": "candidates",
        "role": "core",
        "right_when": "always",
        "rule": (
            "a pursuer moves to any cell within Manhattan distance "
            "2 of its cell, on the board (staying counts)"
        ),
        "when_to_call": "first stage of every pursuer step: pursuers move up to 2 cells",
        "properties": [{"name": "cells_within_distance", "distance": 2}],
        "output": "per pursuer, the on-board cells within distance 2 of it",
    },
    "moves_within_one": {
        "stage": "candidates",
        "role": "distractor",
        "right_when": "never",
        "rule": "a piece that moves at most 1 cell (Manhattan), on the board",
        "when_to_call": "when the pieces you move can only step 1 cell, like the evader",
        "properties": [{"name": "cells_within_distance", "distance": 1}],
        "output": "per pursuer, the on-board cells within distance 1 of it",
    },
    "moves_within_three": {
        "stage": "candidates",
        "role": "distractor",
        "right_when": "never",
        "rule": "a piece that moves up to 3 cells (Manhattan), on the board",
        "when_to_call": "when the pieces you move may travel 3 cells in one step",
        "properties": [{"name": "cells_within_distance", "distance": 3}],
        "output": "per pursuer, the on-board cells within distance 3 of it",
    },
    "drop_cells_still_occupied": {
        "stage": "filter",
        "role": "core",
        "right_when": "always",
        "rule": (
            "moves resolve in order A, B, C: a pursuer may not move onto a cell a pursuer "
            "moving after it still occupies; it may take the evader's cell"
        ),
        "when_to_call": (
            "always, after listing candidates: keeps every cell the move order allows, "
            "including cells that earlier pursuers leave"
        ),
        "properties": [{"name": "removes_exactly", "cells": "later_pursuers"}],
        "output": "the lists without the cells of the pursuers that move later",
    },
    "drop_other_pursuer_cells": {
        "stage": "filter",
        "role": "alternative",
        "right_when": "never",
        "rule": (
            "a pursuer never moves onto a cell where another pursuer stands now, not even "
            "one that pursuer is leaving (always legal, but it blocks some good moves)"
        ),
        "when_to_call": (
            "when all pieces move at the same time, so a cell being left may not be entered"
        ),
        "properties": [{"name": "removes_exactly", "cells": "other_pursuers"}],
        "output": "the lists without the other pursuers' cells",
    },
    "drop_evader_cell": {
        "stage": "filter",
        "role": "distractor",
        "right_when": "never",
        "rule": "a piece may not move onto the evader",
        "when_to_call": "when no piece may step onto the evader's cell",
        "properties": [{"name": "removes_exactly", "cells": "evader"}],
        "output": "the lists without the evader's cell",
    },
    "drop_occupied_cells": {
        "stage": "filter",
        "role": "distractor",
        "right_when": "never",
        "rule": "no two pieces of any side may ever share a cell",
        "when_to_call": "when every occupied cell, the evader's included, is off limits",
        "properties": [{"name": "removes_exactly", "cells": "pursuers_and_evader"}],
        "output": "the lists without any occupied cell",
    },
    "keep_all_cells": {
        "stage": "filter",
        "role": "distractor",
        "right_when": "never",
        "rule": "pieces may share cells freely",
        "when_to_call": "when pieces may stack on one cell",
        "properties": [{"name": "removes_exactly", "cells": "nothing"}],
        "output": "the lists unchanged",
    },
    "no_extra_rule": {
        "stage": "constraints",
        "role": "core",
        "right_when": "no_extra_rule",
        "rule": "the base game has no rule beyond movement and occupancy",
        "when_to_call": "when the extra rule in force is none",
        "properties": [{"name": "removes_exactly", "cells": "nothing"}],
        "output": "the lists unchanged",
    },
    "drop_edge_cells": {
        "stage": "constraints",
        "role": "distractor",
        "right_when": "never",
        "rule": "cells on the board's edge are dangerous and should be avoided",
        "when_to_call": "when pieces must keep off the outer rows and columns of the board",
        "properties": [{"name": "removes_exactly", "cells": "board_edge"}],
        "output": "the lists without edge cells",
    },
    "keep_distance_from_evader": {
        "stage": "constraints",
        "role": "distractor",
        "right_when": "never",
        "rule": "pursuers must not come adjacent to the evader",
        "when_to_call": "when a rule forbids standing next to the evader",
        "properties": [],
        "output": "the lists without cells within distance 1 of the evader",
    },
    "drop_restricted_cells": {
        "stage": "constraints",
        "role": "emergency",
        "right_when": "restricted_area_in_force",
        "handles_rule": "restricted_area",
        "rule": "no piece may enter the restricted area (state['restricted'], inclusive corners)",
        "when_to_call": "whenever a restricted area is in force (state['restricted'] is not null)",
        "properties": [{"name": "removes_exactly", "cells": "restricted_area"}],
        "output": "the lists without the cells inside the restricted area",
    },
    "approach_evader": {
        "stage": "select",
        "role": "core",
        "right_when": "evader_far",
        "rule": "close the distance fast: pursuers move 2 cells per step, the evader only 1",
        "when_to_call": (
            "when the evader is far: the farthest pursuer is more than 6 cells from it"
        ),
        "properties": ["nearest_to_evader"],
        "output": "one target per pursuer, each a free cell nearest the evader",
    },
    "encircle_evader": {
        "stage": "select",
        "role": "core",
        "right_when": "evader_near",
        "rule": (
            "capture needs all three pursuers within distance 1 "
            "of the evader: take distinct cells around it"
        ),
        "when_to_call": (
            "when the evader is near: the farthest pursuer is 6 cells or less from it"
        ),
        "properties": [],
        "output": "one target per pursuer, moving toward distinct slots around the evader",
    },
    "move_away_from_evader": {
        "stage": "select",
        "role": "distractor",
        "right_when": "never",
        "rule": "keep as far from the evader as possible",
        "when_to_call": "when the pieces you move are the ones being chased",
        "properties": ["farthest_from_evader"],
        "output": "one target per pursuer, each a free cell farthest from the evader",
    },
    "stay_in_place": {
        "stage": "select",
        "role": "distractor",
        "right_when": "never",
        "rule": "standing still never breaks a movement rule",
        "when_to_call": "when the pursuers should hold their positions and wait",
        "properties": ["stays_when_possible"],
        "output": "one target per pursuer: its own cell when offered",
    },
    "pick_any_cell": {
        "stage": "select",
        "role": "distractor",
        "right_when": "never",
        "rule": "spread the pursuers over the board",
        "when_to_call": "when the pursuers should scatter and search the board",
        "properties": [],
        "output": "one target per pursuer, a free cell picked by a fixed pseudo-random rule",
    },
}

EMERGENCY_FUNCTIONS = {"drop_restricted_cells"}


def _p(
    size: int, ps: list[list[int]], ev: list[int], area: list[int] | None = None
) -> dict[str, Any]:
    return {"size": size, "pursuers": ps, "evader": ev, "restricted": area}


#: curated example states per stage (prev comes from the right earlier stages)
PURSUIT_EXAMPLES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "candidates": [
        (_p(8, [[0, 0], [3, 3], [7, 6]], [5, 1]), "A in a corner, C next to the edge"),
        (_p(21, [[3, 8], [14, 19], [17, 2]], [20, 18]), "the paper's Figure 5 start"),
    ],
    "filter": [
        (_p(8, [[2, 2], [3, 2], [2, 4]], [6, 6]), "pursuers next to each other"),
        (_p(8, [[4, 4], [5, 5], [1, 1]], [4, 5]), "a pursuer can reach the evader's cell"),
    ],
    "constraints": [
        (_p(8, [[1, 1], [6, 6], [3, 6]], [4, 3]), "no extra rule"),
        (_p(10, [[1, 3], [7, 8], [0, 0]], [8, 2], [2, 2, 6, 6]), "restricted area next to A"),
    ],
    "select": [
        (_p(21, [[3, 8], [14, 19], [17, 2]], [20, 18]), "evader far (Figure 5 start)"),
        (_p(10, [[2, 2], [6, 4], [4, 8]], [4, 5]), "evader near, in the middle"),
        (_p(10, [[7, 7], [9, 6], [6, 9]], [9, 9]), "evader cornered"),
    ],
}


# =========================================================================== 21 points

TWENTYONE_RULES = """\
21 points. A 26-card deck: ranks A, 2-10, J, Q, K in two suits (its make-up is public).
Cards 2-10 count their pips, J, Q, K count 10; an ace counts 11 unless that takes the hand
over 21, then 1. You and the opponent get two cards each; you see your cards and the
opponent's cards except its first card, which stays face down. Each round you choose hit
(draw one card) or stand, then the opponent does; standing is final. A total over 21 busts
and loses at once. When both have stood, the higher total wins; equal totals draw. The
opponent plays the dealer's rule: it hits while its total is below 17."""

TWENTYONE_STAGES = [
    {
        "name": "hand",
        "description": "work out my hand's total",
        "consumes": "none",
        "produces": "hand",
        "properties": [],
    },
    {
        "name": "risk",
        "description": "estimate the chance that one more card busts me",
        "consumes": "hand",
        "produces": "hand_risk",
        "properties": ["keeps_input"],
    },
    {
        "name": "opponent",
        "description": "estimate the opponent's total",
        "consumes": "hand_risk",
        "produces": "summary",
        "properties": ["keeps_input"],
    },
    {
        "name": "decide",
        "description": "choose hit or stand",
        "consumes": "summary",
        "produces": "decision",
        "properties": [],
    },
]

TWENTYONE_MANUAL: dict[str, dict[str, Any]] = {
    "best_hand_total": {
        "stage": "hand",
        "role": "core",
        "right_when": "always",
        "rule": "an ace counts 11 unless that takes the hand over 21, then 1; J, Q, K count 10",
        "when_to_call": "always, to know my total",
        "properties": [{"name": "hand_total", "aces": "best"}],
        "output": "{'total', 'soft'}: my best total and whether an ace counts 11",
    },
    "hand_total_aces_as_one": {
        "stage": "hand",
        "role": "distractor",
        "right_when": "never",
        "rule": "aces are worth 1",
        "when_to_call": "in games where an ace always counts 1",
        "properties": [{"name": "hand_total", "aces": "one"}],
        "output": "{'total', 'soft'} with aces as 1",
    },
    "hand_total_aces_as_eleven": {
        "stage": "hand",
        "role": "distractor",
        "right_when": "never",
        "rule": "aces are worth 11",
        "when_to_call": "in games where an ace always counts 11",
        "properties": [{"name": "hand_total", "aces": "eleven"}],
        "output": "{'total', 'soft'} with aces as 11",
    },
    "bust_probability_unseen": {
        "stage": "risk",
        "role": "core",
        "right_when": "always",
        "rule": (
            "the deck's make-up is public, so the chance to "
            "bust is counted over the cards not yet seen"
        ),
        "when_to_call": "always: the cards I can see are out of the deck",
        "properties": [{"name": "bust_probability", "pool": "unseen"}],
        "output": "the input plus 'p_bust' over the unseen cards",
    },
    "bust_probability_full_deck": {
        "stage": "risk",
        "role": "distractor",
        "right_when": "never",
        "rule": "the chance to bust, counted over a full deck",
        "when_to_call": "when the deck is reshuffled before every card",
        "properties": [{"name": "bust_probability", "pool": "full_deck"}],
        "output": "the input plus 'p_bust' over the full deck",
    },
    "bust_risk_rule_of_thumb": {
        "stage": "risk",
        "role": "distractor",
        "right_when": "never",
        "rule": "a quick estimate of the risk from the total alone",
        "when_to_call": "when the deck's make-up is unknown",
        "properties": [],
        "output": "the input plus a rough 'p_bust'",
    },
    "opponent_totals_dealer": {
        "stage": "opponent",
        "role": "core",
        "right_when": "always",
        "rule": (
            "the face-down card is any unseen card; a "
            "dealer-rule opponent that stood holds 17 or more"
        ),
        "when_to_call": (
            "always against this opponent, which plays the dealer's rule (hit below 17)"
        ),
        "properties": [{"name": "opponent_distribution", "model": "dealer"}],
        "output": "the input plus 'opponent': [[total, probability], ...]",
    },
    "opponent_totals_any_hidden": {
        "stage": "opponent",
        "role": "alternative",
        "right_when": "never",
        "rule": (
            "the face-down card is any unseen card; nothing is assumed about the opponent's play"
        ),
        "when_to_call": "when the opponent's way of playing is unknown",
        "properties": [{"name": "opponent_distribution", "model": "any_hidden"}],
        "output": "the input plus 'opponent': [[total, probability], ...]",
    },
    "opponent_visible_total": {
        "stage": "opponent",
        "role": "distractor",
        "right_when": "never",
        "rule": "the opponent's total is what it shows",
        "when_to_call": "when all of the opponent's cards are face up",
        "properties": [],
        "output": "the input plus 'opponent': its visible total with probability 1",
    },
    "opponent_hidden_is_ten": {
        "stage": "opponent",
        "role": "distractor",
        "right_when": "never",
        "rule": "ten-valued cards are the most common, so guess 10 for the face-down card",
        "when_to_call": "for a quick guess of the opponent's total",
        "properties": [],
        "output": "the input plus 'opponent': one guessed total with probability 1",
    },
    "beat_stood_opponent": {
        "stage": "decide",
        "role": "core",
        "right_when": "opponent_stood",
        "rule": "after the opponent stands its total is final; only beating it matters",
        "when_to_call": "when the opponent has stood",
        "properties": ["stands_when_sure_win"],
        "output": "'hit' or 'stand'",
    },
    "play_against_strong_card": {
        "stage": "decide",
        "role": "core",
        "right_when": "opponent_shows_strong",
        "rule": "an opponent showing 7 or more will usually finish on 17-21",
        "when_to_call": "when the opponent has not stood and its visible cards total 7 or more",
        "properties": [
            {"name": "hits_at_or_below", "total": 16},
            {"name": "stands_at_or_above", "total": 19},
        ],
        "output": "'hit' or 'stand'",
    },
    "play_against_weak_card": {
        "stage": "decide",
        "role": "core",
        "right_when": "opponent_shows_weak",
        "rule": "an opponent showing 6 or less must keep hitting and often busts",
        "when_to_call": "when the opponent has not stood and its visible cards total 6 or less",
        "properties": [
            {"name": "hits_at_or_below", "total": 11},
            {"name": "stands_at_or_above", "total": 18},
        ],
        "output": "'hit' or 'stand'",
    },
    "hit_below_17": {
        "stage": "decide",
        "role": "distractor",
        "right_when": "never",
        "rule": "the dealer's rule",
        "when_to_call": "when you must play like the dealer",
        "properties": [
            {"name": "hits_at_or_below", "total": 16},
            {"name": "stands_at_or_above", "total": 17},
        ],
        "output": "'hit' or 'stand'",
    },
    "hit_if_bust_unlikely": {
        "stage": "decide",
        "role": "distractor",
        "right_when": "never",
        "rule": "take a card while it is more likely safe than not",
        "when_to_call": "when only the risk of busting matters",
        "properties": [{"name": "hits_at_or_below", "total": 11}],
        "output": "'hit' or 'stand'",
    },
    "always_stand": {
        "stage": "decide",
        "role": "distractor",
        "right_when": "never",
        "rule": "never risk a bust",
        "when_to_call": "when any card could bust you",
        "properties": [{"name": "stands_at_or_above", "total": 0}],
        "output": "'stand'",
    },
}


def _t(mine: list[str], opp: list[str], stood: bool = False, hidden: int = 1) -> dict[str, Any]:
    return {
        "my_cards": mine,
        "opponent_cards": opp,
        "opponent_hidden": hidden,
        "opponent_stood": stood,
        "deck": dict(FULL_DECK),
    }


TWENTYONE_EXAMPLES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "hand": [
        (_t(["A", "7"], ["K"]), "a soft 18"),
        (_t(["A", "7", "9"], ["K"]), "the ace drops to 1"),
        (_t(["10", "6"], ["5"]), "a hard 16"),
    ],
    "risk": [
        (_t(["10", "6"], ["5"]), "hard 16"),
        (_t(["K", "2"], ["Q"]), "hard 12 with two ten-valued cards seen"),
        (_t(["A", "5"], ["9"]), "soft 16 cannot bust"),
    ],
    "opponent": [
        (_t(["10", "6"], ["5"]), "the opponent shows 5, still drawing"),
        (_t(["9", "8"], ["10"], stood=True), "the opponent stood on a visible 10"),
        (_t(["9", "8"], ["7", "J"], stood=False, hidden=0), "open cards"),
    ],
    "decide": [
        (_t(["10", "6"], ["5"]), "hard 16 against a weak 5"),
        (_t(["10", "6"], ["9"]), "hard 16 against a strong 9"),
        (_t(["9", "8"], ["10"], stood=True), "17 against a stood opponent showing 10"),
        (_t(["A", "6"], ["7"]), "soft 17 against a 7"),
    ],
}


# =========================================================================== building


def _entries(
    game: str,
    manual: dict[str, dict[str, Any]],
    srcs: dict[str, str],
    stages: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    spec = game_spec(game)
    by_stage = {s["name"]: s for s in stages}
    out = []
    for name, m in manual.items():
        st = by_stage[m["stage"]]
        out.append(
            {
                "name": name,
                "stage": m["stage"],
                "role": m["role"],
                "signature": f"{name}(state, prev) -> {st['produces']}",
                "rule": m["rule"],
                "when_to_call": m["when_to_call"],
                "right_when": m["right_when"],
                "handles_rule": m.get("handles_rule"),
                "inputs": [
                    {
                        "name": "state",
                        "type": f"{game} state",
                        "description": spec.state_description,
                    },
                    {
                        "name": "prev",
                        "type": st["consumes"],
                        "description": spec.types[st["consumes"]].description,
                    },
                ],
                "output": {"name": "result", "type": st["produces"], "description": m["output"]},
                "properties": m["properties"],
                "source": srcs[name],
                "examples": [],
                "situations": [],
            }
        )
    return out


def _fill_examples(
    base: FunctionBase,
    entries: list[dict[str, Any]],
    examples: dict[str, list[tuple[dict[str, Any], str]]],
    worker: SandboxWorker,
    seed: int,
) -> None:
    """Examples: curated states, prev from the right earlier stages, expected from the
    function; situations: seeded sampled states where its ``right_when`` picks it."""
    rng = np.random.default_rng(seed)
    sampled = [base.spec.sample_state(rng) for _ in range(400)]
    base.load_into(worker)

    def prev_for(state: dict[str, Any], stage: str) -> Any:
        prev = None
        for st in base.stages:
            if st.name == stage:
                return prev
            res = base.run_stage(worker, base.right_function(st.name, state, prev), state, prev)
            if not res.ok:
                raise RuntimeError(f"right chain failed at {st.name}: {res}")
            prev = res.value
        raise KeyError(stage)

    for e in entries:
        for state, note in examples[e["stage"]]:
            prev = prev_for(state, e["stage"])
            res = base.run_stage(worker, e["name"], state, prev)
            if not res.ok:
                raise RuntimeError(f"{e['name']} failed on its example: {res}")
            e["examples"].append(
                {"state": state, "prev": prev, "expected": res.value, "note": note}
            )
        if e["right_when"] == "never":
            continue
        for state in sampled:
            try:
                if base.right_functions(e["stage"], state) != [e["name"]]:
                    continue
                prev = prev_for(state, e["stage"])
            except Exception:  # an earlier stage has no right function here
                continue
            e["situations"].append({"state": state, "prev": prev, "note": ""})
            if len(e["situations"]) == 3:
                break


def build_game(
    game: str,
    rules: str,
    stages: list[dict[str, Any]],
    manual: dict[str, dict[str, Any]],
    src_file: str,
    examples: dict[str, list[tuple[dict[str, Any], str]]],
    emergency: dict[str, tuple[set[str], str]],
    worker: SandboxWorker,
) -> dict[str, dict[str, Any]]:
    """The base file's data and each emergency extension's, by file name."""
    srcs = sources(HERE / src_file)
    entries = _entries(game, manual, srcs, stages)
    header = {"schema": SCHEMA_ID, "schema_version": SCHEMA_VERSION, "game": game}
    full = {
        **header,
        "kind": "base",
        "provenance": STAND_IN,
        "rules": rules,
        "stages": stages,
        "functions": entries,
    }
    base = FunctionBase.from_dict(json.loads(json.dumps(full)), require_examples=False)
    _fill_examples(base, entries, examples, worker, seed=7)
    emergency_names = (
        set().union(*(names for names, _ in emergency.values())) if emergency else set()
    )
    files = {
        f"{game}.json": {
            **full,
            "functions": [e for e in entries if e["name"] not in emergency_names],
        }
    }
    for fname, (names, rule_text) in emergency.items():
        files[fname] = {
            **header,
            "kind": "extension",
            "provenance": {
                **STAND_IN,
                "note": STAND_IN["note"] + "; the shipped emergency "
                "function, used when generating one fails",
            },
            "rules": rule_text,
            "functions": [e for e in entries if e["name"] in names],
        }
    return files


def build_all(worker: SandboxWorker) -> dict[str, dict[str, Any]]:
    """Every shipped file's data (both games' bases and extensions), by file name."""
    files: dict[str, dict[str, Any]] = {}
    files.update(
        build_game(
            "pursuit",
            PURSUIT_RULES,
            PURSUIT_STAGES,
            PURSUIT_MANUAL,
            "pursuit_functions.py",
            PURSUIT_EXAMPLES,
            {"pursuit_restricted_emergency.json": (EMERGENCY_FUNCTIONS, RESTRICTED_RULE)},
            worker,
        )
    )
    files.update(
        build_game(
            "twentyone",
            TWENTYONE_RULES,
            TWENTYONE_STAGES,
            TWENTYONE_MANUAL,
            "twentyone_functions.py",
            TWENTYONE_EXAMPLES,
            {},
            worker,
        )
    )
    return files


def validate_all(files: dict[str, dict[str, Any]], worker: SandboxWorker) -> list[Any]:
    """Each game's base with its extensions applied, validated in the sandbox."""
    reports = []
    for game in ("pursuit", "twentyone"):
        base = FunctionBase.from_dict(files[f"{game}.json"], origin=f"{game}.json")
        for fname, data in files.items():
            if data.get("kind") == "extension" and data["game"] == game:
                base.extend(data, origin=fname)
        reports.append(validate_base(base, worker))
    return reports


def file_text(data: dict[str, Any]) -> str:
    """A shipped file's exact text."""
    return json.dumps(data, indent=1) + "\n"


def stale_files(files: dict[str, dict[str, Any]], out_dir: Path) -> list[str]:
    """The files under ``out_dir`` that are missing or differ from the rebuilt ones."""
    return [
        fname
        for fname, data in files.items()
        if not (out_dir / fname).is_file() or (out_dir / fname).read_text() != file_text(data)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if shipped files differ")
    args = parser.parse_args(argv)
    out_dir = bases_dir()
    with SandboxWorker() as worker:
        files = build_all(worker)
        for report in validate_all(files, worker):
            print(report.format())
            if not report.ok:
                return 1
    if args.check:
        stale = stale_files(files, out_dir)
        if stale:
            print(f"out of date: {stale}; run scripts/function_bases/build.py", file=sys.stderr)
            return 1
        return 0
    for fname, data in files.items():
        path = out_dir / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file_text(data))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
