"""The LD student's prompts: every stage's candidates once, the state once, one cue per stage.

The student picks one function per stage by reading the next-token log-probabilities of
the labels ``" A"``, ``" B"``, ... after a stage's cue (:func:`label_choices`). One
decision reads the state once: the prompt lists every stage with its candidates (the
manual's "when to call" lines) in :func:`static_prompt`, the same for every decision, so
its key-value states are pinned once with ``Backend.cache_prefix``; the state follows
(:func:`dynamic_prompt`); each stage then adds only its own few-token cue
(:func:`stage_cue`). The stages' cues are independent continuations of (static + state):
a backend with token-tree scoring runs the state and all cues of a step, for every
episode of a batch, in one forward. The same builders make the policy's prompts
(:mod:`ld_agents.ld.policy`) and the student's training rows
(:mod:`ld_agents.ld.training_data`, where one row holds a state and all its stages' cues).

Layout::

    Pursuit on a 21x21 board: pursuers A, B, C chase the evader.
    Each move runs 4 stages in order; at each stage pick one function by its letter.
    Stage 1, candidates: list each pursuer's candidate target cells.
    A: moves_within_two - always: every cell within two steps ...
    ...
    Stage 4, select: choose one target cell per pursuer from its remaining cells.
    A: approach_evader - when the evader is still far: ...
    ...
    State: pursuers A (3, 8), B (14, 19), C (17, 2); evader (20, 18); distance to the
    evader A 27, B 5, C 19; farthest pursuer 27 cells away; extra rule in force: none.
    Stage 4, select. Answer: A

A stage can list its candidates in its cue, after the state, instead of in the static
part (``listed_later``/``cue_stages``): a stage with more candidates than a policy shows at
once (retrieval: the top ones for the state), and the stage where new rules' functions join
the base at test time (pursuit's ``constraints``, for students trained so: the rule in the
state line and the manual line that names it are then a few tokens apart, and a function
added for a new rule leaves the pinned listing as it was). The state line is built by
trusted project code and includes the Manhattan distances (pursuit); for 21 points it
gives totals instead of the cards (:func:`twentyone_state_text`): facts of the state,
not the answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ld_agents.ld.games import best_total, soft_hand
from ld_agents.ld.schema import FunctionEntry
from ld_envs import pursuit as pu
from ld_envs.errors import InvalidArgument

if TYPE_CHECKING:
    from ld_agents.ld.base import FunctionBase

LABELS = "ABCDEFGHIJKLMNOP"
ANSWER_CUE = "Answer:"
#: prompt layouts: ``one_state`` (this module's: every stage listed once, the state once, a
#: cue per stage) and ``per_stage`` (each stage its own listing, then the state and
#: ``Answer:``; the layout of students trained before ``one_state``, which still load)
LAYOUTS = ("one_state", "per_stage")

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
    return twentyone_state_text(state)


def twentyone_state_text(state: dict[str, Any]) -> str:
    """The 21-points state as the student reads it: totals, not the cards.

    What the stages' "when to call" lines refer to (who stood, what the opponent's visible
    cards total) and the agent's own total; the functions read the cards themselves. Hands
    with the same totals read the same, so the student's answers depend on card values
    as multisets only, which keeps its exact evaluation to distinct totals
    (:mod:`ld_agents.baselines.optimal.answers`).
    """
    mine = state["my_cards"]
    soft = soft_hand(mine)
    stood = "yes" if state["opponent_stood"] else "no"
    return (
        f"my cards total {best_total(mine)} ({'soft' if soft else 'hard'}); the opponent's "
        f"visible cards total {best_total(state['opponent_cards'])}, "
        f"{state['opponent_hidden']} face down; opponent has stood: {stood}."
    )


def candidate_line(label: str, entry: FunctionEntry) -> str:
    return f"{label}: {entry.name} - {entry.when_to_call}"


def _candidate_lines(candidates: Sequence[FunctionEntry]) -> list[str]:
    if len(candidates) > len(LABELS):
        raise InvalidArgument(f"at most {len(LABELS)} candidates per stage, got {len(candidates)}")
    return [candidate_line(LABELS[i], c) for i, c in enumerate(candidates)]


def static_prompt(
    base: FunctionBase,
    size: int = pu.DEFAULT_SIZE,
    candidates: Mapping[str, Sequence[FunctionEntry]] | None = None,
    listed_later: Collection[str] = (),
) -> str:
    """The state-independent start of every prompt of a base (ends with a newline).

    ``candidates``: a stage's candidates in the order shown (default: the base's order);
    ``listed_later``: stages whose candidates are listed in their cue (retrieval).
    """
    candidates = candidates or {}
    names = base.stage_names
    lines = [
        HEADERS.get(base.game, "Pick one function per stage.").format(size=size),
        f"Each move runs {len(names)} stages in order; at each stage pick one function by "
        "its letter.",
    ]
    for k, stage in enumerate(names, 1):
        lines.append(f"Stage {k}, {stage}: {base.stage(stage).description}.")
        if stage in listed_later:
            lines.append("(its functions are listed with the question)")
        else:
            cands = candidates.get(stage) or base.stage_candidates(stage)
            lines += _candidate_lines(cands)
    return "\n".join(lines) + "\n"


def dynamic_prompt(game: str, state: dict[str, Any], extra_rule: str | None = None) -> str:
    """The state part of a prompt (ends with a newline); the stages' cues follow it."""
    return f"State: {state_text(game, state, extra_rule)}\n"


