"""Paraphrases for the writer's training data: many wordings of one rule, drawn at random.

The writer (:mod:`ld_agents.ld.rule_writer`) must read a rule it has not seen worded that
way. Four fixed wordings per kind teach it the wordings, not the reading: with them it
recalled its training sentences and failed on new ones. This module words a rule from
parts (a subject, a verb, a phrase for the cells) each drawn from a pool, so the same rule
comes in hundreds of sentences and the model has to read the numbers and the words that
matter.

The held-out wording of every kind (``rule_writer.wording(rule, HELD_OUT_WORDING)``) is
kept out: its sentence skeletons and subjects ("No one can", "No hunter can", "...
cannot") are not in these pools, and ``tests/test_writer_grammar.py`` checks that no
training text holds a held-out skeleton.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ld_envs.pursuit_rules import PIECES, PURSUERS, Rule

#: the rule kinds :func:`paraphrase` words (the held-out kinds are not among them)
PARAPHRASED = ("block", "band", "edge", "distance", "parity", "slow", "diagonal")

_ALL = [
    "No piece may", "No piece is allowed to", "None of the pieces may", "Nobody may",
    "No piece, pursuer or evader, may", "Pieces must not", "Every piece is forbidden to",
    "Neither the pursuers nor the evader may", "None of the pieces can",
]  # fmt: skip
_PURSUERS = [
    "No pursuer may", "Pursuers must not", "None of the pursuers may", "No chaser may",
    "The pursuers are not allowed to", "No pursuer is permitted to", "The three pursuers may not",
    "No pursuer can",
]  # fmt: skip
_NAMED = [
    "Pursuer {q} may not", "Pursuer {q} must not", "Pursuer {q} is not allowed to",
    "{q} may not", "Pursuer {q} is forbidden to", "Only pursuer {q} is barred; it may not",
]  # fmt: skip
_VERBS = ["enter", "step on", "stand on", "move to", "stop on", "go to", "occupy", "land on"]
_CELLS = ["a cell with", "any cell where", "the cells with", "a square where", "cells having"]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def subject(pieces: Sequence[str], rng: np.random.Generator) -> str:
    """A random subject for the pieces a rule binds ("No pursuer may", "Pursuer B must not")."""
    if tuple(pieces) == PIECES:
        return _pick(rng, _ALL)
    if tuple(pieces) == PURSUERS:
        return _pick(rng, _PURSUERS)
    named = " and ".join(p for p in pieces if p in PURSUERS)
    return _pick(rng, _NAMED).format(q=named)


def value_range(v: str, lo: int, hi: int, rng: np.random.Generator) -> str:
    """An inclusive range of coordinate ``v`` in words."""
    return _pick(rng, [
        f"{v} from {lo} to {hi}", f"{lo} <= {v} <= {hi}", f"{v} in {lo}..{hi}",
        f"{v} between {lo} and {hi} (inclusive)", f"{v} at least {lo} and at most {hi}",
        f"{v} in the range [{lo}, {hi}]", f"{v} no less than {lo} and no more than {hi}",
        f"{v} = {lo}, ..., {hi}",
    ])  # fmt: skip


def _sentence(s: str, predicate: str, rng: np.random.Generator) -> str:
    return f"{s} {_pick(rng, _VERBS)} {predicate}."


def paraphrase(rule: Rule, rng: np.random.Generator) -> str:
    """A random wording of a trained rule kind (block, band, edge, distance, parity, slow,
    diagonal)."""
    p = dict(rule.params)
    s = subject(rule.pieces, rng)
    k = rule.kind
    cells = _pick(rng, _CELLS)
    if k == "block":
        x0, y0, x1, y1 = p["cells"]
        xr, yr = value_range("x", x0, x1, rng), value_range("y", y0, y1, rng)
        return _sentence(s, _pick(rng, [
            f"{cells} {xr} and {yr}", f"the rectangle {xr}, {yr}",
            f"the box from ({x0}, {y0}) to ({x1}, {y1}), corners included",
            f"the block spanning columns {x0}-{x1} and rows {y0}-{y1}",
        ]), rng)  # fmt: skip
    if k == "band":
        v = "y" if p["axis"] == "row" else "x"
        lo, hi = p["span"]
        return _sentence(s, _pick(rng, [
            f"{cells} {value_range(v, lo, hi, rng)}",
            f"the {p['axis']}s {lo} to {hi}", f"the strip {value_range(v, lo, hi, rng)}",
            f"the {'horizontal' if v == 'y' else 'vertical'} band {v} = {lo}..{hi}",
        ]), rng)  # fmt: skip
    if k == "edge":
        w = p["width"]
        return _sentence(s, _pick(rng, [
            f"the cells less than {w} away from the border",
            f"the outermost {w} rows and columns", f"a cell within {w} cells of a side",
            f"the margin of the board, {w} cells thick",
            f"{cells} x < {w}, y < {w}, x > n - {w + 1} or y > n - {w + 1}",
            f"the first or last {w} rows or columns of the board",
        ]), rng)  # fmt: skip
    if k == "distance":
        (cx, cy), r = p["center"], p["radius"]
        return _sentence(s, _pick(rng, [
            f"{cells} |x - {cx}| + |y - {cy}| <= {r}",
            f"the cells at most {r} steps from ({cx}, {cy})",
            f"the area within Manhattan radius {r} around ({cx}, {cy})",
            f"a cell whose Manhattan distance to ({cx}, {cy}) is {r} or less",
            f"the neighbourhood of ({cx}, {cy}) up to distance {r}",
        ]), rng)  # fmt: skip
    if k == "parity":
        px, py = ("odd" if p["x"] else "even"), ("odd" if p["y"] else "even")
        return _sentence(s, _pick(rng, [
            f"{cells} x {px} and y {py}", f"an {px}-x, {py}-y cell",
            f"{cells} x % 2 == {p['x']} and y % 2 == {p['y']}",
            f"cells with an {px} x coordinate and an {py} y coordinate",
            f"{cells} x is {px} and y is {py}",
        ]), rng)  # fmt: skip
    if k == "slow":
        q, sp = p["pursuer"], p["speed"]
        unit = "cell" if sp == 1 else "cells"
        return _pick(rng, [
            f"Pursuer {q} may move only {sp} {unit} per step.",
            f"Pursuer {q}'s speed drops to {sp}.",
            f"Pursuer {q} is limited to {sp} {unit} of movement (Manhattan) each step.",
            f"Pursuer {q} may not get more than {sp} {unit} away from its cell in one step.",
            f"Each step, pursuer {q} moves a Manhattan distance of {sp} or less.",
            f"Pursuer {q} is hurt: at most {sp} {unit} per move.",
        ])  # fmt: skip
    if k == "diagonal":
        return _sentence(s, _pick(rng, [
            f"{cells} |x - ex| == 1 and |y - ey| == 1 (ex, ey: the evader)",
            "the four diagonal neighbours of the evader",
            "the cells (ex +- 1, ey +- 1), where (ex, ey) is the evader",
            "the cells one step diagonally away from the evader",
        ]), rng)  # fmt: skip
    raise KeyError(k)


def area_paraphrase(rng: np.random.Generator) -> str:
    """A random wording of the drawn 5x5 restricted area read from ``state['restricted']``."""
    where = _pick(rng, [
        "state['restricted'] holds its corners [x0, y0, x1, y1], inclusive, or None",
        "state['restricted'] gives [x0, y0, x1, y1], both corners inside, or None if unset",
        "state['restricted'] = [x0, y0, x1, y1] when there is one, else None",
    ])  # fmt: skip
    who, verb = subject(PIECES, rng), _pick(rng, _VERBS)
    return _pick(rng, [
        f"A restricted square is closed ({where}); {who[0].lower()}{who[1:]} {verb} it.",
        f"{who} {verb} the restricted area ({where}).",
        f"The block in state['restricted'] is off limits to every piece ({where}).",
    ])  # fmt: skip


def primitive(kind: str, rng: np.random.Generator, size: int) -> tuple[str, str]:
    """(text, condition) of a training-only primitive: rules the env does not play, kept as
    parts that new kinds compose (a piece's line, a segment, an either-or, a negation)."""
    named = int(rng.integers(4))  # 0-2: one named pursuer; 3: a group
    if named < 3 and kind != "pursuer_line":
        q = PURSUERS[named]
        s, guard = subject((q,), rng), f"i == {named} and "
    else:
        s, guard = subject(PIECES if rng.random() < 0.5 else PURSUERS, rng), ""
    cells = _pick(rng, _CELLS)
    if kind == "evader_line":
        axis = _pick(rng, ["row", "column"])
        v, a = ("x", 0) if axis == "column" else ("y", 1)
        text = _sentence(s, _pick(rng, [
            f"the evader's {axis}", f"{cells} the same {v} as the evader",
            f"{cells} {v} equal to the evader's {v}", f"the {axis} the evader is in",
        ]), rng)  # fmt: skip
        return text, f"{guard}c[{a}] == e[{a}]"
    if kind == "pursuer_line":  # a group may not use one pursuer's line (never a named one)
        j = int(rng.integers(3))
        q, axis = PURSUERS[j], _pick(rng, ["row", "column"])
        v, a = ("x", 0) if axis == "column" else ("y", 1)
        text = _sentence(s, _pick(rng, [
            f"pursuer {q}'s {axis}", f"{cells} the same {v} as pursuer {q}",
            f"{cells} {v} equal to pursuer {q}'s {v}", f"the {axis} where pursuer {q} stands",
        ]), rng)  # fmt: skip
        return text, f"c[{a}] == ps[{j}][{a}]"
    if kind == "pursuer_near":
        j, r = int(rng.integers(3)), int(rng.integers(1, 3))
        q = PURSUERS[j]
        return _pick(rng, [
            f"No other pursuer may stop within distance {r} of pursuer {q}.",
            f"Pursuers other than {q} must stay more than {r} cells (Manhattan) from pursuer {q}.",
            f"The cells within {r} of pursuer {q} are closed to the other pursuers.",
            f"Keep the other pursuers at a Manhattan distance above {r} from pursuer {q}.",
        ]), f"i != {j} and abs(c[0] - ps[{j}][0]) + abs(c[1] - ps[{j}][1]) <= {r}"  # fmt: skip
    if kind == "segment":
        axis = _pick(rng, ["row", "column"])
        at = int(rng.integers(1, size - 1))
        lo = int(rng.integers(0, size // 2))
        hi = int(rng.integers(lo + 1, size))
        v, w = ("y", "x") if axis == "row" else ("x", "y")
        a, b = (1, 0) if axis == "row" else (0, 1)
        text = _sentence(s, _pick(rng, [
            f"the {axis} {v} = {at} where {value_range(w, lo, hi, rng)}",
            f"{v} = {at} for {value_range(w, lo, hi, rng)}",
            f"the segment of {axis} {at} from {w} = {lo} to {w} = {hi}",
            f"{cells} {v} = {at} and {value_range(w, lo, hi, rng)}",
        ]), rng)  # fmt: skip
        return text, f"{guard}c[{a}] == {at} and {lo} <= c[{b}] <= {hi}"
    if kind == "two_lines":
        y, x = (int(v) for v in rng.integers(1, size - 1, size=2))
        text = _sentence(s, _pick(rng, [
            f"row y = {y} or column x = {x}", f"{cells} y = {y} or x = {x}",
            f"either the row {y} or the column {x}", f"a cell on row {y}, nor one on column {x}",
        ]), rng)  # fmt: skip
        return text, f"{guard}(c[1] == {y} or c[0] == {x})"
    if kind == "band_except":
        v = _pick(rng, ["x", "y"])
        a = 0 if v == "x" else 1
        lo = int(rng.integers(0, size // 2))
        hi = int(rng.integers(lo + 4, size))
        g0 = int(rng.integers(lo + 1, hi - 1))
        g1 = g0 + int(rng.integers(0, 2))
        gap = f"{v} = {g0}" if g0 == g1 else value_range(v, g0, g1, rng)
        text = _sentence(s, _pick(rng, [
            f"{cells} {value_range(v, lo, hi, rng)}, except {gap}",
            f"{cells} {value_range(v, lo, hi, rng)} unless {gap}",
            f"{cells} {value_range(v, lo, hi, rng)}; {gap} stays open",
        ]), rng)  # fmt: skip
        return text, f"{guard}{lo} <= c[{a}] <= {hi} and not {g0} <= c[{a}] <= {g1}"
    if kind == "two_bands":
        (x0, x1), (y0, y1) = (sorted(int(v) for v in rng.integers(0, size, size=2)) for _ in "xy")
        text = _sentence(s, _pick(rng, [
            f"{cells} {value_range('x', x0, x1, rng)} or {value_range('y', y0, y1, rng)}",
            f"either the columns {x0}-{x1} or the rows {y0}-{y1}",
            f"a cell in one of two strips: {value_range('x', x0, x1, rng)}; "
            f"{value_range('y', y0, y1, rng)}",
        ]), rng)  # fmt: skip
        return text, f"{guard}({x0} <= c[0] <= {x1} or {y0} <= c[1] <= {y1})"
    if kind == "outside_box":
        x0, y0 = (int(v) for v in rng.integers(0, size // 2, size=2))
        x1, y1 = x0 + int(rng.integers(4, size // 2)), y0 + int(rng.integers(4, size // 2))
        text = _sentence(s, _pick(rng, [
            f"a cell outside the box with x from {x0} to {x1} and y from {y0} to {y1}",
            f"anything outside the area {x0} <= x <= {x1}, {y0} <= y <= {y1}",
            f"a cell beyond the rectangle ({x0}, {y0})-({x1}, {y1})",
        ]), rng)  # fmt: skip
        return text, f"{guard}not ({x0} <= c[0] <= {x1} and {y0} <= c[1] <= {y1})"
    raise KeyError(kind)


def skeleton(text: str) -> str:
    """``text`` with its numbers and piece letters masked (for checking held-out wordings)."""
    text = re.sub(r"\d+", "#", " ".join(text.split()).lower())
    return re.sub(r"\b(pursuer|pursuers) [abc]\b", r"\1 @", text)
