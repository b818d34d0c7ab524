"""The small model writes the function for a new rule (the paper's Eq. 6).

A new pursuit rule (:mod:`ld_envs.pursuit_rules`) is handled at the base's ``constraints``
stage: a function ``f(state, prev) -> cell_lists`` that drops, from each pursuer's list of
candidate cells, the cells the rule forbids to that pursuer. This module holds

* the writer's prompt (:func:`writer_prompt`): the rule's text, what the stage does, the
  signature; the model writes the body;
* its training data (:func:`training_rows`): (rule text -> function) pairs from the shipped
  base's own constraints functions and from rules of the schema drawn at random, in the
  fixed wordings and in the paraphrase grammar's (:mod:`ld_agents.ld.writer_grammar`);
  wordings and whole kinds can be held out (:data:`HELD_OUT_KINDS`, wording index
  :data:`HELD_OUT_WORDING`) so an evaluation shows recall apart from composition. The
  pairs' code is the project's reference code for each rule: it teaches the model and never
  stands in for what the model writes;
* validation against a rule's semantics (:func:`check_rule_function`): on sampled boards,
  exactly the forbidden cells go, everything else stays, lists of pursuers the rule does not
  bind pass through; with no semantics, only the checks that need none run, and the report
  says which ran.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ld_agents.base import check_count
from ld_agents.ld import writer_grammar as grammar
from ld_agents.ld.games.pursuit import check_cell_lists
from ld_envs import pursuit as pu
from ld_envs.pursuit_rules import PURSUERS, Board, Rule, make_rule

#: the stage a new pursuit rule's function joins
STAGE = "constraints"
#: kinds kept out of the writer's training (composition: built from trained primitives)
HELD_OUT_KINDS = ("blocks", "wall", "guard")
#: the wording index kept out of training (new wordings of trained kinds)
HELD_OUT_WORDING = 3
#: the pseudo-kind of the drawn 5x5 restricted area, read from ``state["restricted"]``
AREA_KIND = "restricted_area"

PROMPT = (
    "# Rule in force: {text}\n"
    "# Stage `constraints`: drop from each pursuer's list the cells this rule forbids to it.\n"
    '# state = {{"size": n, "pursuers": [A, B, C] as [x, y], "evader": [x, y], '
    '"restricted": [x0, y0, x1, y1] or None}}\n'
    "# prev[i] = candidate cells [x, y] of pursuer i (0 = A, 1 = B, 2 = C)\n"
    "def {name}(state, prev):\n"
)
BODY = (
    '    n = state["size"]\n'
    '    ps = state["pursuers"]\n'
    '    e = state["evader"]\n'
    "    return [[c for c in cells if not ({cond})] for i, cells in enumerate(prev)]\n"
)


def writer_prompt(text: str, name: str = "drop_forbidden_cells") -> str:
    """The prompt the writer completes: the rule's text and the function's signature."""
    return PROMPT.format(text=" ".join(text.split()), name=name)


# --------------------------------------------------------------------------- reference code


def _rect(r: Sequence[int]) -> str:
    return f"{r[0]} <= c[0] <= {r[2]} and {r[1]} <= c[1] <= {r[3]}"


def _axis(axis: str) -> str:
    return "c[0]" if axis == "column" else "c[1]"


def _other(axis: str) -> str:
    return "c[1]" if axis == "column" else "c[0]"


def _cond(kind: str, p: Mapping[str, Any]) -> str:
    """The reference condition of a rule kind (True where a cell is forbidden)."""
    if kind == "block":
        return _rect(p["cells"])
    if kind == "blocks":
        return " or ".join(f"({_rect(r)})" for r in p["rects"])
    if kind == "wall":
        a, o = _axis(p["axis"]), _other(p["axis"])
        (lo, hi), (g0, g1) = p["span"], p["gap"]
        return f"{a} == {p['at']} and {lo} <= {o} <= {hi} and not {g0} <= {o} <= {g1}"
    raise KeyError(kind)


def reference_condition(rule: Rule | None, kind: str | None = None) -> str:
    """The project's condition for a rule (or the restricted area): the training target."""
    if rule is None:
        if kind != AREA_KIND:
            raise KeyError(kind)
        area = 'state["restricted"]'
        return (
            f"{area} is not None and {area}[0] <= c[0] <= {area}[2] and "
            f"{area}[1] <= c[1] <= {area}[3]"
        )
    p = dict(rule.params)
    k = rule.kind
    if k in ("block", "blocks", "wall"):
        cond = _cond(k, p)
    elif k == "band":
        cond = f"{p['span'][0]} <= {'c[1]' if p['axis'] == 'row' else 'c[0]'} <= {p['span'][1]}"
    elif k == "edge":
        cond = f"min(c[0], c[1], n - 1 - c[0], n - 1 - c[1]) < {p['width']}"
    elif k == "distance":
        (cx, cy), r = p["center"], p["radius"]
        cond = f"abs(c[0] - {cx}) + abs(c[1] - {cy}) <= {r}"
    elif k == "parity":
        cond = f"c[0] % 2 == {p['x']} and c[1] % 2 == {p['y']}"
    elif k == "slow":
        j = PURSUERS.index(p["pursuer"])
        cond = f"i == {j} and abs(c[0] - ps[i][0]) + abs(c[1] - ps[i][1]) > {p['speed']}"
    elif k == "diagonal":
        cond = "abs(c[0] - e[0]) == 1 and abs(c[1] - e[1]) == 1"
    elif k == "guard":
        j, o = PURSUERS.index(p["pursuer"]), PURSUERS.index(p["other"])
        a = 0 if p["axis"] == "column" else 1
        cond = f"i == {o} and c[{a}] == ps[{j}][{a}]"
    else:
        raise KeyError(k)
    bound = [PURSUERS.index(x) for x in rule.pieces if x in PURSUERS]
    if k in ("slow", "guard") or bound == [0, 1, 2]:
        return cond
    if len(bound) == 1:
        return f"i == {bound[0]} and ({cond})"
    return f"i in {tuple(bound)} and ({cond})"


