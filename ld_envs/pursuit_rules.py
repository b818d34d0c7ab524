"""Extra pursuit rules as data: which target cells are forbidden, for which pieces.

A rule is a :class:`Rule`: a registered *kind*, its parameters, the pieces it binds and
the text an LLM reads. Its semantics is one pure function of the board, so the env, the
scripted pursuers, the validators of generated code, the prompts and the tests all ask the
same thing: ``rule.forbidden(board, piece)``, the set of cells that ``piece`` may not move
onto (stay on the board and keep the usual movement rules besides).

The schema (what ``gym.make("Pursuit-v0", rules=[...])`` and ``--rule JSON`` take)::

    {"kind": "wall", "axis": "column", "at": 10, "span": [3, 17], "gap": [9, 11],
     "pieces": "all", "text": "optional wording; the kind's own wording by default"}

* ``kind``: one of :data:`KINDS` (``ld_envs.pursuit_rules.KINDS``, each with its
  parameters and their meaning in :func:`describe_kinds`);
* the kind's parameters; one left out takes the kind's default, if it has one, or is
  drawn: a parameter given as ``"random"`` or left out (or a kind given as a bare string,
  ``"wall"``) is drawn per episode from the env's seed, in a placement that keeps capture
  possible and fits the parameters given (a wall's gap inside its given span, a guard's
  two pursuers distinct); one that no value can fit is refused, naming it;
* ``pieces``: who is bound: ``"all"`` (every piece, the evader included), ``"pursuers"``,
  one pursuer ``"A"``/``"B"``/``"C"``, or a list of those names; each kind has a default.
  Pieces that leave a rule nothing to forbid are refused (``slow`` must bind its slowed
  pursuer, ``guard`` the pursuer it keeps out, ``diagonal`` a pursuer; with that pursuer
  drawn per episode, every pursuer it may be drawn as);
* ``text``: the rule as an LLM reads it.

Semantics common to every kind: the forbidden cells of a step are computed from the board
at the start of that side's move (the pursuers' positions before they move for the
pursuers; the board after the pursuers' move for the evader). An illegal target leaves the
piece in place and counts a violation, as the restricted area does. A piece may always
stay where it is.

Kinds whose forbidden cells move with the state (:attr:`RuleKind.moving`): ``slow`` (one
pursuer's reach), ``diagonal`` (cells diagonal to the evader) and ``guard`` (one pursuer's
row or column, forbidden to another).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ld_envs.errors import InvalidArgument, unknown_name

Cell = tuple[int, int]
Rect = tuple[int, int, int, int]

#: piece names in board order: the three pursuers, then the evader
PIECES = ("A", "B", "C", "evader")
PURSUERS = ("A", "B", "C")
#: what ``pieces`` may say besides a list of names
PIECE_GROUPS: dict[str, tuple[str, ...]] = {
    "all": PIECES,
    "pursuers": PURSUERS,
    **{name: (name,) for name in PIECES},
}
RANDOM = "random"
#: the evader's moves besides staying (its regions are what these reach)
_UNIT_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))


class InvalidRule(InvalidArgument):
    """A rule spec is malformed or contradicts the board (the message names the field)."""


@dataclass(frozen=True)
class Board:
    """What a rule's forbidden cells may depend on: the positions and the board size."""

    pursuers: tuple[Cell, Cell, Cell]
    evader: Cell
    size: int

    @classmethod
    def of(cls, pursuers: Sequence[Sequence[int]], evader: Sequence[int], size: int) -> Board:
        ps = tuple((int(p[0]), int(p[1])) for p in pursuers)
        return cls(ps, (int(evader[0]), int(evader[1])), int(size))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shapes


