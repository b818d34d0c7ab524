"""The LD student's prompts: one per stage, the candidates as labelled choices.

At every stage of a decision the student reads a short prompt (the game in one line, the
stage, its candidates as labelled choices with their manual's "when to call" line, then
the state) and the next-token log-probabilities of the labels ``" A"``, ``" B"``, ... are
compared (:func:`label_choices`). The same builders make the policy's prompts
(:mod:`ld_agents.ld.policy`) and the student's training rows
(:mod:`ld_agents.ld.training_data`).

Prompt layout (the part above ``State:`` is :func:`static_prompt`, the same at a stage for
every decision, so its key-value states are pinned once with ``Backend.cache_prefix`` and
each decision runs only :func:`dynamic_prompt`'s tokens)::

    Pursuit game: three pursuers A, B, C chase one evader on a 21x21 board. ...
    Stage 4 of 4, select: choose one target cell per pursuer from its remaining cells.
    Functions:
    A: approach_evader - when the evader is still far: some pursuer is more than 6 ...
    B: encircle_evader - when the evader is near: every pursuer is within 6 cells ...
    ...
    State: pursuers A (3, 8), B (14, 19), C (17, 2); evader (20, 18); distance to the
    evader A 27, B 5, C 19; extra rule in force: none.
    Answer:

The state line is built by trusted project code and includes the Manhattan distances
(pursuit) and the opponent's visible total (21 points): facts of the state, not the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ld_agents.ld.games import best_total
from ld_agents.ld.schema import FunctionEntry
from ld_envs import pursuit as pu
from ld_envs.errors import InvalidArgument

if TYPE_CHECKING:
    from ld_agents.ld.base import FunctionBase

LABELS = "ABCDEFGHIJKLMNOP"
ANSWER_CUE = "Answer:"

HEADERS = {
    "pursuit": "Pursuit on a {size}x{size} board: pursuers A, B, C chase the evader.",
    "twentyone": "21 points: beat the opponent's total without going over 21.",
}


def _cell(c: Sequence[int]) -> str:
    return f"({c[0]}, {c[1]})"


def extra_rule_text(state: dict[str, Any]) -> str:
    """The extra rule in force on a pursuit board, in words (``none`` without one): the
    restricted area, and a new rule's own text (``state["rule"]``)."""
    parts = []
    area = state.get("restricted")
    if area is not None:
        x0, y0, x1, y1 = area
        parts.append(f"no piece may enter the restricted area x {x0}..{x1}, y {y0}..{y1}")
    if state.get("rule"):
        parts.append(str(state["rule"]).strip().rstrip("."))
    return "; ".join(parts) or "none"


def state_text(game: str, state: dict[str, Any], extra_rule: str | None = None) -> str:
    """One line describing a function-base state (what the student reads)."""
    if game == "pursuit":
        ev = state["evader"]
        names = "ABC"
        ps = ", ".join(f"{n} {_cell(p)}" for n, p in zip(names, state["pursuers"], strict=True))
        dist = ", ".join(
            f"{n} {abs(p[0] - ev[0]) + abs(p[1] - ev[1])}"
            for n, p in zip(names, state["pursuers"], strict=True)
        )
        far = max(abs(p[0] - ev[0]) + abs(p[1] - ev[1]) for p in state["pursuers"])
        rule = extra_rule if extra_rule is not None else extra_rule_text(state)
        return (
            f"pursuers {ps}; evader {_cell(ev)}; distance to the evader {dist}; "
            f"farthest pursuer {far} cells away; extra rule in force: {rule}."
        )
    mine = ", ".join(state["my_cards"]) or "none"
    opp = ", ".join(state["opponent_cards"]) or "none"
    stood = "yes" if state["opponent_stood"] else "no"
    shown = best_total(state["opponent_cards"])
    return (
        f"my cards {mine}; opponent shows {opp} (visible total {shown}), "
        f"{state['opponent_hidden']} face down; opponent has stood: {stood}."
    )


def candidate_line(label: str, entry: FunctionEntry) -> str:
    return f"{label}: {entry.name} - {entry.when_to_call}"


def static_prompt(
    base: FunctionBase, stage: str, candidates: Sequence[FunctionEntry], size: int = pu.DEFAULT_SIZE
) -> str:
    """The state-independent start of a stage's prompt (ends with a newline)."""
    if len(candidates) > len(LABELS):
        raise InvalidArgument(f"at most {len(LABELS)} candidates per stage, got {len(candidates)}")
    names = base.stage_names
    spec = base.stage(stage)
    lines = [
        HEADERS.get(base.game, "Pick the function for this stage.").format(size=size),
        f"Stage {names.index(stage) + 1} of {len(names)}, {stage}: {spec.description}.",
        "Functions:",
        *(candidate_line(LABELS[i], c) for i, c in enumerate(candidates)),
    ]
    return "\n".join(lines) + "\n"


def dynamic_prompt(game: str, state: dict[str, Any], extra_rule: str | None = None) -> str:
    """The state part of a stage's prompt; the answer (a label) follows ``Answer:``."""
    return f"State: {state_text(game, state, extra_rule)}\n{ANSWER_CUE}"


def label_choices(n: int) -> list[str]:
    """The scored continuations: ``" A"``, ``" B"``, ... (one token each)."""
    return [" " + LABELS[i] for i in range(n)]