def reference_source(rule: Rule | None, name: str, kind: str | None = None) -> str:
    """The project's reference function for a rule (never shown as the model's)."""
    return f"def {name}(state, prev):\n" + BODY.format(cond=reference_condition(rule, kind))


# --------------------------------------------------------------------------- wordings


def _who(rule: Rule, style: int) -> str:
    pieces = rule.pieces
    if pieces == ("A", "B", "C", "evader"):
        return ["no piece", "none of the pieces", "no pursuer and not the evader", "no one"][style]
    if pieces == PURSUERS:
        return ["no pursuer", "none of the pursuers", "no chaser", "no hunter"][style]
    names = " and ".join(f"pursuer {p}" for p in pieces if p in PURSUERS)
    return [f"{names} may not", f"{names} is not allowed to", f"{names} must not",
            f"{names} cannot"][style]  # fmt: skip


def _subject(rule: Rule, style: int) -> str:
    """'No pursuer may' / 'Pursuer B may not' style subjects, per wording style."""
    who = _who(rule, style)
    if who.startswith(("no ", "none")):
        verb = ["may", "is allowed to", "must", "can"][style]
        return f"{who} {verb}"[0].upper() + f"{who} {verb}"[1:]
    return who[0].upper() + who[1:]


def wording(rule: Rule | None, style: int, kind: str | None = None) -> str:
    """The rule in wording ``style`` (0-3; the env's own text is another one)."""
    if rule is None:
        return [
            "A 5x5 restricted area is in force (state['restricted'] holds its inclusive corners"
            " [x0, y0, x1, y1], or None): no piece may enter it.",
            "No piece may step into the restricted block given by state['restricted'] as "
            "[x0, y0, x1, y1]; when it is None there is no block.",
            "Cells inside state['restricted'] = [x0, y0, x1, y1] (corners included) are "
            "forbidden to every piece, when that entry is not None.",
            "An emergency closes a square zone: the inclusive corners [x0, y0, x1, y1] are in "
            "state['restricted'] (None: no zone), and nobody may move into it.",
        ][style]
    p = dict(rule.params)
    s = _subject(rule, style)
    k = rule.kind
    if k == "block":
        x0, y0, x1, y1 = p["cells"]
        return [
            f"{s} enter the cells with x from {x0} to {x1} and y from {y0} to {y1}.",
            f"{s} go into the rectangle with corners ({x0}, {y0}) and ({x1}, {y1}).",
            f"{s} stay out of the block {x0} <= x <= {x1}, {y0} <= y <= {y1}.",
            f"{s} move onto a cell whose x lies between {x0} and {x1} and whose y lies "
            f"between {y0} and {y1}.",
        ][style]
    if k == "blocks":
        parts = [f"x {r[0]}-{r[2]}, y {r[1]}-{r[3]}" for r in p["rects"]]
        return [
            f"{s} enter any of these blocks: " + "; ".join(parts) + ".",
            f"{s} go into the rectangles " + " and ".join(f"({q})" for q in parts) + ".",
            f"{s} stay out of several blocks: " + ", ".join(f"[{q}]" for q in parts) + ".",
            f"{s} move into a zone; the zones are " + "; ".join(parts) + ".",
        ][style]
    if k == "wall":
        line = f"{'x' if p['axis'] == 'column' else 'y'} = {p['at']}"
        along = "y" if p["axis"] == "column" else "x"
        (lo, hi), (g0, g1) = p["span"], p["gap"]
        return [
            f"{s} enter the wall on {line} for {along} from {lo} to {hi}, except its gap "
            f"from {g0} to {g1}.",
            f"A wall runs along {line} from {along} = {lo} to {along} = {hi} with an opening "
            f"at {along} = {g0}..{g1}; {s[0].lower() + s[1:]} cross it elsewhere.",
            f"{s} stand on {line} where {lo} <= {along} <= {hi}, unless {g0} <= {along} <= {g1}.",
            f"The {p['axis']} {line} is walled between {along} {lo} and {hi}, open between "
            f"{g0} and {g1}; {s[0].lower() + s[1:]} step on the walled part.",
        ][style]
    if k == "band":
        v = "y" if p["axis"] == "row" else "x"
        lo, hi = p["span"]
        return [
            f"{s} enter the {p['axis']}s with {v} from {lo} to {hi}.",
            f"{s} stand anywhere with {lo} <= {v} <= {hi}.",
            f"{s} cross into the band of {p['axis']}s {lo} to {hi} ({v}).",
            f"{s} move onto a cell whose {v} is between {lo} and {hi}.",
        ][style]
    if k == "edge":
        w = p["width"]
        return [
            f"{s} enter the cells within {w} of the board's edge.",
            f"{s} go to the outer {w} rows and columns of the board.",
            f"{s} stand where x or y is below {w} or above n - {w + 1} (n: the board's size).",
            f"{s} touch the border ring, {w} cells wide, around the board.",
        ][style]
    if k == "distance":
        (cx, cy), r = p["center"], p["radius"]
        return [
            f"{s} enter the cells within Manhattan distance {r} of ({cx}, {cy}).",
            f"{s} come within {r} steps (|dx| + |dy|) of the point ({cx}, {cy}).",
            f"{s} stand where |x - {cx}| + |y - {cy}| <= {r}.",
            f"{s} move into the diamond of radius {r} centred on ({cx}, {cy}).",
        ][style]
    if k == "parity":
        px, py = ("odd" if p["x"] else "even"), ("odd" if p["y"] else "even")
        return [
            f"{s} stop on a cell whose x is {px} and whose y is {py}.",
            f"{s} stand where x is {px} and y is {py}.",
            f"{s} land on the cells with x % 2 == {p['x']} and y % 2 == {p['y']}.",
            f"{s} end a move on a square of {px} x and {py} y.",
        ][style]
    if k == "slow":
        q, sp = p["pursuer"], p["speed"]
        return [
            f"Pursuer {q} is slowed: it may move at most {sp} cell per step.",
            f"Pursuer {q} can only move {sp} cell (Manhattan) per step now.",
            f"Pursuer {q} may not move farther than {sp} from where it stands.",
            f"From now on pursuer {q} travels at speed {sp}, not 2.",
        ][style]
    if k == "diagonal":
        return [
            f"{s} stop on a cell diagonally next to the evader.",
            f"{s} stand on the four cells at a diagonal from the evader.",
            f"{s} land where both x and y differ from the evader's by exactly 1.",
            f"{s} take a corner-touching cell of the evader's cell.",
        ][style]
    if k == "guard":
        q, o, ax = p["pursuer"], p["other"], p["axis"]
        v = "x" if ax == "column" else "y"
        return [
            f"Pursuer {o} may not stop in the same {ax} as pursuer {q}.",
            f"Pursuer {o} must keep out of pursuer {q}'s {ax} ({v} equal to its {v}).",
            f"The {ax} of pursuer {q} is closed to pursuer {o}.",
            f"Pursuer {o} may not stand on a cell whose {v} equals pursuer {q}'s {v}.",
        ][style]
    raise KeyError(k)