def rect_cells(rect: Sequence[int]) -> set[Cell]:
    """The cells of an inclusive rectangle ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = rect
    return {(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}


def line_cells(axis: str, at: int, lo: int, hi: int) -> set[Cell]:
    """Cells ``x == at`` (a column) or ``y == at`` (a row) from ``lo`` to ``hi`` inclusive."""
    if axis == "column":
        return {(at, v) for v in range(lo, hi + 1)}
    return {(v, at) for v in range(lo, hi + 1)}


def diamond_cells(center: Sequence[int], radius: int, size: int) -> set[Cell]:
    """Board cells within Manhattan distance ``radius`` of ``center``."""
    cx, cy = int(center[0]), int(center[1])
    return {
        (x, y)
        for x in range(max(0, cx - radius), min(size, cx + radius + 1))
        for y in range(max(0, cy - radius), min(size, cy + radius + 1))
        if abs(x - cx) + abs(y - cy) <= radius
    }


def _whole(axis: str, lo: int, hi: int, size: int) -> set[Cell]:
    """Whole rows (``axis == "row"``: y in [lo, hi]) or columns (x in [lo, hi])."""
    return set().union(
        *(
            line_cells("row" if axis == "row" else "column", v, 0, size - 1)
            for v in range(lo, hi + 1)
        )
    )


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Param:
    """One parameter of a rule kind."""

    name: str
    help: str
    #: checks a value against the board size; returns an error text or ``None``
    check: Callable[[Any, int], str | None]
    #: draws a value from a generator for a board size (``None``: cannot be drawn)
    draw: Callable[[np.random.Generator, int], Any] | None = None
    default: Any = None


@dataclass(frozen=True)
class RuleKind:
    """A kind of rule: its parameters, forbidden cells, wording and default pieces."""

    name: str
    summary: str
    params: tuple[Param, ...]
    #: (params, board, piece) -> forbidden cells for that piece
    cells: Callable[[Mapping[str, Any], Board, str], set[Cell]]
    #: params -> the rule as an LLM reads it (``{who}`` names the bound pieces)
    wording: Callable[[Mapping[str, Any]], str]
    pieces: str = "all"
    moving: bool = False


def _int_in(
    lo_fn: Callable[[int], int], hi_fn: Callable[[int], int]
) -> Callable[[Any, int], str | None]:
    def check(v: Any, size: int) -> str | None:
        lo, hi = lo_fn(size), hi_fn(size)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            return f"must be an int in [{lo}, {hi}], got {v!r}"
        return (
            None if lo <= v <= hi else f"must lie in [{lo}, {hi}] on a {size}x{size} board, got {v}"
        )

    return check


def _ints(n: int, what: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = (
            isinstance(v, (list, tuple))
            and len(v) == n
            and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v)
        )
        return None if ok else f"must be {what} ({n} ints), got {v!r}"

    return check


def _check_rect(v: Any, size: int) -> str | None:
    bad = _ints(4, "a rectangle [x0, y0, x1, y1]")(v)
    if bad:
        return bad
    x0, y0, x1, y1 = v
    if not (0 <= x0 <= x1 < size and 0 <= y0 <= y1 < size):
        return f"must satisfy 0 <= x0 <= x1 < {size} and 0 <= y0 <= y1 < {size}, got {list(v)}"
    if x0 == 0 or y0 == 0 or x1 == size - 1 or y1 == size - 1:
        return (
            f"touches the board's edge ({list(v)}): a block against the edge can leave a pocket "
            f"cell where the evader could never be caught; keep x0, y0 >= 1 and x1, y1 <= "
            f"{size - 2}"
        )
    return None


def _check_rects(v: Any, size: int) -> str | None:
    if not isinstance(v, (list, tuple)) or not v:
        return f"must be a non-empty list of rectangles [x0, y0, x1, y1], got {v!r}"
    for k, r in enumerate(v):
        bad = _check_rect(r, size)
        if bad:
            return f"[{k}] {bad}"
    return None


def _check_span(v: Any, size: int) -> str | None:
    bad = _ints(2, "a range [lo, hi]")(v)
    if bad:
        return bad
    return (
        None if 0 <= v[0] <= v[1] < size else f"must satisfy 0 <= lo <= hi < {size}, got {list(v)}"
    )


def _check_axis(v: Any, size: int) -> str | None:
    return None if v in ("row", "column") else f"must be 'row' or 'column', got {v!r}"


def _check_pursuer(v: Any, size: int) -> str | None:
    return None if v in PURSUERS else f"must be one of {', '.join(PURSUERS)}, got {v!r}"


def _check_point(v: Any, size: int) -> str | None:
    bad = _ints(2, "a cell [x, y]")(v)
    if bad:
        return bad
    return (
        None
        if 0 <= v[0] < size and 0 <= v[1] < size
        else f"is off the {size}x{size} board: {list(v)}"
    )


def _draw_rect(rng: np.random.Generator, size: int, side: int = 4) -> list[int]:
    w, h = (int(v) for v in rng.integers(2, side + 1, size=2))
    x0 = int(rng.integers(1, size - w))
    y0 = int(rng.integers(1, size - h))
    return [x0, y0, x0 + w - 1, y0 + h - 1]


#: draws of one block for ``blocks`` before its three blocks are found not to fit
_RECT_TRIES = 1000


def _draw_rects(rng: np.random.Generator, size: int) -> list[list[int]]:
    rects: list[list[int]] = []
    for _ in range(_RECT_TRIES):
        r = _draw_rect(rng, size, side=3)
        grown = (r[0] - 2, r[1] - 2, r[2] + 2, r[3] + 2)  # keep a corridor between blocks
        if not any(rect_cells(grown) & rect_cells(o) for o in rects):
            rects.append(r)
            if len(rects) == 3:
                return rects
    raise InvalidRule(
        f"rects: cannot be drawn: three blocks with corridors between them do not fit on a "
        f"{size}x{size} board (not in {_RECT_TRIES} draws); give the rects, or use a "
        f"larger board (rule kind 'blocks')"
    )


def _fmt_rect(r: Sequence[int]) -> str:
    return f"x from {r[0]} to {r[2]} and y from {r[1]} to {r[3]}"


def _block_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    return rect_cells(p["cells"])


def _blocks_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    return set().union(*(rect_cells(r) for r in p["rects"]))


def _wall_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    lo, hi = p["span"]
    g0, g1 = p["gap"]
    return line_cells(p["axis"], p["at"], lo, hi) - line_cells(p["axis"], p["at"], g0, g1)


def _check_wall(p: Mapping[str, Any], size: int) -> str | None:
    lo, hi = p["span"]
    g0, g1 = p["gap"]
    if not lo < g0 <= g1 < hi:
        return f"gap: must lie strictly inside span {list(p['span'])}, got {list(p['gap'])}"
    return None


def _draw_wall(
    rng: np.random.Generator, size: int, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A wall drawn around the parameters ``given``: the whole wall is drawn as always (the
    same draws from ``rng``, so the seeds keep their walls); a drawn gap or span that does
    not fit a given one is drawn again, inside the given span or around the given gap."""
    given = dict(given or {})
    at = int(rng.integers(3, size - 3))
    lo = int(rng.integers(1, size // 3))
    hi = int(rng.integers(2 * size // 3, size - 1))
    g0 = int(rng.integers(lo + 1, hi - 2))
    out = {
        "axis": ["row", "column"][int(rng.integers(2))],
        "at": at,
        "span": [lo, hi],
        "gap": [g0, g0 + 2],
    }
    out.update(given)
    (lo, hi), (g0, g1) = out["span"], out["gap"]
    if lo < g0 <= g1 < hi or ("span" in given and "gap" in given):
        return out  # fits, or both given (make_rule then names the gap)
    if "gap" not in given:
        if hi - lo < 2:
            raise InvalidRule(
                f"gap: cannot be drawn for span {list(out['span'])}: the gap lies strictly "
                f"inside the span, so the span needs hi - lo >= 2 (e.g. [{lo}, {lo + 2}]); "
                f"give a wider span, or give the gap too (rule kind 'wall')"
            )
        width = min(3, hi - lo - 1)
        g0 = int(rng.integers(lo + 1, hi - width + 1))
        out["gap"] = [g0, g0 + width - 1]
        return out
    if g0 < 1 or g1 > size - 2:
        raise InvalidRule(
            f"span: cannot be drawn around gap {list(out['gap'])}: the span must reach past "
            f"the gap on both sides, so the gap needs 1 <= g0 and g1 <= {size - 2} on a "
            f"{size}x{size} board; move the gap, or give the span too (rule kind 'wall')"
        )
    lo = int(rng.integers(min(1, g0 - 1), g0))
    hi = int(rng.integers(g1 + 1, max(g1 + 2, size - 1)))
    out["span"] = [lo, hi]
    return out


def _band_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    return _whole(p["axis"], p["span"][0], p["span"][1], b.size)


def _draw_band(
    rng: np.random.Generator, size: int, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A band; its axis and span are independent, so a given one is simply kept."""
    width = int(rng.integers(1, 3))
    lo = int(rng.integers(size // 3, 2 * size // 3 - width))
    out = {"axis": ["row", "column"][int(rng.integers(2))], "span": [lo, lo + width - 1]}
    out.update(given or {})
    return out


def _edge_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    w, n = p["width"], b.size
    return {(x, y) for x in range(n) for y in range(n) if min(x, y, n - 1 - x, n - 1 - y) < w}


def _distance_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    return diamond_cells(p["center"], p["radius"], b.size)


def _check_distance(p: Mapping[str, Any], size: int) -> str | None:
    (cx, cy), r = p["center"], p["radius"]
    if min(cx, cy) - r < 1 or max(cx, cy) + r > size - 2:
        return (
            f"center: the cells within {r} of {list(p['center'])} touch the board's edge; a "
            f"shape against the edge can leave a pocket cell where the evader could never be "
            f"caught: keep the center in [{r + 1}, {size - 2 - r}]"
        )
    return None


def _draw_distance(
    rng: np.random.Generator, size: int, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A diamond off the edge, drawn around a given center or radius (the usual draws
    first, so the seeds keep their diamonds; one that does not fit is drawn again)."""
    given = dict(given or {})
    r = int(rng.integers(1, 4))
    room = r + 1 < size - 1 - r  # a small board may have no center for this radius
    center = [int(v) for v in rng.integers(r + 1, size - 1 - r, size=2)] if room else None
    out: dict[str, Any] = {"center": center, "radius": r}
    out.update(given)
    if len(given) == 2 or (out["center"] is not None and _check_distance(out, size) is None):
        return out
    if "center" not in given:
        if "radius" not in given:  # the drawn radius left no center: a smaller one
            out["radius"] = int(rng.integers(1, max(1, (size - 3) // 2) + 1))
        r = out["radius"]
        if r + 1 > size - 2 - r:
            raise InvalidRule(
                f"center: cannot be drawn for radius {r} on a {size}x{size} board: the cells "
                f"within {r} of it would touch the board's edge wherever it lies; give a "
                f"radius of at most {(size - 3) // 2} (rule kind 'distance')"
            )
        out["center"] = [int(v) for v in rng.integers(r + 1, size - 1 - r, size=2)]
        return out
    cx, cy = out["center"]
    room = min(cx, cy, size - 1 - cx, size - 1 - cy) - 1  # the largest radius off the edge
    if room < 1:
        raise InvalidRule(
            f"radius: cannot be drawn for center {list(out['center'])}: the cells within 1 "
            f"of it already touch the board's edge; keep the center in [2, {size - 3}] "
            f"(rule kind 'distance')"
        )
    out["radius"] = int(rng.integers(1, min(room, 3) + 1))
    return out


def _parity_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    n = b.size
    return {(x, y) for x in range(p["x"] % 2, n, 2) for y in range(p["y"] % 2, n, 2)}


def _slow_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    if piece != p["pursuer"]:
        return set()
    ox, oy = b.pursuers[PURSUERS.index(piece)]
    reach = p["speed"]
    return {
        (ox + dx, oy + dy)
        for dx in range(-2, 3)
        for dy in range(-2, 3)
        if reach < abs(dx) + abs(dy) <= 2
    }


def _diagonal_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    ex, ey = b.evader
    return {(ex + dx, ey + dy) for dx in (-1, 1) for dy in (-1, 1)}


def _guard_cells(p: Mapping[str, Any], b: Board, piece: str) -> set[Cell]:
    if piece != p["other"]:
        return set()
    x, y = b.pursuers[PURSUERS.index(p["pursuer"])]
    return line_cells(p["axis"], x if p["axis"] == "column" else y, 0, b.size - 1)


def _check_guard(p: Mapping[str, Any], size: int) -> str | None:
    if p["other"] == p["pursuer"]:
        return f"other: must differ from pursuer ({p['pursuer']}), got {p['other']!r}"
    return None


def _draw_guard(
    rng: np.random.Generator, size: int, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Two distinct pursuers and an axis; a drawn pursuer never equals a given one."""
    given = dict(given or {})
    first, second = (PURSUERS[int(k)] for k in rng.choice(3, size=2, replace=False))
    out = {"pursuer": first, "other": second, "axis": ["row", "column"][int(rng.integers(2))]}
    out.update(given)
    if out["pursuer"] == out["other"] and not ("pursuer" in given and "other" in given):
        drawn = "other" if "other" not in given else "pursuer"
        choices = [p for p in PURSUERS if p != out["pursuer" if drawn == "other" else "other"]]
        out[drawn] = choices[int(rng.integers(len(choices)))]
    return out


def _pick(values: Sequence[Any]) -> Callable[[np.random.Generator, int], Any]:
    return lambda rng, size: values[int(rng.integers(len(values)))]


_AXIS = Param(
    "axis",
    "'row' (cells with the same y) or 'column' (the same x)",
    _check_axis,
    _pick(["row", "column"]),
)
_PURSUER = Param("pursuer", "the pursuer it concerns: A, B or C", _check_pursuer, _pick(PURSUERS))

KINDS: dict[str, RuleKind] = {}


def register_kind(kind: RuleKind) -> RuleKind:
    """Add a rule kind (refuses a name taken)."""
    if kind.name in KINDS:
        raise InvalidArgument(f"rule kind {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


for _kind in (
    RuleKind(
        "block",
        "one rectangle of cells (the paper's restricted area is a 5x5 one)",
        (
            Param(
                "cells",
                "the rectangle [x0, y0, x1, y1], inclusive corners, off the edge",
                _check_rect,
                lambda rng, n: _draw_rect(rng, n, side=5),
            ),
        ),
        _block_cells,
        lambda p: f"{{who}} may enter the cells with {_fmt_rect(p['cells'])}.",
    ),
    RuleKind(
        "blocks",
        "several rectangles at once",
        (
            Param(
                "rects",
                "a list of rectangles [x0, y0, x1, y1], each off the edge",
                _check_rects,
                _draw_rects,
            ),
        ),
        _blocks_cells,
        lambda p: (
            "{who} may enter any of these blocks: "
            + "; ".join(f"the cells with {_fmt_rect(r)}" for r in p["rects"])
            + "."
        ),
    ),
    RuleKind(
        "wall",
        "a row or column segment with a gap to pass through",
        (
            _AXIS,
            Param(
                "at",
                "the row's y (axis row) or the column's x (axis column)",
                _int_in(lambda n: 1, lambda n: n - 2),
            ),
            Param("span", "the wall's extent [lo, hi] along its line", _check_span),
            Param("gap", "the open part [g0, g1], strictly inside the span", _check_span),
        ),
        _wall_cells,
        lambda p: (
            f"{{who}} may enter the wall on the {p['axis']} "
            f"{'x' if p['axis'] == 'column' else 'y'} = {p['at']}: its cells from "
            f"{'y' if p['axis'] == 'column' else 'x'} = {p['span'][0]} to {p['span'][1]}, "
            f"except the gap from {p['gap'][0]} to {p['gap'][1]}."
        ),
    ),
    RuleKind(
        "band",
        "whole rows or columns across the board",
        (
            _AXIS,
            Param("span", "the band's rows (axis row: y) or columns (x), [lo, hi]", _check_span),
        ),
        _band_cells,
        lambda p: (
            f"{{who}} may enter the {p['axis']}s with {'y' if p['axis'] == 'row' else 'x'} "
            f"from {p['span'][0]} to {p['span'][1]}."
        ),
    ),
    RuleKind(
        "edge",
        "a band along the board's edge",
        (
            Param(
                "width",
                "how many rows/columns from each edge are forbidden",
                _int_in(lambda n: 1, lambda n: 3),
                _pick([1, 2]),
            ),
        ),
        _edge_cells,
        lambda p: (
            f"{{who}} may enter the cells within {p['width']} of the board's edge "
            f"(x or y below {p['width']}, or above the board's size minus {p['width'] + 1})."
        ),
    ),
    RuleKind(
        "distance",
        "the cells within a distance of a fixed point",
        (
            Param("center", "the point [x, y]", _check_point),
            Param("radius", "the Manhattan radius", _int_in(lambda n: 1, lambda n: 4)),
        ),
        _distance_cells,
        lambda p: (
            f"{{who}} may enter the cells within Manhattan distance {p['radius']} of "
            f"({p['center'][0]}, {p['center'][1]})."
        ),
    ),
    RuleKind(
        "parity",
        "a colouring: the cells whose x and y have given parities",
        (
            Param("x", "0: even x, 1: odd x", _int_in(lambda n: 0, lambda n: 1), _pick([1]), 1),
            Param("y", "0: even y, 1: odd y", _int_in(lambda n: 0, lambda n: 1), _pick([1]), 1),
        ),
        _parity_cells,
        lambda p: (
            f"{{who}} may stop on a cell whose x is {'odd' if p['x'] else 'even'} and "
            f"whose y is {'odd' if p['y'] else 'even'}."
        ),
        pieces="pursuers",
    ),
    RuleKind(
        "slow",
        "one pursuer moves at most `speed` cells per step (moves with that pursuer)",
        (
            _PURSUER,
            Param("speed", "its reach, 0 or 1", _int_in(lambda n: 0, lambda n: 1), _pick([1]), 1),
        ),
        _slow_cells,
        lambda p: (
            f"Pursuer {p['pursuer']} is slowed: it may move at most {p['speed']} cell "
            f"per step (Manhattan distance), not 2."
        ),
        pieces="pursuers",
        moving=True,
    ),
    RuleKind(
        "diagonal",
        "the four cells diagonal to the evader (move with the evader)",
        (),
        _diagonal_cells,
        lambda p: (
            "{who} may stop on a cell diagonally next to the evader "
            "(x and y both differ from the evader's by 1)."
        ),
        pieces="pursuers",
        moving=True,
    ),
    RuleKind(
        "guard",
        "the row or column of one pursuer, forbidden to another pursuer (moves with it)",
        (
            _PURSUER,
            Param("other", "the pursuer that may not enter it: A, B or C", _check_pursuer),
            _AXIS,
        ),
        _guard_cells,
        lambda p: (
            f"Pursuer {p['other']} may not stop in the same {p['axis']} as pursuer "
            f"{p['pursuer']} (the same {'x' if p['axis'] == 'column' else 'y'})."
        ),
        pieces="pursuers",
        moving=True,
    ),
):
    register_kind(_kind)

_CHECKS: dict[str, Callable[[Mapping[str, Any], int], str | None]] = {
    "wall": _check_wall,
    "distance": _check_distance,
    "guard": _check_guard,
}
#: kinds that act on some pieces only: the parameter naming the pursuer they act on
#: (``None``: any pursuer), and what ``pieces`` must then include
_ACTS_ON: dict[str, tuple[str | None, str]] = {
    "slow": ("pursuer", "the slowed pursuer"),
    "guard": ("other", "the pursuer kept out of the line"),
    "diagonal": (None, "a pursuer (the evader never stops diagonally next to itself)"),
}
#: kinds whose parameters depend on each other: ``draw(rng, size, given)`` draws the ones
#: not in ``given`` (the values the spec gives, each checked already) to fit those given
_DRAWS: dict[str, Callable[[np.random.Generator, int, Mapping[str, Any]], dict[str, Any]]] = {
    "wall": _draw_wall,
    "band": _draw_band,
    "distance": _draw_distance,
    "guard": _draw_guard,
}


# --------------------------------------------------------------------------- rules


def _who(pieces: tuple[str, ...]) -> str:
    """The subject of a rule's sentence, e.g. "No piece", "No pursuer", "Pursuer B"."""
    if pieces == PIECES:
        return "No piece"
    if pieces == PURSUERS:
        return "No pursuer"
    names = [f"pursuer {p}" if p in PURSUERS else f"the {p}" for p in pieces]
    text = " and ".join(names)
    return text[0].upper() + text[1:]


def _sentence(wording: str, pieces: tuple[str, ...]) -> str:
    """Fill a kind's wording: "No piece may enter ..." or "Pursuer B may not enter ..."."""
    who = _who(pieces)
    return wording.replace("{who} may", f"{who} may" if who.startswith("No ") else f"{who} may not")


def _pieces(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if value not in PIECE_GROUPS:
            raise InvalidRule(
                f"pieces: must be one of {', '.join(PIECE_GROUPS)} or a list of "
                f"{', '.join(PIECES)}, got {value!r}"
            )
        return PIECE_GROUPS[value]
    if isinstance(value, (list, tuple)) and value and all(v in PIECES for v in value):
        return tuple(p for p in PIECES if p in value)
    raise InvalidRule(
        f"pieces: must be one of {', '.join(PIECE_GROUPS)} or a list of "
        f"{', '.join(PIECES)}, got {value!r}"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class Rule:
    """One extra rule in force: a kind, its parameters, who it binds, and its text."""

    kind: str
    params: tuple[tuple[str, Any], ...]
    pieces: tuple[str, ...]
    text: str
    #: the wording was given by the user (kept as given), not made from the kind
    custom_text: bool = field(default=False, compare=False)

    @property
    def spec(self) -> RuleKind:
        return KINDS[self.kind]

    @property
    def moving(self) -> bool:
        """True when the forbidden cells depend on the pieces' positions."""
        return self.spec.moving

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    def binds(self, piece: str) -> bool:
        return piece in self.pieces

    def forbidden(self, board: Board, piece: str) -> frozenset[Cell]:
        """The board cells ``piece`` may not move onto under this rule, on ``board``."""
        if piece not in self.pieces:
            return frozenset()
        n = board.size
        cells = self.spec.cells(dict(self.params), board, piece)
        return frozenset(c for c in cells if 0 <= c[0] < n and 0 <= c[1] < n)

    def to_dict(self) -> dict[str, Any]:
        """The rule in the documented schema (JSON-able)."""
        out: dict[str, Any] = {"kind": self.kind}
        out.update({k: _json_value(v) for k, v in self.params})
        out["pieces"] = next(
            (g for g, ps in PIECE_GROUPS.items() if ps == self.pieces), None
        ) or list(self.pieces)
        out["text"] = self.text
        return out


def describe_kinds() -> str:
    """Every registered kind with its parameters (for help texts and error messages)."""
    lines = []
    for k in KINDS.values():
        params = ", ".join(p.name for p in k.params) or "no parameters"
        lines.append(f"{k.name} ({params}; pieces default {k.pieces!r}): {k.summary}")
    return "\n".join(lines)


def make_rule(
    spec: Mapping[str, Any] | str | Rule,
    size: int,
    rng: np.random.Generator | None = None,
) -> Rule:
    """Build a :class:`Rule` from the schema, drawing ``"random"`` parameters from ``rng``.

    Raises :class:`InvalidRule` naming the field on a malformed or impossible spec.
    """
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, Mapping):
        raise InvalidRule(
            f"a rule is a kind name or a mapping like {{'kind': 'wall', ...}}, got "
            f"{type(spec).__name__}: {spec!r}"
        )
    if "kind" not in spec:
        raise InvalidRule(
            f"kind: missing from rule {dict(spec)!r}; known kinds: {', '.join(KINDS)}"
        )
    if not isinstance(spec["kind"], str):
        raise InvalidRule(
            f"kind: must be a kind name (one of {', '.join(KINDS)}), got "
            f"{type(spec['kind']).__name__} {spec['kind']!r}"
        )
    if spec["kind"] not in KINDS:
        raise unknown_name("rule kind", spec["kind"], list(KINDS))
    kind = KINDS[spec["kind"]]
    names = {p.name for p in kind.params}
    unknown = set(spec) - names - {"kind", "pieces", "text"}
    if unknown:
        raise InvalidRule(
            f"{sorted(unknown)[0]}: not a field of rule kind {kind.name!r}; its fields: "
            f"{', '.join(sorted(names | {'pieces', 'text'}))}"
        )
    values = {
        p.name: spec.get(p.name, p.default if p.default is not None else RANDOM)
        for p in kind.params
    }
    given = {k: v for k, v in values.items() if not _is_random(v)}
    for p in kind.params:  # the given values first: the drawn ones are drawn to fit them
        if p.name in given:
            bad = p.check(given[p.name], size)
            if bad:
                raise InvalidRule(f"{p.name}: {bad} (rule kind {kind.name!r}: {p.help})")
    pieces = _pieces(spec.get("pieces", kind.pieces))
    _check_bound_pieces(kind.name, values, pieces)
    if len(given) < len(values) and kind.name in _DRAWS:
        if rng is None:
            raise InvalidRule(f"rule {kind.name!r} has parameters drawn per episode; pass a seed")
        drawn = _DRAWS[kind.name](rng, size, given)
    else:
        drawn = {}
    params: dict[str, Any] = {}
    for p in kind.params:
        value = values[p.name]
        if _is_random(value):
            if p.name in drawn:
                value = drawn[p.name]
            elif p.draw is not None and rng is not None:
                value = p.draw(rng, size)
            else:
                raise InvalidRule(
                    f"{p.name}: required by rule kind {kind.name!r} ({p.help})"
                    + ("" if rng is None else "; it cannot be drawn")
                )
            bad = p.check(value, size)
            if bad:
                raise InvalidRule(f"{p.name}: {bad} (rule kind {kind.name!r}: {p.help})")
        params[p.name] = tuple(_freeze(value)) if isinstance(value, (list, tuple)) else value
    check = _CHECKS.get(kind.name)
    if check is not None:
        bad = check(params, size)
        if bad:
            raise InvalidRule(bad + f" (rule kind {kind.name!r})")
    text = spec.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise InvalidRule(f"text: must be a non-empty string, got {text!r}")
    return Rule(
        kind.name,
        tuple(params.items()),
        pieces,
        text if text is not None else _sentence(kind.wording(params), pieces),
        custom_text=text is not None,
    )


def _check_bound_pieces(kind: str, values: Mapping[str, Any], pieces: tuple[str, ...]) -> None:
    """Refuse ``pieces`` that leave a rule of ``kind`` nothing to forbid (it would read as a
    rule and never act): they must bind the pursuer it acts on, or, where that pursuer is
    drawn per episode, every pursuer it may be drawn as."""
    if kind not in _ACTS_ON:
        return
    param, what = _ACTS_ON[kind]
    bound = set(pieces) & set(PURSUERS)
    got = f"(rule kind {kind!r}), got {list(pieces)}"
    if param is None:
        if not bound:
            raise InvalidRule(f"pieces: must include {what} {got}")
        return
    value = values[param]
    if not _is_random(value) and value not in pieces:
        raise InvalidRule(f"pieces: must include {what}, {value} {got}")
    if _is_random(value) and bound != set(PURSUERS):
        raise InvalidRule(
            f"pieces: {param} is drawn per episode and may be any pursuer, so pieces must "
            f"bind every pursuer; give {param}, or bind every pursuer {got}"
        )


def _is_random(value: Any) -> bool:
    """Whether a spec's value asks for a draw (``"random"``; an array is never one)."""
    return isinstance(value, str) and value == RANDOM


def _freeze(value: Sequence[Any]) -> list[Any]:
    return [tuple(v) if isinstance(v, (list, tuple)) else int(v) for v in value]


def draws_per_episode(spec: Any) -> bool:
    """Whether a rule spec leaves a parameter to be drawn per episode."""
    if isinstance(spec, Rule):
        return False
    if isinstance(spec, str):
        spec = {"kind": spec}
    kind_name = spec.get("kind") if isinstance(spec, Mapping) else None
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        return False  # make_rule names what is wrong
    kind = KINDS[kind_name]
    return any(_is_random(spec.get(p.name, RANDOM if p.default is None else p.default))
               for p in kind.params)  # fmt: skip


def parse_rules(value: Any) -> list[Any]:
    """Normalise the ``rules`` argument: a list of specs (a JSON string is parsed)."""
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith(("[", "{")):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise InvalidRule(f"rules: not valid JSON ({exc}): {value!r}") from exc
        else:
            value = [value]
    if isinstance(value, (Mapping, Rule)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidRule(f"rules: must be a list of rule specs, got {type(value).__name__}")
    return list(value)


# --------------------------------------------------------------------------- boards


def forbidden_sets(rules: Iterable[Rule], board: Board) -> dict[str, frozenset[Cell]]:
    """Per piece name, the union of the cells the rules forbid it on ``board``."""
    out: dict[str, set[Cell]] = {p: set() for p in PIECES}
    for rule in rules:
        for piece in rule.pieces:
            out[piece] |= rule.forbidden(board, piece)
    return {p: frozenset(c) for p, c in out.items()}


def forbidden_grid(rules: Sequence[Rule], board: Board) -> np.ndarray:
    """int8 (4, size, size): 1 where piece A, B, C or the evader may not move now."""
    grid = np.zeros((4, board.size, board.size), dtype=np.int8)
    for k, cells in enumerate(forbidden_sets(rules, board).values()):
        if cells:
            xs, ys = zip(*cells, strict=True)
            grid[k, list(xs), list(ys)] = 1
    return grid


def rules_text(rules: Sequence[Rule]) -> str:
    """The rules in force as an LLM reads them, one sentence each ("" when none)."""
    return " ".join(r.text for r in rules)


def capture_pockets(
    rules: Sequence[Rule], size: int, area_cells: Iterable[Cell] = ()
) -> list[Cell]:
    """Cells the evader may stand on where the static rules leave fewer than three cells
    (its own and its four neighbours) that distinct pursuers may enter: there it could
    never be caught. Moving rules are left to the capture test of every kind."""
    board = Board(((0, 0), (0, 0), (0, 0)), (0, 0), size)
    static = [r for r in rules if not r.moving]
    sets = forbidden_sets(static, board)
    blocked = set(area_cells)
    pockets = []
    for x in range(size):
        for y in range(size):
            if (x, y) in sets["evader"] or (x, y) in blocked:
                continue
            near = [(x, y), (x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)]
            near = [c for c in near if 0 <= c[0] < size and 0 <= c[1] < size and c not in blocked]
            allowed = [[c for c in near if c not in sets[p]] for p in PURSUERS]
            if not _three_distinct(allowed):
                pockets.append((x, y))
    return pockets


def _three_distinct(options: list[list[Cell]]) -> bool:
    """Whether A, B, C can each take a distinct cell from their own option list."""
    a_opts, b_opts, c_opts = options
    return any(b != a and any(c not in (a, b) for c in c_opts) for a in a_opts for b in b_opts)


def static_forbidden(rules: Sequence[Rule], size: int) -> dict[str, frozenset[Cell]]:
    """Per piece, the cells the rules that do not move with the state forbid."""
    board = Board(((0, 0), (0, 0), (0, 0)), (0, 0), size)
    return forbidden_sets([r for r in rules if not r.moving], board)


def reachable(start: Cell, moves: Sequence[Cell], size: int, blocked: Iterable[Cell]) -> set[Cell]:
    """Cells a piece at ``start`` can reach by repeated ``moves`` avoiding ``blocked``."""
    blocked = set(blocked)
    seen = {start}
    frontier = [start]
    while frontier:
        x, y = frontier.pop()
        for dx, dy in moves:
            c = (x + dx, y + dy)
            if 0 <= c[0] < size and 0 <= c[1] < size and c not in blocked and c not in seen:
                seen.add(c)
                frontier.append(c)
    return seen


def start_problem(
    rules: Sequence[Rule],
    size: int,
    pursuers: Sequence[Cell],
    evader: Cell,
    pursuer_moves: Sequence[Cell],
    area_cells: Iterable[Cell] = (),
    pockets: Collection[Cell] | None = None,
) -> str | None:
    """Why a start cannot lead to a capture under the static rules (``None``: it can).

    The evader's region (where its unit moves can take it) must hold no pocket cell, and
    every pursuer must be able to reach a cell next to that region with its own moves.
    ``pockets``: :func:`capture_pockets` of the same rules and area, when the caller has
    them already (computed here otherwise).
    """
    area = set(area_cells)
    sets = static_forbidden(rules, size)
    for name, cell in zip(PIECES, [*pursuers, evader], strict=True):
        if cell in sets[name]:
            return f"{name} starts on {cell}, which the rules forbid it"
    region = reachable(evader, _UNIT_MOVES, size, sets["evader"] | area)
    if pockets is None:
        pockets = capture_pockets(rules, size, area)
    pockets = set(pockets) & region
    if pockets:
        return f"the evader can reach {min(pockets)}, where it could never be caught"
    near = {
        (x + dx, y + dy) for x, y in region for dx, dy in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
    }
    for name, cell in zip(PURSUERS, pursuers, strict=True):
        if not reachable(cell, pursuer_moves, size, sets[name] | area) & near:
            return f"pursuer {name} at {cell} can never reach the evader's region"
    return None


@dataclass(frozen=True)
class StartRegion:
    """Where a start may put each piece so that :func:`start_problem` finds nothing wrong:
    the evader anywhere in ``evader`` (one region its unit moves connect, holding no
    pocket), pursuer A, B, C anywhere in its entry of ``pursuers`` (the cells it may stand
    on from which its moves reach a cell next to that region). A start also needs four
    distinct cells and no capture at once; those are the game's, not the rules'."""

    evader: tuple[Cell, ...]
    pursuers: tuple[tuple[Cell, ...], tuple[Cell, ...], tuple[Cell, ...]]


def _components(size: int, moves: Sequence[Cell], blocked: set[Cell]) -> dict[Cell, frozenset]:
    """Per free cell, the set of free cells that ``moves`` connect it with."""
    out: dict[Cell, frozenset] = {}
    for x in range(size):
        for y in range(size):
            if (x, y) not in blocked and (x, y) not in out:
                comp = frozenset(reachable((x, y), moves, size, blocked))
                out.update(dict.fromkeys(comp, comp))
    return out


def start_regions(
    rules: Sequence[Rule],
    size: int,
    pursuer_moves: Sequence[Cell],
    area_cells: Iterable[Cell] = (),
    pockets: Collection[Cell] | None = None,
) -> list[StartRegion]:
    """Every region the evader may start in under the static rules, with the cells each
    pursuer may start on for it (see :class:`StartRegion`); empty when the rules leave the
    evader no region where it can be caught. Pursuer moves must be symmetric (a move and
    its reverse), as the game's are. ``pockets``: :func:`capture_pockets` of the same rules
    and area, when the caller has them already (computed here otherwise)."""
    area = set(area_cells)
    sets = static_forbidden(rules, size)
    pockets = set(capture_pockets(rules, size, area) if pockets is None else pockets)
    evader_blocked = set(sets["evader"]) | area
    comps = [_components(size, pursuer_moves, set(sets[name]) | area) for name in PURSUERS]
    seen: set[Cell] = set()
    regions = []
    for x in range(size):
        for y in range(size):
            if (x, y) in evader_blocked or (x, y) in seen:
                continue
            region = reachable((x, y), _UNIT_MOVES, size, evader_blocked)
            seen |= region
            if region & pockets:
                continue
            near = region | {(cx + dx, cy + dy) for cx, cy in region for dx, dy in _UNIT_MOVES}
            cells = []
            for comp in comps:
                reach = {comp[c] for c in near if c in comp}
                cells.append(tuple(sorted(set().union(*reach))))
            if all(cells):
                regions.append(StartRegion(tuple(sorted(region)), tuple(cells)))  # type: ignore[arg-type]
    return regions