def stage_cue(base: FunctionBase, stage: str, shown: Sequence[FunctionEntry] | None = None) -> str:
    """A stage's question after the state; the answer (a label) follows ``Answer:``.
    ``shown``: candidates listed here (a retrieval stage) instead of in the static part."""
    k = base.stage_names.index(stage) + 1
    if shown is None:
        return f"Stage {k}, {stage}. {ANSWER_CUE}"
    return (
        f"Stage {k}, {stage}, functions:\n"
        + "\n".join(_candidate_lines(shown))
        + (f"\n{ANSWER_CUE}")
    )


def stage_context(
    base: FunctionBase,
    stage: str,
    state: dict[str, Any],
    size: int = pu.DEFAULT_SIZE,
    candidates: Mapping[str, Sequence[FunctionEntry]] | None = None,
    extra_rule: str | None = None,
    cue_stages: Collection[str] = (),
) -> str:
    """The whole context scored for one stage of one decision (static + state + cue).
    ``cue_stages``: stages whose candidates are listed in their cue (after the state)."""
    candidates = candidates or {}
    shown = None
    if stage in cue_stages:
        shown = candidates.get(stage) or base.stage_candidates(stage)
    return (
        static_prompt(base, size, candidates, listed_later=cue_stages)
        + dynamic_prompt(base.game, state, extra_rule)
        + stage_cue(base, stage, shown)
    )


def per_stage_static(
    base: FunctionBase,
    stage: str,
    size: int = pu.DEFAULT_SIZE,
    candidates: Sequence[FunctionEntry] | None = None,
) -> str:
    """The ``per_stage`` layout's static part of one stage: the game, the stage and its
    candidates (ends with a newline)."""
    names = base.stage_names
    cands = list(candidates) if candidates is not None else base.stage_candidates(stage)
    lines = [
        HEADERS.get(base.game, "Pick the function for this stage.").format(size=size),
        f"Stage {names.index(stage) + 1} of {len(names)}, {stage}: "
        f"{base.stage(stage).description}.",
        "Functions:",
        *_candidate_lines(cands),
    ]
    return "\n".join(lines) + "\n"


def per_stage_context(
    base: FunctionBase,
    stage: str,
    state: dict[str, Any],
    size: int = pu.DEFAULT_SIZE,
    candidates: Sequence[FunctionEntry] | None = None,
) -> str:
    """The ``per_stage`` layout's context of one stage: its static part, then the state
    and ``Answer:``."""
    return (
        per_stage_static(base, stage, size, candidates)
        + dynamic_prompt(base.game, state)
        + (ANSWER_CUE)
    )


def static_parts(
    layout: str, base: FunctionBase, size: int = pu.DEFAULT_SIZE, listed_later: Collection[str] = ()
) -> list[str]:
    """The state-independent parts of ``layout``'s prompts, which a backend pins once: the
    one listing of every stage (``one_state``), or each stage's own (``per_stage``; the
    ``listed_later`` retrieval stages change theirs with the state, so have none)."""
    if layout == "one_state":
        return [static_prompt(base, size, listed_later=listed_later)]
    _check_layout(layout)
    return [per_stage_static(base, st, size) for st in base.stage_names if st not in listed_later]


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise InvalidArgument(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def layout_context(
    layout: str,
    base: FunctionBase,
    stage: str,
    state: dict[str, Any],
    size: int = pu.DEFAULT_SIZE,
    candidates: Mapping[str, Sequence[FunctionEntry]] | None = None,
    cue_stages: Collection[str] = (),
) -> str:
    """One stage's whole context in ``layout`` (``candidates``: orders shown per stage;
    ``cue_stages``: the ``one_state`` stages listed in their cue)."""
    _check_layout(layout)
    if layout == "per_stage":
        return per_stage_context(base, stage, state, size, (candidates or {}).get(stage))
    return stage_context(base, stage, state, size, candidates, cue_stages=cue_stages)


def label_choices(n: int) -> list[str]:
    """The scored continuations: ``" A"``, ``" B"``, ... (one token each)."""
    return [" " + LABELS[i] for i in range(n)]