# --------------------------------------------------------------------------- training data


#: the kinds the writer may train on, with the pieces each may be given
TRAIN_PIECES: dict[str, tuple[str, ...]] = {
    "block": ("all", "pursuers", "A", "B", "C"),
    "blocks": ("all", "pursuers"),
    "wall": ("all", "pursuers"),
    "band": ("all", "pursuers", "A", "B", "C"),
    "edge": ("all", "pursuers", "A", "B", "C"),
    "distance": ("all", "pursuers", "A", "B", "C"),
    "parity": ("pursuers", "A", "B", "C"),
    "slow": ("pursuers",),
    "diagonal": ("pursuers", "A", "B", "C"),
    "guard": ("pursuers",),
}


def random_rule(kind: str, rng: np.random.Generator, size: int = pu.DEFAULT_SIZE) -> Rule:
    """A rule of ``kind`` with parameters and pieces drawn from ``rng``."""
    pieces = TRAIN_PIECES[kind]
    spec: dict[str, Any] = {"kind": kind, "pieces": pieces[int(rng.integers(len(pieces)))]}
    if kind == "parity":
        spec.update(x=int(rng.integers(2)), y=int(rng.integers(2)))
    if kind == "slow":
        spec["speed"] = int(rng.integers(2))
    return make_rule(spec, size, rng)


