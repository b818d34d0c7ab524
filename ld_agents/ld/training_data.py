"""The LD student's training data: labelled stages, then (prompt, answer) rows for LoRA.

:func:`training_examples` labels every stage of sampled states with the ground truth
(:meth:`~ld_agents.ld.base.FunctionBase.right_function`), running the right chain in the
sandbox so each stage sees the input it would really get. The row builders turn them into
the policy's own prompts (:mod:`ld_agents.ld.prompts`): :func:`selection_rows` (the right
label per stage), and for pursuit's emergency stage :func:`rule_matching_rows` (an extra
rule in force -> the function whose manual names it) and :func:`synthetic_rule_rows` (the
same with invented rules and functions). :func:`ld_agents.ld.train.build_rows` mixes them
into the ``ld-gym train-ld`` recipe's data.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ld_agents.ld.base import FunctionBase, NoRightFunction
from ld_agents.ld.prompts import LABELS, dynamic_prompt, stage_cue, static_prompt
from ld_agents.ld.sandbox import SandboxWorker
from ld_envs import pursuit as pu
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: pursuit's stage for extra rules (the emergency stage the rule-matching rows teach)
RULE_STAGE = "constraints"


@dataclass(frozen=True)
class SelectionExample:
    """One student training/evaluation item: at ``stage`` on ``state`` (with the stage
    input ``prev`` from the ground-truth chain), ``answer`` is the right function."""

    state: dict[str, Any]
    stage: str
    prev: Any
    candidates: tuple[str, ...]
    answer: str


def training_examples(
    base: FunctionBase,
    worker: SandboxWorker,
    states: Iterable[Mapping[str, Any]],
    stages: Iterable[str] | None = None,
) -> list[SelectionExample]:
    """Label every stage of each state with the ground truth, running the right chain
    so each stage sees the input it would really get. States where a stage has no right
    function are skipped from that stage on (logged)."""
    wanted = set(stages) if stages is not None else set(base.stage_names)
    out = []
    skipped = 0
    for state in states:
        state = dict(state)
        prev: Any = None
        for st in base.stages:
            try:
                answer = base.right_function(st.name, state, prev)
            except NoRightFunction:
                skipped += 1
                break
            if st.name in wanted:
                cands = tuple(f.name for f in base.stage_candidates(st.name))
                out.append(SelectionExample(state, st.name, prev, cands, answer))
            res = base.run_stage(worker, answer, state, prev)
            if not res.ok:
                logger.warning("ground-truth function %s failed: %s", answer, res)
                break
            prev = res.value
    if skipped:
        logger.info("%d states had a stage with no right function; labelled up to it", skipped)
    return out


def selection_rows(
    base: FunctionBase,
    examples: Sequence[SelectionExample],
    shuffle_seed: int | None = 0,
    cue_stages: Collection[str] = (),
    listings: int = 1,
) -> list[dict[str, Any]]:
    """Training rows from labelled stages: one row per state, ``prompt`` (the static part
    and the state, as the policy shows them) and ``branches`` (each labelled stage's cue
    and right label; the branches are independent continuations of the prompt, see
    :func:`ld_agents.lora.data.tokenize_examples`).

    ``shuffle_seed``: present every stage's candidates in a random order per row (so the
    student reads the descriptions instead of learning a letter per stage); ``None`` keeps
    the base order (the order the policy uses). ``cue_stages``: stages listed in their
    cue (:func:`~ld_agents.ld.prompts.stage_cue`) instead of the static part;
    ``listings``: branches per cue-listed stage, the first in the row's order and the
    others in random orders (the same state and answer, another letter each). Consecutive
    examples of one state object share a row.
    """
    rng = random.Random(shuffle_seed)
    reorder = random.Random(0 if shuffle_seed is None else shuffle_seed + 1)
    rows: list[dict[str, Any]] = []
    for _, run in itertools.groupby(examples, key=lambda ex: id(ex.state)):
        group = list(run)
        state = group[0].state
        order = {}
        for st in base.stage_names:
            cands = list(base.stage_candidates(st))
            if shuffle_seed is not None:
                rng.shuffle(cands)
            order[st] = cands
        size = int(state.get("size", pu.DEFAULT_SIZE)) if base.game == "pursuit" else 21
        prompt = static_prompt(base, size, order, cue_stages) + dynamic_prompt(base.game, state)
        branches = []
        for ex in group:
            listed = ex.stage in cue_stages
            for k in range(listings if listed else 1):
                cands = (
                    order[ex.stage]
                    if k == 0
                    else reorder.sample(order[ex.stage], k=len(order[ex.stage]))
                )
                names = [c.name for c in cands]
                cue = stage_cue(base, ex.stage, cands if listed else None)
                branches.append([cue, " " + LABELS[names.index(ex.answer)]])
        rows.append({"prompt": prompt, "branches": branches})
    return rows


def rule_matching_rows(
    base: FunctionBase,
    states: Sequence[dict[str, Any]],
    stage: str = RULE_STAGE,
    seed: int = 0,
    cue_stages: Collection[str] = (),
) -> list[dict[str, str]]:
    """Manual-derived rows for the emergency stage: with an extra rule in force (the text of
    a function's ``rule``), the function whose manual handles it is the answer; with none,
    the function for "no extra rule". Teaches "match the rule in force to the manual", so a
    function added later for a new rule (the restricted area) is picked with no retraining.
    Only pursuit has such a stage in the shipped base. ``cue_stages``: as in
    :func:`selection_rows`."""
    if base.game != "pursuit" or stage not in base.stage_names:
        return []
    rng = random.Random(seed)
    funcs = base.stage_candidates(stage)
    others = [f for f in funcs if f.right_when not in ("always", "no_extra_rule")]
    rows = []
    for state in states:
        if state.get("restricted") is not None or not others:
            continue
        target = rng.choice(others)
        cands = list(funcs)
        rng.shuffle(cands)
        rows.append(_rule_row(base, stage, cands, state, target.rule, target, cue_stages))
    return rows


def _rule_row(
    base: FunctionBase,
    stage: str,
    cands: Sequence[Any],
    state: dict[str, Any],
    rule: str,
    target: Any,
    cue_stages: Collection[str] = (),
) -> dict[str, Any]:
    """One rule-matching row: ``rule`` in force, ``cands`` at ``stage`` -> ``target``'s
    label (the other stages in base order, not asked)."""
    size = int(state.get("size", pu.DEFAULT_SIZE))
    prompt = static_prompt(base, size, {stage: cands}, cue_stages) + dynamic_prompt(
        base.game, state, extra_rule=rule
    )
    branch = _rule_branch(base, stage, cands, target, listed=stage in cue_stages)
    return {"prompt": prompt, "branches": [branch]}


def _rule_branch(
    base: FunctionBase, stage: str, cands: Sequence[Any], target: Any, listed: bool
) -> list[str]:
    """The [cue, label] branch asking ``stage`` with ``cands`` shown in that order (in the
    cue when ``listed``, else in the static part), answered by ``target``'s label."""
    cue = stage_cue(base, stage, cands if listed else None)
    return [cue, " " + LABELS[list(cands).index(target)]]


@dataclass(frozen=True)
class _SyntheticEntry:
    """A manual line of an invented constraints function (training rows only)."""

    name: str
    when_to_call: str
    rule: str


def _synthetic_rules(rng: random.Random, size: int) -> list[_SyntheticEntry]:
    """Invented extra rules of several families, each with the function that would handle
    it. None mentions a restricted area, so the emergency function stays unseen."""
    r, c, k = rng.randrange(size), rng.randrange(size), rng.randint(2, 5)
    half = size // 2
    return [
        _SyntheticEntry(f"avoid_row_{r}", f"when a rule forbids the cells of row y = {r}",
                        f"no piece may stand on row y = {r}"),
        _SyntheticEntry(f"avoid_column_{c}", f"when a rule forbids the cells of column x = {c}",
                        f"no piece may stand on column x = {c}"),
        _SyntheticEntry("drop_even_cells", "when cells with both coordinates even are banned",
                        "no piece may stand on a cell whose x and y are both even"),
        _SyntheticEntry("drop_corner_cells", "when the four corner cells are banned",
                        "the corner cells of the board are closed"),
        _SyntheticEntry("keep_left_half", f"when pieces must stay where x <= {half}",
                        f"every piece must stay in the left half of the board (x <= {half})"),
        _SyntheticEntry("keep_lower_half", f"when pieces must stay where y <= {half}",
                        f"every piece must stay in the lower half of the board (y <= {half})"),
        _SyntheticEntry(f"limit_steps_to_{k - 1}", f"when a move may cover at most {k - 1} cells",
                        f"pursuers may move at most {k - 1} cells per step"),
        _SyntheticEntry("drop_diagonal_cells", "when cells on the main diagonal (x = y) are banned",
                        "no piece may stand on a cell with x = y"),
    ]  # fmt: skip


def _as_written(entry: _SyntheticEntry) -> _SyntheticEntry:
    """The entry with the manual line ``ld-gym emergency`` writes for a generated function
    (:class:`ld_agents.ld.emergency.EmergencyFunction`)."""
    return _SyntheticEntry(entry.name, f"when this rule is in force: {entry.rule}", entry.rule)


def _check_listings(listings: int, stage: str, cue_stages: Collection[str]) -> None:
    """Listings per rule row: 1, or more when ``stage`` is listed in its cue."""
    if listings < 1 or (listings > 1 and stage not in cue_stages):
        raise InvalidArgument(
            f"listings must be 1, or more with {stage!r} in cue_stages; got {listings} "
            f"with cue_stages {sorted(cue_stages)}"
        )


def synthetic_rule_rows(
    base: FunctionBase,
    states: Sequence[dict[str, Any]],
    stage: str = RULE_STAGE,
    seed: int = 0,
    cue_stages: Collection[str] = (),
    listings: int = 1,
) -> list[dict[str, Any]]:
    """Rule-matching rows with invented rules: the stage's functions plus two invented
    ones (shuffled; half of them with the manual line a generated function gets). In turn:
    the first invented rule is in force (answer: its function); none is (answer: the
    function for no extra rule, though invented ones are listed); the second is (answer:
    its function, the first listed as a distractor); a base distractor's rule is (answer:
    that function). Teaches matching the rule in force to the manual line that names it,
    for functions never seen, and leaving a listed function alone when its rule is not in
    force. ``cue_stages``: as in :func:`selection_rows`. ``listings``: branches per row, each
    the stage's cue with another listing for the same rule in force (fresh invented
    distractors, another order); more than one needs the stage listed in its cue."""
    _check_listings(listings, stage, cue_stages)
    if base.game != "pursuit" or stage not in base.stage_names:
        return []
    rng = random.Random(seed)
    funcs = list(base.stage_candidates(stage))
    none_fn = [f for f in funcs if f.right_when == "no_extra_rule"]
    others = [f for f in funcs if f.right_when not in ("always", "no_extra_rule")]
    rows = []
    for i, state in enumerate(states):
        if state.get("restricted") is not None:
            continue
        size = int(state.get("size", pu.DEFAULT_SIZE))
        invented = rng.sample(_synthetic_rules(rng, size), 2)
        invented = [_as_written(e) if rng.random() < 0.5 else e for e in invented]
        shown: list[Any] = funcs + invented
        kind = i % 4
        if kind == 0:
            target, rule = invented[0], invented[0].rule
        elif kind == 1 and none_fn:
            target, rule = none_fn[0], "none"
        elif kind == 2:
            target, rule = invented[1], invented[1].rule
        elif others:
            target = rng.choice(others)
            rule = target.rule
        else:
            continue
        rng.shuffle(shown)
        row = _rule_row(base, stage, shown, state, rule, target, cue_stages)
        for _ in range(listings - 1):
            row["branches"].append(_another_listing(base, stage, funcs, target, rule, rng, size))
        rows.append(row)
    return rows


def _another_listing(
    base: FunctionBase,
    stage: str,
    funcs: Sequence[Any],
    target: Any,
    rule: str,
    rng: random.Random,
    size: int,
) -> list[str]:
    """One more [cue, label] branch for a rule-matching row: the stage's functions, the
    target, and fresh invented distractors for other rules (two invented in all), in a
    random order."""
    invented = [] if target in funcs else [target]
    fresh = [e for e in _synthetic_rules(rng, size) if e.name != target.name and e.rule != rule]
    for e in rng.sample(fresh, 2 - len(invented)):
        invented.append(_as_written(e) if rng.random() < 0.5 else e)
    shown = list(funcs) + invented
    rng.shuffle(shown)
    return _rule_branch(base, stage, shown, target, listed=True)


def _near_miss_families(rng: random.Random, size: int) -> list[list[_SyntheticEntry]]:
    """Families of invented rules that differ only in a number or a piece, some on the
    topics of the base's own decoy functions (the board's edge, the evader's
    neighbourhood): a rule in force must be matched to the function that repeats its text,
    not to one on the same topic."""
    a, b = rng.sample(range(size), 2)
    w1, w2 = rng.sample(range(2, 5), 2)
    k1, k2 = rng.sample(range(2, 5), 2)
    p, q, o = rng.sample("ABC", 3)
    s1, s2 = rng.sample(range(0, 3), 2)
    e = _SyntheticEntry
    return [
        [e(f"avoid_row_{r}", "", f"no piece may stand on row y = {r}") for r in (a, b)],
        [e(f"avoid_column_{c}", "", f"no pursuer may enter column x = {c}") for c in (a, b)],
        [e(f"keep_{w}_from_border", "", f"no piece may stand within {w} cells of the board's "
           "border") for w in (w1, w2)]
        + [e("avoid_corners", "", "the four corner cells are closed")],
        [e(f"keep_{k}_from_evader", "", f"no pursuer may stop within distance {k} of the evader")
         for k in (k1, k2)]
        + [e("avoid_evader_row", "", "no pursuer may stand on the evader's row")],
        [e(f"{x}_keeps_off_{y}", "", f"pursuer {x} may not stand within {k1} of pursuer {y}")
         for x, y in ((p, q), (o, q), (p, o))],
        [e(f"slow_{x}_{s}", "", f"pursuer {x} may move at most {s} cells per step")
         for x, s in ((p, s1), (q, s1), (p, s2))],
    ]  # fmt: skip


def near_miss_rule_rows(
    base: FunctionBase,
    states: Sequence[dict[str, Any]],
    stage: str = RULE_STAGE,
    seed: int = 0,
    cue_stages: Collection[str] = (),
    listings: int = 1,
) -> list[dict[str, Any]]:
    """Rule-matching rows whose distractors are near misses: the stage's functions (its
    decoys on the edge and the evader's neighbourhood included) and two or three invented
    functions of one family (:func:`_near_miss_families`), each with the manual line a
    generated function gets; one of the family's rules is in force and its function is the
    answer. Teaches matching the rule's own text, numbers and pieces included, rather than
    its topic. ``listings``: as in :func:`synthetic_rule_rows`."""
    _check_listings(listings, stage, cue_stages)
    if base.game != "pursuit" or stage not in base.stage_names:
        return []
    rng = random.Random(seed)
    funcs = list(base.stage_candidates(stage))
    rows = []
    for state in states:
        if state.get("restricted") is not None:
            continue
        size = int(state.get("size", pu.DEFAULT_SIZE))
        family = [_as_written(e) for e in rng.choice(_near_miss_families(rng, size))]
        target = rng.choice(family)
        shown: list[Any] = funcs + family
        rng.shuffle(shown)
        row = _rule_row(base, stage, shown, state, target.rule, target, cue_stages)
        for _ in range(listings - 1):
            shown = funcs + family
            rng.shuffle(shown)
            row["branches"].append(_rule_branch(base, stage, shown, target, listed=True))
        rows.append(row)
    return rows


#: the smallest board the writer grammar's primitives are drawn for (they assume 21 x 21)
PRIMITIVE_MIN_SIZE = 16


def _invented_rule(rng: random.Random, size: int) -> _SyntheticEntry:
    """An invented rule with the manual line a generated function gets: one of the
    student's own families, or a training-only primitive of the writer's grammar (longer
    sentences, one named pursuer or a group; none is a kind the suite holds out; boards of
    at least :data:`PRIMITIVE_MIN_SIZE` cells a side)."""
    import numpy as np

    from ld_agents.ld.rule_writer import PRIMITIVES
    from ld_agents.ld.writer_grammar import primitive

    if size < PRIMITIVE_MIN_SIZE or rng.random() < 0.5:
        return _as_written(rng.choice(_synthetic_rules(rng, size)))
    kind = rng.choice(PRIMITIVES)
    text, _ = primitive(kind, np.random.default_rng(rng.randrange(2**32)), size)
    name = f"new_rule_{kind}" if rng.random() < 0.5 else f"rule_{rng.randrange(100)}"
    return _as_written(_SyntheticEntry(name, "", text.rstrip(".")))


def ruled_selection_rows(
    base: FunctionBase,
    examples: Sequence[SelectionExample],
    seed: int = 0,
    cue_stages: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Whole-state rows with an invented rule in force (:func:`_invented_rule`): its text
    in the state line, its function listed at the rule stage and the answer there, every
    other stage answered as without it (the base's stages do not depend on an extra rule).
    Teaches that a rule's text, which may mention moving, zones or pursuers, sways only the
    rule stage. Half of the rows list the candidates in base order (as the policy does,
    the new function last at the rule stage), half in a random order."""
    if base.game != "pursuit" or RULE_STAGE not in base.stage_names:
        return []
    rng = random.Random(seed)
    rows = []
    for _, run in itertools.groupby(examples, key=lambda ex: id(ex.state)):
        group = list(run)
        state = group[0].state
        if state.get("restricted") is not None:
            continue
        size = int(state.get("size", pu.DEFAULT_SIZE))
        rule = _invented_rule(rng, size)
        shuffled = rng.random() < 0.5
        order: dict[str, list[Any]] = {}
        for st in base.stage_names:
            order[st] = list(base.stage_candidates(st)) + ([rule] if st == RULE_STAGE else [])
            if shuffled:
                rng.shuffle(order[st])
        prompt = static_prompt(base, size, order, cue_stages) + dynamic_prompt(
            base.game, state, extra_rule=rule.rule
        )
        branches = []
        for ex in group:
            names = [c.name for c in order[ex.stage]]
            answer = rule.name if ex.stage == RULE_STAGE else ex.answer
            cue = stage_cue(base, ex.stage, order[ex.stage] if ex.stage in cue_stages else None)
            branches.append([cue, " " + LABELS[names.index(answer)]])
        rows.append({"prompt": prompt, "branches": branches})
    return rows