#: training-only rules (:func:`ld_agents.ld.writer_grammar.primitive`): the parts a held-out
#: kind composes (a piece's line, a segment, an either-or, a negation, a pursuer's distance)
PRIMITIVES = (
    "evader_line", "pursuer_line", "pursuer_near", "segment", "two_lines", "band_except",
    "two_bands", "outside_box",
)  # fmt: skip
#: share of a trained kind's rows worded by the fixed wordings (the rest: the grammar's)
FIXED_WORDING_SHARE = 0.3


@dataclass
class WriterData:
    """(prompt, answer) rows for the writer and what they cover: per row its kind
    (``"base"`` for the shipped base's own functions) and wording (0-3 the fixed wordings of
    :func:`wording`, -1 a base function's own rule, -2 the paraphrase grammar's)."""

    rows: list[dict[str, str]]
    kinds: list[str]
    wordings: list[int]
    meta: dict[str, Any] = field(default_factory=dict)


NAMES = ("drop_forbidden_cells", "apply_new_rule", "filter_rule_cells", "remove_blocked_cells")


def training_rows(
    n: int = 1200,
    seed: int = 0,
    held_out_kinds: Sequence[str] = HELD_OUT_KINDS,
    held_out_wording: int | None = HELD_OUT_WORDING,
    base_functions: Sequence[Mapping[str, Any]] = (),
) -> WriterData:
    """``n`` (rule text -> function) rows from drawn rules, plus the base's own functions."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    kinds = [k for k in TRAIN_PIECES if k not in held_out_kinds] + [AREA_KIND, *PRIMITIVES]
    styles = [s for s in range(4) if s != held_out_wording]
    rows, used_kinds, used_styles = [], [], []
    for entry in base_functions:  # the shipped base's constraints functions, as written
        prompt = writer_prompt(entry["rule"], entry["name"])
        rows.append({"prompt": prompt, "answer": entry["source"].split("\n", 1)[1]})
        used_kinds.append("base")
        used_styles.append(-1)
    while len(rows) < n:
        kind = kinds[int(rng.integers(len(kinds)))]
        style = styles[int(rng.integers(len(styles)))]
        name = pick.choice(NAMES)
        if kind in PRIMITIVES:
            text, cond = grammar.primitive(kind, rng, pu.DEFAULT_SIZE)
            answer = BODY.format(cond=cond)
            style = -2
        else:
            rule = None if kind == AREA_KIND else random_rule(kind, rng)
            if kind not in (*grammar.PARAPHRASED, AREA_KIND) or rng.random() < FIXED_WORDING_SHARE:
                text = wording(rule, style, kind)
            else:
                text = (
                    grammar.area_paraphrase(rng) if rule is None else grammar.paraphrase(rule, rng)
                )
                style = -2
            answer = reference_source(rule, name, kind).split("\n", 1)[1]
        rows.append({"prompt": writer_prompt(text, name), "answer": answer})
        used_kinds.append(kind)
        used_styles.append(style)
    return WriterData(
        rows,
        used_kinds,
        used_styles,
        {
            "seed": seed,
            "held_out_kinds": list(held_out_kinds),
            "held_out_wording": held_out_wording,
            "n": n,
        },
    )


# --------------------------------------------------------------------------- validation


@dataclass
class RuleCheck:
    """The outcome of checking one written function."""

    ok: bool
    checks: list[str]
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "failure": self.failure}


#: checks that need no rule semantics
GENERIC_CHECKS = ("loads in the sandbox", "returns three cell lists", "keeps order, only drops")
#: checks that come from a rule's semantics (a pursuer's own cell may go either way: the
#: env lets a piece stay where it is whatever the rules)
SEMANTIC_CHECKS = ("drops exactly the forbidden cells", "passes lists the rule does not bind")


def sample_boards(
    n: int, seed: int, size: int = pu.DEFAULT_SIZE, area: bool = False
) -> list[tuple[dict[str, Any], list[list[list[int]]]]]:
    """(state, prev) pairs: random positions, each pursuer's cells within 2 as ``prev``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        flat = rng.choice(size * size, size=4, replace=False)
        cells = [(int(v) // size, int(v) % size) for v in flat]
        restricted = None
        if area and rng.random() < 0.75:
            restricted = list(pu.draw_area(rng, size, cells))
        prev = []
        for p in cells[:3]:
            near = [[p[0] + dx, p[1] + dy] for dx, dy in pu.MOVES]
            near = [c for c in near if 0 <= c[0] < size and 0 <= c[1] < size]
            keep = rng.random(len(near)) < 0.85
            prev.append([c for c, k in zip(near, keep, strict=True) if k])
        state = {
            "size": size,
            "pursuers": [list(c) for c in cells[:3]],
            "evader": list(cells[3]),
            "restricted": restricted,
        }
        out.append((state, prev))
    return out


def expected_lists(rule: Rule | None, state: Mapping[str, Any], prev: Sequence[Any]) -> list:
    """What a right function returns: each list without the cells forbidden to its pursuer."""
    if rule is None:  # the restricted area read from the state
        area = state["restricted"]
        return [[c for c in cells if not pu.in_area(c, tuple(area) if area else None)]
                for cells in prev]  # fmt: skip
    board = Board.of(state["pursuers"], state["evader"], state["size"])
    out = []
    for i, cells in enumerate(prev):
        forbidden = rule.forbidden(board, PURSUERS[i])
        out.append([c for c in cells if tuple(c) not in forbidden])
    return out


def check_rule_function(
    source: str,
    name: str,
    worker: Any,
    rule: Rule | None = None,
    semantics: bool = True,
    n_boards: int = 60,
    seed: int = 0,
    area: bool = False,
) -> RuleCheck:
    """Validate a written function in the sandbox ``worker``.

    With ``semantics`` (a rule spec, or ``rule=None`` with ``area=True`` for the restricted
    area), every sampled board's answer must equal :func:`expected_lists`; without, only
    :data:`GENERIC_CHECKS` run.
    """
    check_count("n_boards", n_boards)
    ran = [GENERIC_CHECKS[0]]
    key = f"writer/{name}"
    loaded = worker.load(key, source, name)
    if not loaded.ok:
        return RuleCheck(False, ran, f"{loaded.kind}: {loaded.message}")
    try:
        ran += list(GENERIC_CHECKS[1:]) + (list(SEMANTIC_CHECKS) if semantics else [])
        for state, prev in sample_boards(n_boards, seed, area=area or rule is None):
            result = worker.call(key, [state, prev])
            if not result.ok:
                return RuleCheck(False, ran, f"{result.kind}: {result.message}")
            bad = _generic_problem(result.value, prev, state)
            if bad is None and semantics:
                # a pursuer's own cell is free either way: staying is always legal
                got = _without_own_cells(result.value, state)
                want = _without_own_cells(expected_lists(rule, state, prev), state)
                if got != want:
                    bad = _semantic_problem(got, want, prev, state)
            if bad is not None:
                return RuleCheck(False, ran, bad)
        return RuleCheck(True, ran)
    finally:
        worker.unload(key)


def _without_own_cells(lists: Sequence[Any], state: Mapping[str, Any]) -> list[Any]:
    """Each pursuer's list without its own cell (the env lets a piece stay where it is,
    whatever the rules, so a function may keep or drop it)."""
    return [
        [c for c in cells if list(c) != list(state["pursuers"][i])] for i, cells in enumerate(lists)
    ]


def _generic_problem(value: Any, prev: Sequence[Any], state: Mapping[str, Any]) -> str | None:
    if not isinstance(value, list) or len(value) != 3:
        return f"returned {str(value)[:80]}, not three cell lists"
    wrong = check_cell_lists(value, state)  # the stage's own type: [3.0, 14.0] is no cell
    if wrong is not None:
        return wrong
    for i, (got, given) in enumerate(zip(value, prev, strict=True)):
        if not isinstance(got, list):
            return f"list {i} is {type(got).__name__}, not a list of cells"
        it = iter(given)
        if not all(any(c == g for g in it) for c in got):
            return f"list {i} holds cells not in its input, or reorders them"
    return None


def _semantic_problem(got: list, want: list, prev: Sequence[Any], state: Any) -> str:
    for i in range(3):
        if got[i] != want[i]:
            kept = [c for c in got[i] if c not in want[i]]
            dropped = [c for c in want[i] if c not in got[i]]
            what = f"kept forbidden {kept[:3]}" if kept else f"dropped allowed {dropped[:3]}"
            where = f"pursuers {state['pursuers']}, evader {state['evader']}"
            return f"pursuer {PURSUERS[i]}: {what} ({where})"
    return "differs from the rule's semantics"


# --------------------------------------------------------------------------- training

#: every linear layer of Gemma-3 (the writer needs more capacity than selection)
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def base_constraint_functions(base: Any) -> list[dict[str, Any]]:
    """The shipped base's own constraints-stage functions as (rule, name, source) rows."""
    return [
        {"rule": fe.rule, "name": fe.name, "source": fe.source}
        for fe in base.stage_candidates(STAGE)
        if fe.rule and fe.source
    ]


def writer_train_config(output_dir: str, **overrides: Any) -> Any:
    """The writer's LoRA recipe: r=16 on every linear layer, lr 5e-4, batch 8, 250 steps."""
    from ld_agents.lora import LoraTrainConfig

    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "r": 16,
        "alpha": 32,
        "target_modules": ALL_LINEAR,
        "learning_rate": 5e-4,
        "batch_size": 8,
        "max_steps": 250,
        "max_length": 320,
        "save_steps": 25,
    }
    settings.update(overrides)
    return LoraTrainConfig(**settings)


def train_writer(
    output_dir: str, n_rows: int = 1200, seed: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Train the writer adapter on :func:`training_rows`; return the run record."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.llm.embedded import embedded_model_dir
    from ld_agents.lora import train_lora

    base = shipped_base("pursuit", emergencies=["restricted_area"])
    data = training_rows(n_rows, seed, base_functions=base_constraint_functions(base))
    config = writer_train_config(output_dir, seed=seed, extra={"writer": data.meta}, **overrides)
    return train_lora(embedded_model_dir(), data.rows, config)
