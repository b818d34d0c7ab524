"""The pursuit game of the Logic Distillation paper: three pursuers chase one evader.

The rules live here as small pure functions (``legal_pursuer_targets``,
``resolve_pursuers``, ``captured``, ...) that the env, the scripted and LD policies, the
prompts and the tests all call; :class:`PursuitEnv` only holds state, draws from
``self.np_random`` and renders.

Cells are ``(x, y)`` tuples with ``0 <= x, y < size``; a restricted area is
``(x0, y0, x1, y1)`` with inclusive corners, or ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ld_envs import pursuit_rules
from ld_envs.errors import (
    NOT_STARTED,
    InvalidAction,
    InvalidArgument,
    InvalidObservation,
    InvalidStart,
    guard_observation,
    unknown_name,
)

logger = logging.getLogger(__name__)

Cell = tuple[int, int]
Area = tuple[int, int, int, int]

#: The 13 pursuer offsets with |dx| + |dy| <= 2; ``(0, 0)`` (stay) first.
MOVES: list[Cell] = [
    (0, 0),
    (1, 0), (-1, 0), (0, 1), (0, -1),
    (2, 0), (-2, 0), (0, 2), (0, -2),
    (1, 1), (1, -1), (-1, 1), (-1, -1),
]  # fmt: skip
#: Action entry meaning "no readable choice": always illegal, counted as a violation.
NO_CHOICE = 13
N_PURSUER_ACTIONS = 14
#: The evader's 5 moves (Manhattan distance <= 1); ``(0, 0)`` (stay) first.
EVADER_MOVES: list[Cell] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
PURSUER_NAMES = ("A", "B", "C")

PURSUER_SPEED = 2
EVADER_SPEED = 1
#: Captured when every pursuer is at Manhattan distance < CAPTURE_DISTANCE of the evader.
CAPTURE_DISTANCE = 2
MAX_STEPS = 100
#: More than this many violations in an episode ends it (failure with violation).
MAX_VIOLATIONS = 7
AREA_SIDE = 5
DEFAULT_SIZE = 21
#: the largest board (the rules' per-cell tables and a frame grow with its square)
MAX_SIZE = 1000
#: With extra rules, starts refused by the rules before one is drawn among the legal
#: cells directly (a seed keeps the start it had with any rule set that needs fewer).
START_TRIES = 100_000
#: Draws of the area and the rules drawn per episode when they leave no legal start.
START_REDRAWS = 100
#: draws of rules with parameters drawn per episode until one keeps capture possible
RULE_DRAWS = 200
#: such rules are checked at construction: drawn until this many draws keep capture
#: possible (at most RULE_DRAWS draws; fewer kept: a warning, one or none: refused)
RULE_CHECK_KEPT = 10
#: the rule draws for each restricted area drawn again after the first
RULE_DRAWS_PER_AREA = RULE_DRAWS // 10

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's Figure 5 start: blue (3,8), (14,19), (17,2); orange (20,18).
    "figure5": {"pursuers": [(3, 8), (14, 19), (17, 2)], "evader": (20, 18)},
}

OUTCOMES = ("success", "failure_without_violation", "failure_with_violation")

_MOVE_INDEX: dict[Cell, int] = {m: i for i, m in enumerate(MOVES)}
_EVADER_MOVE_INDEX: dict[Cell, int] = {m: i for i, m in enumerate(EVADER_MOVES)}


# --------------------------------------------------------------------------- rules


def manhattan(a: Sequence[int], b: Sequence[int]) -> int:
    """Manhattan distance |ax - bx| + |ay - by|."""
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def on_board(cell: Sequence[int], size: int) -> bool:
    """True when ``cell`` lies on the ``size`` x ``size`` board."""
    return 0 <= cell[0] < size and 0 <= cell[1] < size


def in_area(cell: Sequence[int], area: Area | None) -> bool:
    """True when ``cell`` lies in the restricted area (never when there is none)."""
    if area is None:
        return False
    return area[0] <= cell[0] <= area[2] and area[1] <= cell[1] <= area[3]


def area_from_corner(corner: Sequence[int], side: int = AREA_SIDE) -> Area:
    """The ``side`` x ``side`` block whose lowest corner is ``corner``."""
    x0, y0 = int(corner[0]), int(corner[1])
    return (x0, y0, x0 + side - 1, y0 + side - 1)


def area_touches_edge(area: Area, size: int) -> bool:
    """True when the block lies on or against the board's edge (or off it)."""
    return area[0] <= 0 or area[1] <= 0 or area[2] >= size - 1 or area[3] >= size - 1


def enterable(cell: Sequence[int], size: int, area: Area | None) -> bool:
    """True when a piece may stand on ``cell`` (on the board, outside the area)."""
    return on_board(cell, size) and not in_area(cell, area)


def pursuer_move_legal(
    origin: Cell,
    target: Cell | None,
    size: int,
    area: Area | None,
    blocked: Sequence[Cell],
    forbidden: Collection[Cell] = (),
) -> bool:
    """Whether a pursuer at ``origin`` may move to ``target``.

    Legal: within Manhattan distance ``PURSUER_SPEED`` (staying counts), on the board,
    outside the restricted area, not onto a cell in ``blocked`` (the other pursuers'
    cells) and not onto a cell the extra rules forbid it (``forbidden``, see
    :mod:`ld_envs.pursuit_rules`; staying is always allowed). The evader's cell is allowed:
    a pursuer may share it.
    """
    if target is None:
        return False
    target = tuple(target)
    return (
        manhattan(origin, target) <= PURSUER_SPEED
        and enterable(target, size, area)
        and target not in blocked
        and (target == tuple(origin) or target not in forbidden)
    )


def legal_pursuer_targets(
    pursuers: Sequence[Cell],
    index: int,
    size: int,
    area: Area | None,
    forbidden: Collection[Cell] = (),
) -> list[Cell]:
    """Cells pursuer ``index`` may move to with every other piece where it stands now.

    Listed in ``MOVES`` order; this is the "selection" shown to LLM policies.
    """
    x, y = pursuers[index]
    others = [tuple(p) for j, p in enumerate(pursuers) if j != index]
    targets = ((x + dx, y + dy) for dx, dy in MOVES)
    return [
        t
        for t in targets
        if enterable(t, size, area) and t not in others and (t == (x, y) or t not in forbidden)
    ]


def resolve_pursuers(
    pursuers: Sequence[Cell],
    targets: Sequence[Cell | None],
    size: int,
    area: Area | None,
    forbidden: Sequence[Collection[Cell]] | None = None,
) -> tuple[list[Cell], list[bool]]:
    """Apply one joint pursuer move, resolved in order A, B, C.

    A is checked against B's and C's current cells, B against A's new cell and C's
    current cell, C against both new cells. An illegal choice (``None`` included) leaves
    that pursuer where it is. ``forbidden[i]``: the cells the extra rules forbid pursuer i
    this step. Returns the new cells and, per pursuer, whether its choice was illegal (one
    violation each).
    """
    cells = [tuple(p) for p in pursuers]
    illegal = [False, False, False]
    for i in range(3):
        blocked = [cells[j] for j in range(3) if j != i]
        target = None if targets[i] is None else tuple(targets[i])
        extra = () if forbidden is None else forbidden[i]
        if pursuer_move_legal(cells[i], target, size, area, blocked, extra):
            cells[i] = target
        else:
            illegal[i] = True
    return cells, illegal


def evader_targets(
    evader: Cell,
    pursuers: Sequence[Cell],
    size: int,
    area: Area | None,
    forbidden: Collection[Cell] = (),
) -> list[Cell | None]:
    """Per entry of ``EVADER_MOVES``, the cell it reaches, or ``None`` when illegal.

    The evader moves at most 1, stays on the board and outside the area, and never
    steps onto a pursuer nor onto a cell the extra rules forbid it (``forbidden``); staying
    is always legal, even when a pursuer shares its cell.
    """
    blocked = {tuple(p) for p in pursuers} | set(forbidden)
    out: list[Cell | None] = [tuple(evader)]
    for dx, dy in EVADER_MOVES[1:]:
        t = (evader[0] + dx, evader[1] + dy)
        out.append(t if enterable(t, size, area) and t not in blocked else None)
    return out


def captured(pursuers: Sequence[Cell], evader: Cell) -> bool:
    """True when every pursuer is within Manhattan distance < 2 of the evader."""
    return all(manhattan(p, evader) < CAPTURE_DISTANCE for p in pursuers)


def encode_targets(pursuers: Sequence[Cell], targets: Sequence[Cell | None]) -> np.ndarray:
    """Turn three target cells (``None`` = unreadable) into a ``MultiDiscrete`` action.

    A target the 13 offsets cannot express becomes ``NO_CHOICE``.
    """
    if len(targets) != 3:
        raise InvalidAction(f"expected 3 targets (A, B, C), got {len(targets)}: {targets!r}")
    action = np.full(3, NO_CHOICE, dtype=np.int64)
    for i, (p, t) in enumerate(zip(pursuers, targets, strict=True)):
        if t is not None:
            action[i] = _MOVE_INDEX.get((int(t[0]) - p[0], int(t[1]) - p[1]), NO_CHOICE)
    return action


def decode_action(pursuers: Sequence[Cell], action: Sequence[int]) -> list[Cell | None]:
    """The three target cells an action names (``None`` for ``NO_CHOICE``)."""
    return [
        None if a == NO_CHOICE else (p[0] + MOVES[a][0], p[1] + MOVES[a][1])
        for p, a in zip(pursuers, action, strict=True)
    ]


def steps_lower_bound(pursuers: Sequence[Cell], evader: Cell) -> int:
    """Fewest steps any pursuer strategy needs to capture an evader that stays still.

    Pursuer i must end within distance 1 of the evader and covers at most 2 per step,
    so it needs ceil((d_i - 1) / 2) steps; the slowest pursuer sets the bound (at least
    one step). An evader that flees can only lengthen this, so the tables report average
    steps against it; one that walks into the pursuers could be caught sooner.
    """
    worst = max(manhattan(p, evader) for p in pursuers)
    return max(1, -(-(worst - 1) // PURSUER_SPEED))


def draw_area(rng: np.random.Generator, size: int, avoid: Sequence[Cell] = ()) -> Area:
    """Draw a 5x5 restricted block that does not touch the edge and holds no ``avoid`` cell."""
    lo, hi = 1, size - AREA_SIDE - 1  # x0 in [1, size-6] keeps x1 <= size-2
    for _ in range(1000):
        x0, y0 = (int(v) for v in rng.integers(lo, hi + 1, size=2))
        area = area_from_corner((x0, y0))
        if not any(in_area(c, area) for c in avoid):
            return area
    raise InvalidStart(f"no 5x5 restricted area on a {size}x{size} board avoids {list(avoid)}")


def draw_start(rng: np.random.Generator, size: int, area: Area | None) -> tuple[list[Cell], Cell]:
    """Draw distinct start cells outside the area, with no immediate capture."""
    while True:
        flat = rng.choice(size * size, size=4, replace=False)
        cells = [(int(v) // size, int(v) % size) for v in flat]
        if any(in_area(c, area) for c in cells):
            continue
        pursuers, evader = cells[:3], cells[3]
        if not captured(pursuers, evader):
            return pursuers, evader


def start_in_region(
    region: pursuit_rules.StartRegion, evader: Cell
) -> tuple[list[Cell], Cell] | None:
    """A start with the evader on ``evader`` and each pursuer on a cell of its own list in
    ``region``: four distinct cells, not already a capture; ``None`` when there is none.

    Some pursuer must stand 2 or more from the evader (else it is a capture), and three
    candidates per pursuer always leave one clear of the other two, so trying the first
    three cells of each list (the far ones for one pursuer) decides it."""
    options = [[c for c in cells if c != evader] for cells in region.pursuers]
    for far in range(3):
        lists = [
            [c for c in options[i] if manhattan(c, evader) >= CAPTURE_DISTANCE][:3]
            if i == far
            else options[i][:3]
            for i in range(3)
        ]
        for a in lists[0]:
            for b in lists[1]:
                if b == a:
                    continue
                for c in lists[2]:
                    if c not in (a, b):
                        return [a, b, c], evader
    return None


def draw_start_in(
    rng: np.random.Generator, regions: Sequence[pursuit_rules.StartRegion]
) -> tuple[list[Cell], Cell] | None:
    """Draw a start among the cells ``regions`` allow: the evader uniformly among their
    cells, then each pursuer among its own (redrawn when two cells coincide or it is a
    capture); ``None`` when no start fits them."""
    cells = [(k, e) for k, region in enumerate(regions) for e in region.evader]
    for i in rng.permutation(len(cells)):
        k, evader = cells[int(i)]
        region = regions[k]
        for _ in range(20):
            ps = [opts[int(rng.integers(len(opts)))] for opts in region.pursuers]
            if len({*ps, evader}) == 4 and not captured(ps, evader):
                return ps, evader
        start = start_in_region(region, evader)
        if start is not None:
            return start
    return None


def no_start_reason(
    rules: Sequence[pursuit_rules.Rule],
    size: int,
    area: Area | None = None,
    pockets: Collection[Cell] | None = None,
) -> str | None:
    """Why no start can lead to a capture under the static ``rules`` (and ``area``), or
    ``None`` when some start can; the free cells of each piece are named. ``pockets``:
    the rules' :func:`~ld_envs.pursuit_rules.capture_pockets` beside ``area``, when the
    caller has them already."""
    area_cells = pursuit_rules.rect_cells(area) if area is not None else set()
    forbidden = pursuit_rules.static_forbidden(rules, size)
    free = {
        name: size * size - len(set(forbidden[name]) | area_cells) for name in pursuit_rules.PIECES
    }
    counts = ", ".join(f"{name} {n}" for name, n in free.items())
    where = f" with the restricted area {area}" if area is not None else ""
    none_free = [name for name, n in free.items() if n == 0]
    if none_free:
        return (
            f"the rules forbid every cell of the {size}x{size} board{where} to "
            f"{', '.join(none_free)} (cells free per piece: {counts})"
        )
    regions = pursuit_rules.start_regions(rules, size, MOVES, area_cells, pockets)
    if not regions:
        return (
            f"every region the evader may start in{where} holds a cell where it could never "
            f"be caught, or lies out of some pursuer's reach (cells free per piece: {counts})"
        )
    if not any(start_in_region(r, e) is not None for r in regions for e in r.evader):
        return (
            f"too few free cells{where} for four distinct start cells that are not "
            f"already a capture (cells free per piece: {counts})"
        )
    return None


def is_int(value: Any) -> bool:
    """True for a Python or numpy integer, never for a bool (``True`` is not a cell or move)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def int_pair(value: Any) -> Cell | None:
    """``value`` as a cell ``(x, y)`` when it is exactly two integers (no bool, no float,
    no longer sequence); ``None`` otherwise."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        return None
    if not all(is_int(v) for v in value):
        return None
    return int(value[0]), int(value[1])


def validate_start(
    pursuers: Sequence[Sequence[int]], evader: Sequence[int], size: int, area: Area | None
) -> tuple[list[Cell], Cell]:
    """Check a user-given start and return it as tuples; raise :class:`InvalidStart`.

    Cells are exactly two integers each: floats are not cut to cells, booleans are not
    numbers, and a longer sequence is not cut to its first two."""
    if isinstance(pursuers, np.ndarray):
        pursuers = pursuers.tolist()
    cells = (
        [int_pair(p) for p in pursuers]
        if isinstance(pursuers, Sequence) and not isinstance(pursuers, (str, bytes))
        else [None]
    )
    ev = int_pair(evader)
    if len(cells) != 3 and ev is not None:
        raise InvalidStart(
            f"expected 3 pursuer cells (x, y), one for each of A, B, C; got {pursuers!r}"
        )
    if len(cells) != 3 or None in cells or ev is None:
        raise InvalidStart(
            f"a start is three pursuer cells [(x, y)] * 3 and one evader cell (x, y), each "
            f"two integers; got pursuers={pursuers!r}, evader={evader!r}"
        )
    ps: list[Cell] = cells  # type: ignore[assignment]  # no None left
    for name, c in [*zip(PURSUER_NAMES, ps, strict=True), ("evader", ev)]:
        if not on_board(c, size):
            raise InvalidStart(
                f"{name} start {c} is off the {size}x{size} board (0 <= x, y < {size})"
            )
        if in_area(c, area):
            raise InvalidStart(f"{name} start {c} lies in the restricted area {area}")
    if len(set([*ps, ev])) != 4:
        raise InvalidStart(f"start cells must be distinct, got pursuers={ps}, evader={ev}")
    if captured(ps, ev):
        raise InvalidStart(f"start {ps} vs {ev} is already a capture")
    return ps, ev


# --------------------------------------------------------------------------- fast tables
# Per (size, area): for every cell, a bit set of the moves that stay on the board and out
# of the area. The env combines it with the other pieces' cells each step; rows of the
# int8 mask are looked up from the bit set instead of being rebuilt.

_PURSUER_ROWS = np.zeros((1 << 13, N_PURSUER_ACTIONS), dtype=np.int8)
for _bits in range(1 << 13):
    _PURSUER_ROWS[_bits, :13] = [(_bits >> k) & 1 for k in range(13)]
_EVADER_ROWS = np.array([[(b >> k) & 1 for k in range(5)] for b in range(32)], dtype=np.int8)


def _static_bits(
    size: int, area: Area | None, moves: Sequence[Cell], forbidden: np.ndarray | None = None
) -> list[list[int]]:
    """Per cell, the bit set of ``moves`` that stay on the board, out of the area and off
    the ``forbidden`` cells (a (size, size) bool grid; the stay move is never removed)."""
    xs, ys = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    bits = np.zeros((size, size), dtype=np.int64)
    for k, (dx, dy) in enumerate(moves):
        tx, ty = xs + dx, ys + dy
        ok = (tx >= 0) & (tx < size) & (ty >= 0) & (ty < size)
        if area is not None:
            ok &= ~((tx >= area[0]) & (tx <= area[2]) & (ty >= area[1]) & (ty <= area[3]))
        if forbidden is not None and (dx, dy) != (0, 0):
            ok &= ~forbidden[np.clip(tx, 0, size - 1), np.clip(ty, 0, size - 1)]
        bits |= ok.astype(np.int64) << k
    return bits.tolist()


def pursuer_action_mask(
    pursuers: Sequence[Cell],
    size: int,
    area: Area | None,
    forbidden: Sequence[Collection[Cell]] | None = None,
) -> np.ndarray:
    """The (3, 14) int8 mask: ``mask[i, a]`` is 1 when pursuer i's move a is legal with
    every other piece where it stands now (``forbidden[i]``: the cells the extra rules
    forbid pursuer i). ``NO_CHOICE`` is always 0."""
    mask = np.zeros((3, N_PURSUER_ACTIONS), dtype=np.int8)
    for i in range(3):
        extra = () if forbidden is None else forbidden[i]
        for t in legal_pursuer_targets(pursuers, i, size, area, extra):
            mask[i, _MOVE_INDEX[(t[0] - pursuers[i][0], t[1] - pursuers[i][1])]] = 1
    return mask


# --------------------------------------------------------------------------- evaders


class GreedyEvader:
    """Built-in evader that runs from the pursuers.

    Objective: among its legal moves, maximise (1) the Manhattan distance to the nearest
    pursuer, then (2) the sum of distances to all three pursuers, then (3) the number of
    legal moves it will have from the new cell (so it avoids corners). Remaining ties are
    broken uniformly from its own generator, which the env seeds from the episode seed.
    """

    name = "greedy"

    def __init__(self, seed: int | None = None, size: int = DEFAULT_SIZE) -> None:
        self.np_random = np.random.default_rng(seed)
        self.size = size

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.np_random = np.random.default_rng(seed)

    @guard_observation("pursuit")
    def act(self, obs: dict[str, np.ndarray]) -> int:
        pursuers = [tuple(p) for p in obs["pursuers"].tolist()]
        ex, ey = obs["evader"].tolist()
        mask = evader_mask(obs, "the greedy evader").tolist()
        area = tuple(obs["restricted"].tolist()) if "restricted" in obs else None
        size = self.size
        best: list[int] = []
        best_key: tuple[int, int, int] | None = None
        for k, (dx, dy) in enumerate(EVADER_MOVES):
            if not mask[k]:
                continue
            cell = (ex + dx, ey + dy)
            dists = [abs(cell[0] - p[0]) + abs(cell[1] - p[1]) for p in pursuers]
            freedom = sum(
                1
                for mx, my in EVADER_MOVES[1:]
                if enterable((cell[0] + mx, cell[1] + my), size, area)
            )
            key = (min(dists), sum(dists), freedom)
            if best_key is None or key > best_key:
                best, best_key = [k], key
            elif key == best_key:
                best.append(k)
        if len(best) == 1:
            return best[0]
        return best[int(self.np_random.integers(len(best)))]

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[int]:
        return [self.act(o) for o in observations]


def evader_mask(obs: Mapping[str, Any], who: str) -> np.ndarray:
    """The evader's (5,) move mask of ``obs``; an observation of the pursuers' side (mask
    (3, 14)) is refused naming ``who`` and what it plays."""
    mask = np.asarray(obs["action_mask"])
    if mask.shape != (len(EVADER_MOVES),):
        raise InvalidObservation(
            f"{who} plays the evader and reads the evader's observation (an action_mask of "
            f"{len(EVADER_MOVES)} moves), got one with an action_mask of shape {mask.shape} "
            "(the pursuers' side); use it as the env's evader (gym.make(..., evader=...)) "
            "or pick a pursuer policy"
        )
    return mask


class RandomEvader:
    """Built-in evader that picks uniformly among its legal moves (staying included)."""

    name = "random"

    def __init__(self, seed: int | None = None, size: int = DEFAULT_SIZE) -> None:
        self.np_random = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.np_random = np.random.default_rng(seed)

    @guard_observation("pursuit")
    def act(self, obs: dict[str, np.ndarray]) -> int:
        legal = np.flatnonzero(evader_mask(obs, "the random evader"))
        return int(legal[int(self.np_random.integers(len(legal)))])

    def act_batch(self, observations: Sequence[dict[str, np.ndarray]]) -> list[int]:
        return [self.act(o) for o in observations]


EVADERS: dict[str, type] = {"greedy": GreedyEvader, "random": RandomEvader}


# --------------------------------------------------------------------------- env


class PursuitEnv(gym.Env):
    """Three pursuers chase one evader on a square board (Logic Distillation, Fig. 5).

    ## Description
    Three pursuers (A, B, C) move up to 2 cells (Manhattan) per step; the evader, a policy
    given to the env, moves up to 1. The pursuers win when every one of them is within
    Manhattan distance 1 of the evader. The agent controls all three pursuers with one
    joint action per step; illegal choices are counted, and more than 7 end the episode.
    ``PursuitRestricted-v0`` adds a 5x5 block that no piece may enter (the paper's
    "emergency", Table 2).

    ## Action Space
    ``MultiDiscrete([14, 14, 14])``: one entry per pursuer A, B, C. Entries 0-12 index the
    13 offsets of ``MOVES`` (|dx| + |dy| <= 2, ``(0, 0)`` first); 13 (``NO_CHOICE``) means
    "no readable choice" and is always illegal. ``encode_targets`` turns target cells into
    an action. Moves resolve in order A, B, C: A is checked against B's and C's current
    cells, B against A's new cell and C's current cell, C against both new cells. A pursuer
    may move onto the evader's cell (otherwise a cornered evader could never be caught) but
    never onto another pursuer. An illegal choice (too far, off the board, into the
    restricted area, onto a pursuer, ``NO_CHOICE``) leaves that pursuer where it is and
    counts one violation.

    ## Observation Space
    ``Dict`` with
    - ``"pursuers"``: int64 (3, 2), rows A, B, C as (x, y);
    - ``"evader"``: int64 (2,), (x, y);
    - ``"action_mask"``: int8 (3, 14), the same mask as ``info["action_mask"]``;
    - ``"restricted"`` (restricted variant only): int64 (4,), (x0, y0, x1, y1) inclusive;
    - ``"forbidden"`` (only with ``rules``): int8 (4, size, size), ``[k, x, y] == 1`` where
      the extra rules forbid piece k (A, B, C, evader) to move onto (x, y) now.

    The evader policy receives the same keys from its side, with ``"action_mask"`` an int8
    (5,) mask over ``EVADER_MOVES`` and replies with an index into ``EVADER_MOVES``.

    ## Starting State
    Drawn from the seed: distinct cells, outside the restricted area, not already a
    capture, and with ``rules`` one the rules allow (no piece on a cell forbidden to it,
    capture possible). ``reset(options={"pursuers": [(x, y)] * 3, "evader": (x, y)})`` sets one;
    ``options={"preset": "figure5"}`` loads the paper's Figure 5 start (blue (3, 8),
    (14, 19), (17, 2); orange (20, 18)). In the restricted variant the block is drawn per
    episode (holding no start cell and not touching the edge) unless fixed by the
    ``restricted`` argument or ``options={"restricted": (x0, y0)}``.

    ## Rewards
    -0.1 per violation; +1 on capture; -1 when the violations end the episode.

    ## Episode End
    A step is the pursuers' move followed by the evader's reply. After the pursuers' move:
    more than 7 violations ends it (``"failure_with_violation"``, checked before capture),
    then a capture ends it (``"success"``). After the evader's move: a capture ends it
    (``"success"``); otherwise at step 100 the episode is truncated
    (``"failure_without_violation"``).

    ## Information
    ``"action_mask"`` (int8 (3, 14)), ``"violations"`` (running count), ``"outcome"``
    (``None`` while running), ``"steps"``, ``"evader_violations"`` (illegal evader choices:
    the evader then stays where it is; the episode goes on).

    ## Arguments
    ``gym.make("Pursuit-v0", render_mode=None, evader="greedy", size=21)``; ``size`` is an
    int in [8, 1000] (frames of boards wider than 73 cells draw smaller cells); ``evader`` is
    ``"greedy"``, ``"random"`` or any object with ``act(obs)`` (an LLM policy included),
    used as given: envs made with one object share it and its random generator, so give
    ``gym.make_vec(..., vectorization_mode="sync")`` a name, not an object;
    ``restricted``: ``None`` (no area), ``"random"`` (drawn per episode; the default of
    ``PursuitRestricted-v0``) or a corner ``(x0, y0)``. ``max_steps`` (100) and
    ``max_violations`` (7) follow the paper. ``rules``: extra rules, a list of rule specs
    (or a JSON string), e.g. ``gym.make("Pursuit-v0", rules=[{"kind": "wall", "axis":
    "row", "at": 10, "span": [2, 18], "gap": [9, 11]}])``; the kinds, their parameters and
    the schema are in :mod:`ld_envs.pursuit_rules`. A parameter left out or ``"random"``
    is drawn per episode from the seed, to fit the ones given. A forbidden target counts
    one violation, like the restricted area; ``env.unwrapped.rules_text()`` words the rules.
    Rules that leave no capture or no legal start possible are refused at ``gym.make``
    (``InvalidRule``; with the area drawn per episode: beside every area); so are rules with
    parameters drawn per episode when at most one of 200 draws keeps capture possible and
    leaves a legal start (a third of resets or more would find none), and a warning gives
    the share of resets that may fail when fewer than 10 do. Capture is tested on the rules
    that do not move with the state; those that do (``slow``, ``diagonal``...) are played as
    given, so three pursuers slowed to speed 0 make a legal game that is never won. With
    the area drawn per episode too, an area beside which no draw of the rules keeps capture
    possible is drawn again. ``step()`` and ``action_masks()`` before the first ``reset()`` raise
    ``InvalidAction``.

    ## References
    Chen et al., "Logic Distillation: Learning from Code Function by Function for
    Decision-making Tasks", IJCAI 2025, section 4.2 and Tables 1-2.

    ## Version History
    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["human", "rgb_array", "ansi"],
        "render_fps": 4,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        evader: str | Any = "greedy",
        size: int = DEFAULT_SIZE,
        restricted: str | Sequence[int] | None = None,
        max_steps: int = MAX_STEPS,
        max_violations: int = MAX_VIOLATIONS,
        rules: Any = None,
    ) -> None:
        if not is_int(size) or not 8 <= size <= MAX_SIZE:
            raise InvalidArgument(
                f"size must be an int in [8, {MAX_SIZE}] (three pursuers and a 5x5 area off "
                f"the edge need room; the paper's Figure 5 start needs 21), got {size!r}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidArgument(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not (is_int(max_steps) and is_int(max_violations)):
            raise InvalidArgument(
                f"max_steps and max_violations must be integers, got {max_steps!r}, "
                f"{max_violations!r}"
            )
        if max_steps < 1 or max_violations < 0:
            raise InvalidArgument(
                f"max_steps must be >= 1 and max_violations >= 0, got {max_steps}, {max_violations}"
            )
        self.size = int(size)
        self.render_mode = render_mode
        self.max_steps = max_steps
        self.max_violations = max_violations
        self._fixed_area: Area | None = None
        if restricted is None:
            self.has_area = False
        elif isinstance(restricted, str):
            if restricted != "random":
                raise InvalidArgument(
                    f"restricted must be None, 'random' or a corner (x0, y0), got {restricted!r}"
                )
            self.has_area = True
        else:
            self.has_area = True
            self._fixed_area = self._check_area(restricted)
        self.evader = self._make_evader(evader)
        self._rule_specs = pursuit_rules.parse_rules(rules)
        fixed = self._fixed_rules()
        #: the rules are drawn per episode (some parameter is "random")
        self._draws_rules = fixed is None
        self.rules: list[pursuit_rules.Rule] = fixed or []

        n = self.size
        obs_spaces: dict[str, spaces.Space] = {
            "pursuers": spaces.Box(0, n - 1, shape=(3, 2), dtype=np.int64),
            "evader": spaces.Box(0, n - 1, shape=(2,), dtype=np.int64),
            "action_mask": spaces.Box(0, 1, shape=(3, N_PURSUER_ACTIONS), dtype=np.int8),
        }
        if self.has_area:
            obs_spaces["restricted"] = spaces.Box(0, n - 1, shape=(4,), dtype=np.int64)
        if self._rule_specs:
            obs_spaces["forbidden"] = spaces.Box(0, 1, shape=(4, n, n), dtype=np.int8)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.MultiDiscrete([N_PURSUER_ACTIONS] * 3)

        self.area: Area | None = self._fixed_area
        self._tables_for: tuple[Any, ...] | None = None
        self._static_for: tuple[Any, ...] | None = None
        self._static: dict[str, frozenset[Cell]] = {}
        self._pockets: list[Cell] = []
        self.pursuers: list[Cell] = [(0, 0), (0, 1), (0, 2)]
        self.evader_cell: Cell = (n - 1, n - 1)
        self.steps = 0
        self.violations = 0
        self.evader_violations = 0
        self.outcome: str | None = None
        self._reset_done = False  # step() before the first reset() is refused
        self.last_action: list[Cell | None] | None = None
        self.history: list[tuple[list[Cell], Cell]] = []
        self._renderer: Any = None

    # ----------------------------------------------------------------- helpers

    def _start_problem(
        self, pursuers: Sequence[Cell] | None = None, evader: Cell | None = None
    ) -> str | None:
        """Why a start (the current one by default) cannot lead to a capture under the
        rules (None: it can)."""
        if not self.rules:
            return None
        pursuers = self.pursuers if pursuers is None else pursuers
        evader = self.evader_cell if evader is None else evader
        static, pockets = self._static_rules()
        for name, cell in zip(pursuit_rules.PIECES, [*pursuers, evader], strict=True):
            if cell in static[name]:  # the quick refusal, before the full test
                return f"{name} starts on {cell}, which the rules forbid it"
        area = pursuit_rules.rect_cells(self.area) if self.area is not None else ()
        return pursuit_rules.start_problem(
            self.rules, self.size, pursuers, evader, MOVES, area, pockets=pockets
        )

    def _static_rules(self) -> tuple[dict[str, frozenset[Cell]], list[Cell]]:
        """The static forbidden cells of this episode's rules and their pockets with this
        area (kept while the rules and the area stay)."""
        key = (self.area, tuple(self.rules))
        if self._static_for != key:
            area = pursuit_rules.rect_cells(self.area) if self.area is not None else ()
            self._static = pursuit_rules.static_forbidden(self.rules, self.size)
            self._pockets = pursuit_rules.capture_pockets(self.rules, self.size, area)
            self._static_for = key
        return self._static, self._pockets

    def _draw_start(self, redraw_area: bool) -> tuple[list[Cell], Cell]:
        """Draw a start the rules allow (any start without rules).

        Starts are drawn as without rules and redrawn until the rules allow one, so a seed
        keeps its start; after ``START_TRIES`` refusals (the rules leave few legal starts)
        the start is drawn among the legal cells directly. When the rules (with this
        episode's area) leave no legal start at all, the area (``redraw_area``) and the
        rules drawn per episode are drawn again; if they are fixed, :class:`InvalidStart`.
        """
        if not self.rules:
            return draw_start(self.np_random, self.size, self.area)
        for _ in range(START_REDRAWS):
            regions = None
            if self._static_rules()[1]:  # pockets: some starts, perhaps all, are refused
                regions = self._start_regions()
            if regions is None or any(
                start_in_region(r, e) is not None for r in regions for e in r.evader
            ):
                start = draw_start(self.np_random, self.size, self.area)
                for _ in range(START_TRIES):
                    if self._start_problem(*start) is None:
                        return start
                    start = draw_start(self.np_random, self.size, self.area)
                start = draw_start_in(self.np_random, regions or self._start_regions())
                if start is not None:
                    return start
            if not (redraw_area or self._draws_rules):
                break
            if redraw_area:
                self.area = draw_area(self.np_random, self.size)
            self.rules = self._draw_rules_and_area(redraw_area)
            self._build_tables()
        reason = no_start_reason(self.rules, self.size, self.area) or "no start was found"
        specs = [{k: v for k, v in r.to_dict().items() if k != "text"} for r in self.rules]
        raise InvalidStart(
            f"no legal start under the rules {specs}"
            + (f" (as drawn {START_REDRAWS} times)" if redraw_area or self._draws_rules else "")
            + f": {reason}; free more cells for the pieces the rules bind"
            + ("" if self.area is None else ", or place the restricted area elsewhere")
        )

    def _start_regions(self) -> list[pursuit_rules.StartRegion]:
        area = pursuit_rules.rect_cells(self.area) if self.area is not None else ()
        pockets = self._static_rules()[1]  # kept for this episode's rules and area
        return pursuit_rules.start_regions(self.rules, self.size, MOVES, area, pockets)

    def _make_evader(self, evader: str | Any) -> Any:
        if isinstance(evader, str):
            if evader not in EVADERS:
                raise unknown_name("evader", evader, list(EVADERS))
            return EVADERS[evader](size=self.size)
        if isinstance(evader, type):  # its act() would be unbound: a TypeError at reset
            raise InvalidArgument(
                f"evader must be a policy object, not the class {evader.__name__}; pass an "
                f"instance, e.g. {evader.__name__}(...), or a name ('greedy', 'random')"
            )
        if not callable(getattr(evader, "act", None)):
            raise InvalidArgument(
                f"evader must be 'greedy', 'random' or an object with act(obs), "
                f"got {type(evader).__name__}"
            )
        return evader

    def _check_area(self, corner: Sequence[int]) -> Area:
        """The block of a corner (x0, y0), or of a whole block (x0, y0, x1, y1) as the
        observation and episode records give it; anything else is refused, never cut."""
        values = corner.tolist() if isinstance(corner, np.ndarray) else corner
        cell = int_pair(values)
        if cell is None and isinstance(values, Sequence) and len(values) == 4:
            lo, hi = int_pair(values[:2]), int_pair(values[2:])
            if lo is not None and hi is not None and area_from_corner(lo)[2:] == hi:
                cell = lo
        if cell is None:
            raise InvalidArgument(
                f"restricted must be 'random', the corner (x0, y0) of the 5x5 block or the "
                f"block (x0, y0, x0 + 4, y0 + 4), in integers; got {corner!r} (floats and "
                f"booleans are not cells; give the corner alone, e.g. restricted=(8, 8))"
            )
        area = area_from_corner(cell)
        if area_touches_edge(area, self.size):
            raise InvalidArgument(
                f"restricted area {area} touches the edge of the {self.size}x{self.size} "
                f"board; x0 and y0 must lie in [1, {self.size - AREA_SIDE - 1}] so that no "
                f"pocket cell leaves the evader uncatchable"
            )
        return area

    def _fixed_rules(self) -> list[pursuit_rules.Rule] | None:
        """The rules when none is drawn per episode (checked now); ``None`` when drawn."""
        if not self._rule_specs:
            return []  # nothing to check (the base game always has starts and captures)
        if any(pursuit_rules.draws_per_episode(spec) for spec in self._rule_specs):
            self._check_draws()
            return None
        rules = [pursuit_rules.make_rule(spec, self.size) for spec in self._rule_specs]
        # capture is checked on the rules together (the game plays them together): one rule
        # may keep the evader off the cells where another would leave it uncatchable
        pockets = pursuit_rules.capture_pockets(rules, self.size)
        if pockets:
            alone = [
                (k, rule, found)
                for k, rule in enumerate(rules)
                if (found := pursuit_rules.capture_pockets([rule], self.size))
            ]
            if len(rules) == 1:  # the rule alone: named as such
                k, rule, found = alone[0]
                raise pursuit_rules.InvalidRule(
                    f"rules[{k}] ({rule.kind}): no capture possible: the evader could never be "
                    f"caught at {found[0]} (fewer than three cells near it that distinct "
                    f"pursuers may enter); change its parameters or its pieces"
                )
            culprits = "".join(f"; rules[{k}] ({r.kind}) alone leaves {f[0]}" for k, r, f in alone)
            raise pursuit_rules.InvalidRule(
                f"rules: together they leave no capture possible: the evader could never be "
                f"caught at {pockets[0]} (fewer than three cells near it that distinct pursuers "
                f"may enter){culprits}; drop or move one of them"
            )
        # a start must exist, or reset() could never draw one (with an area drawn per
        # episode: beside some area, which reset() then finds by drawing again)
        if self.has_area and self._fixed_area is None:
            reason = self._no_free_cells(rules) or self._no_area_fits(rules)
        else:
            reason = no_start_reason(rules, self.size, self._fixed_area)
        if reason is not None:
            raise pursuit_rules.InvalidRule(
                f"rules {self._rule_specs!r}: no legal start: {reason}; free more cells for "
                f"the pieces the rules bind (narrower rules, or fewer pieces)"
            )
        return rules

    def _check_draws(self) -> None:
        """Draw the rules (seed 0) until ``RULE_CHECK_KEPT`` draws keep capture possible, at
        most ``RULE_DRAWS`` times: refuse them (``InvalidRule``) when at most one did (a
        reset, which draws up to ``RULE_DRAWS`` times, would fail on a third of seeds or
        more), warn when fewer than ``RULE_CHECK_KEPT`` did, with the share of resets
        expected to fail."""
        rng = np.random.default_rng(0)
        kept = tried = unmade = 0
        error: pursuit_rules.InvalidRule | None = None
        while tried < RULE_DRAWS and kept < RULE_CHECK_KEPT:
            tried += 1
            try:  # a draw that cannot be made counts as one that is not kept
                kept += self._one_draw(rng, self._fixed_area) is not None
            except pursuit_rules.InvalidRule as exc:
                error, unmade = error or exc, unmade + 1
        if unmade == tried and error is not None:  # no draw could be made: say why
            raise error
        if kept >= RULE_CHECK_KEPT:
            return
        failing = (1 - kept / tried) ** RULE_DRAWS
        found = (
            f"rules {self._rule_specs!r}: {kept} of {tried} draws of their random parameters "
            f"keep capture possible and leave a legal start (the others leave a cell where "
            f"the evader cannot be caught, or no start"
            + (f"; {unmade} could not be made: {error}" if unmade else "")
            + ")"
        )
        if kept <= 1:
            raise pursuit_rules.InvalidRule(
                f"{found}, so about {failing:.0%} of resets would find none; give some "
                "parameters, or drop a rule"
            )
        logger.warning(
            "%s: about %.1f%% of resets may find none and raise InvalidStart; giving some "
            "parameters avoids it",
            found,
            100 * failing,
        )

    def _no_area_fits(self, rules: Sequence[pursuit_rules.Rule]) -> str | None:
        """Why no restricted area leaves a legal start under ``rules`` (the first area's
        reason), or None at the first area that does (about 9 ms an area on 21x21)."""
        lo, hi = 1, self.size - AREA_SIDE - 1
        first = None
        for x0 in range(lo, hi + 1):
            for y0 in range(lo, hi + 1):
                reason = no_start_reason(rules, self.size, area_from_corner((x0, y0)))
                if reason is None:
                    return None
                first = first or reason
        return f"beside every restricted area the board allows, e.g. {first}"

    def _no_free_cells(self, rules: Sequence[pursuit_rules.Rule]) -> str | None:
        """Why no start fits the rules on any board (a piece with no free cell), or None."""
        forbidden = pursuit_rules.static_forbidden(rules, self.size)
        full = [name for name, cells in forbidden.items() if len(cells) == self.size**2]
        if not full:
            return None
        return (
            f"the rules forbid every cell of the {self.size}x{self.size} board to {', '.join(full)}"
        )

    def _draw_rules(self, tries: int = RULE_DRAWS) -> list[pursuit_rules.Rule]:
        """This episode's rules, parameters given as ``"random"`` drawn from the seed (up to
        ``tries`` draws until one can be made and keeps capture possible)."""
        if not self._draws_rules:
            return self.rules
        for _ in range(tries):
            try:  # a draw that cannot be made (blocks that do not fit) is drawn again
                rules = self._one_draw(self.np_random, self.area)
            except pursuit_rules.InvalidRule:
                continue
            if rules is not None:
                return rules
        raise InvalidStart(f"no placement of the rules {self._rule_specs} keeps capture possible")

    def _one_draw(
        self, rng: np.random.Generator, area: Area | None = None
    ) -> list[pursuit_rules.Rule] | None:
        """One draw of the rule specs' random parameters from ``rng``: the rules, or ``None``
        when beside ``area`` they leave capture impossible or no legal start (a draw that
        forbids every cell leaves no pocket, yet no game); ``InvalidRule``: the draw cannot
        be made."""
        rules = [pursuit_rules.make_rule(spec, self.size, rng) for spec in self._rule_specs]
        cells = pursuit_rules.rect_cells(area) if area is not None else ()
        if pursuit_rules.capture_pockets(rules, self.size, cells):
            return None
        return None if no_start_reason(rules, self.size, area, pockets=()) else rules

    def _draw_rules_and_area(
        self, redraw_area: bool, avoid: Sequence[Cell] = ()
    ) -> list[pursuit_rules.Rule]:
        """This episode's rules; where no draw of them keeps capture possible beside this
        episode's restricted area and the area is drawn per episode (``redraw_area``), the
        area is drawn again, clear of ``avoid`` (up to ``START_REDRAWS`` times)."""
        if not redraw_area:
            return self._draw_rules()
        for k in range(START_REDRAWS):
            try:  # the first area as without redraws (a seed keeps its episode); then fewer
                return self._draw_rules(RULE_DRAWS if k == 0 else RULE_DRAWS_PER_AREA)
            except InvalidStart:
                self.area = draw_area(self.np_random, self.size, avoid)
        raise InvalidStart(
            f"no placement of the rules {self._rule_specs} keeps capture possible beside the "
            f"restricted area, as drawn {START_REDRAWS} times"
        )

    def _build_tables(self) -> None:
        static = pursuit_rules.static_forbidden(self.rules, self.size) if self.rules else None
        key = (self.area, tuple(self.rules))
        if self._tables_for == key:
            return
        if static is None:
            table = _static_bits(self.size, self.area, MOVES)
            self._pbits = [table, table, table]
            self._ebits = _static_bits(self.size, self.area, EVADER_MOVES)
        else:
            grids = pursuit_rules.forbidden_grid(
                [r for r in self.rules if not r.moving], self.board()
            ).astype(bool)
            self._pbits = [_static_bits(self.size, self.area, MOVES, grids[i]) for i in range(3)]
            self._ebits = _static_bits(self.size, self.area, EVADER_MOVES, grids[3])
        self._moving = [r for r in self.rules if r.moving]
        self._tables_for = key

    def board(self) -> pursuit_rules.Board:
        """The positions the extra rules read."""
        return pursuit_rules.Board.of(self.pursuers, self.evader_cell, self.size)

    def forbidden_now(self) -> dict[str, frozenset[Cell]]:
        """Per piece (A, B, C, evader), the cells the extra rules forbid it on this board."""
        return pursuit_rules.forbidden_sets(self.rules, self.board())

    def rules_text(self) -> str:
        """The extra rules in force, as an LLM reads them ("" when none)."""
        return pursuit_rules.rules_text(self.rules)

    def _moving_forbidden(self) -> dict[str, frozenset[Cell]] | None:
        """Per piece, the cells the rules that move with the state forbid now (or None)."""
        return pursuit_rules.forbidden_sets(self._moving, self.board()) if self._moving else None

    def _pursuer_mask(self) -> np.ndarray:
        ps = self.pursuers
        moving = self._moving_forbidden()
        rows = []
        for i in range(3):
            x, y = ps[i]
            b = self._pbits[i][x][y]
            for j in range(3):
                if j != i:
                    k = _MOVE_INDEX.get((ps[j][0] - x, ps[j][1] - y))
                    if k is not None:
                        b &= ~(1 << k)
            if moving is not None:
                for cx, cy in moving[PURSUER_NAMES[i]]:
                    k = _MOVE_INDEX.get((cx - x, cy - y))
                    if k:  # staying (k == 0) is always legal
                        b &= ~(1 << k)
            rows.append(b)
        return _PURSUER_ROWS[rows]

    def _evader_mask(self) -> np.ndarray:
        ex, ey = self.evader_cell
        b = self._ebits[ex][ey] | 1
        for px, py in self.pursuers:
            k = _EVADER_MOVE_INDEX.get((px - ex, py - ey))
            if k:  # a pursuer on the evader's own cell (k == 0) never blocks staying
                b &= ~(1 << k)
        moving = self._moving_forbidden()
        if moving is not None:
            for cx, cy in moving["evader"]:
                k = _EVADER_MOVE_INDEX.get((cx - ex, cy - ey))
                if k:
                    b &= ~(1 << k)
        return _EVADER_ROWS[b]

    def _obs(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        obs = {
            "pursuers": np.array(self.pursuers, dtype=np.int64),
            "evader": np.array(self.evader_cell, dtype=np.int64),
            "action_mask": mask,
        }
        if self.has_area:
            obs["restricted"] = np.array(self.area, dtype=np.int64)
        if self._rule_specs:
            obs["forbidden"] = pursuit_rules.forbidden_grid(self.rules, self.board())
        return obs

    def _info(self, mask: np.ndarray) -> dict[str, Any]:
        return {
            "action_mask": mask,
            "violations": self.violations,
            "outcome": self.outcome,
            "steps": self.steps,
            "evader_violations": self.evader_violations,
        }

    # ----------------------------------------------------------------- API

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and deep-copy without the renderer (pygame state); it is rebuilt lazily."""
        state = dict(self.__dict__)
        state["_renderer"] = None
        return state

    def action_masks(self) -> np.ndarray:
        """The current action mask flattened to (42,), as sb3-contrib's MaskablePPO reads it."""
        if not self._reset_done:
            raise InvalidAction(NOT_STARTED)
        return self._pursuer_mask().reshape(-1)

    def encode_targets(self, cells: Sequence[Cell | None]) -> np.ndarray:
        """Turn three target cells (``None`` = unreadable) into an action for this state."""
        return encode_targets(self.pursuers, cells)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._reset_done = False  # until this reset has finished
        if options is not None and not isinstance(options, Mapping):
            raise InvalidArgument(
                f"reset options must be a dict such as {{'preset': 'figure5'}} or "
                f"{{'pursuers': [...], 'evader': (x, y)}}, got {type(options).__name__} "
                f"{options!r}"
            )
        options = dict(options or {})
        unknown = set(options) - {"pursuers", "evader", "restricted", "preset"}
        if unknown:
            raise InvalidArgument(
                f"unknown reset option(s) {sorted(unknown)}; known: preset, pursuers, "
                f"evader, restricted"
            )
        if "preset" in options:
            name = options.pop("preset")
            if name not in PRESETS:
                raise unknown_name("preset", name, list(PRESETS))
            for k, v in PRESETS[name].items():
                options.setdefault(k, v)
        if ("pursuers" in options) != ("evader" in options):
            raise InvalidStart("reset options must give both 'pursuers' and 'evader', or neither")
        given = options.get("pursuers") is not None
        # a given start: an area drawn per episode keeps clear of it
        avoid = [tuple(c) for c in (*options["pursuers"], options["evader"])] if given else []

        area: Area | None = None
        if options.get("restricted") is not None:
            if not self.has_area:
                raise InvalidArgument(
                    "this env has no restricted area; use PursuitRestricted-v0 (or "
                    "restricted='random' / a corner) to place one"
                )
            area = self._check_area(options["restricted"])
        elif self.has_area:
            area = self._fixed_area
            if area is None:  # drawn per episode, clear of a given start
                area = draw_area(self.np_random, self.size, avoid)
        self.area = area
        redraw_area = self.has_area and self._fixed_area is None and area is not None
        redraw_area = redraw_area and options.get("restricted") is None
        self.rules = self._draw_rules_and_area(redraw_area, avoid)
        self._build_tables()

        if given:
            self.pursuers, self.evader_cell = validate_start(
                options["pursuers"], options["evader"], self.size, area
            )
            problem = self._start_problem()
            for _ in range(200 if self._draws_rules else 0):  # redraw rules clear of it
                if problem is None:
                    break
                self.rules = self._draw_rules()
                self._build_tables()
                problem = self._start_problem()
            if problem is not None:
                raise InvalidStart(f"start {self.pursuers} vs {self.evader_cell}: {problem}")
        else:
            self.pursuers, self.evader_cell = self._draw_start(redraw_area)

        if hasattr(self.evader, "reset"):
            self.evader.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self.steps = 0
        self.violations = 0
        self.evader_violations = 0
        self.outcome = None
        self._reset_done = True
        self.last_action = None
        self.history = [(list(self.pursuers), self.evader_cell)]
        mask = self._pursuer_mask()
        if self.render_mode == "human":
            self.render()
        return self._obs(mask), self._info(mask)

    def _parse_action(self, action: Any) -> list[int]:
        try:  # a dict or set would be read as its keys, in no order of A, B, C
            if isinstance(action, (Mapping, set, frozenset)):
                raise TypeError
            values = action.tolist() if isinstance(action, np.ndarray) else list(action)
        except TypeError:
            values = None
        if (
            values is None
            or len(values) != 3
            or not all(is_int(v) and 0 <= v <= NO_CHOICE for v in values)
        ):
            raise InvalidAction(
                f"a Pursuit action is 3 ints in [0, {NO_CHOICE}] (A, B, C; {NO_CHOICE} = "
                f"no readable choice; no bools or floats), e.g. "
                f"env.unwrapped.encode_targets(cells); got {action!r}"
            )
        return [int(v) for v in values]

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        illegal = self.pursuers_turn(action)
        if self.outcome is None:
            self.evader_turn(self.evader.act(self.evader_observation()))
        reward = -0.1 * sum(illegal)
        if self.outcome == "failure_with_violation":
            reward -= 1.0
        elif self.outcome == "success":
            reward += 1.0
        terminated = self.outcome in ("success", "failure_with_violation")
        truncated = self.outcome == "failure_without_violation"
        mask = self._pursuer_mask()
        if self.render_mode == "human":
            self.render()
        return self._obs(mask), reward, terminated, truncated, self._info(mask)

    # The two halves of a step, also played one at a time by the PettingZoo view
    # (ld_envs.pursuit_parallel), where the evader is an agent rather than a controller.

    def pursuers_turn(self, action: Any) -> list[bool]:
        """Check and apply the pursuers' joint move; per pursuer, whether it was illegal.

        Ends the game on too many violations (checked first) or on a capture.
        """
        if self.outcome is not None:
            raise InvalidAction("the episode has ended; call reset() before step()")
        if not self._reset_done:
            raise InvalidAction(NOT_STARTED)
        values = self._parse_action(action)
        targets = decode_action(self.pursuers, values)
        self.last_action = targets
        forbidden = None
        if self.rules:
            now = self.forbidden_now()
            forbidden = [now[name] for name in PURSUER_NAMES]
        self.pursuers, illegal = resolve_pursuers(
            self.pursuers, targets, self.size, self.area, forbidden
        )
        self.violations += sum(illegal)
        self.steps += 1
        if self.violations > self.max_violations:
            self.outcome = "failure_with_violation"
        elif captured(self.pursuers, self.evader_cell):
            self.outcome = "success"
        if self.outcome is not None:
            self.history.append((list(self.pursuers), self.evader_cell))
        return illegal

    def evader_observation(self) -> dict[str, np.ndarray]:
        """What the evader policy sees now: the board and its (5,) int8 move mask."""
        return self._obs(self._evader_mask())

    def evader_turn(self, choice: Any) -> None:
        """Apply the evader's reply (an index into ``EVADER_MOVES``).

        An illegal or unreadable choice leaves the evader where it is and counts one evader
        violation. Ends the game on a capture, else truncates it at ``max_steps``.
        """
        assert self.outcome is None, "evader_turn after the game ended"
        try:  # a bool or a float is no move index: unreadable, like an unparsable answer
            k = -1 if isinstance(choice, (bool, np.bool_, float, np.floating)) else int(choice)
        except (TypeError, ValueError):
            k = -1
        if 0 <= k < len(EVADER_MOVES) and self._evader_mask()[k]:
            dx, dy = EVADER_MOVES[k]
            self.evader_cell = (self.evader_cell[0] + dx, self.evader_cell[1] + dy)
        else:  # illegal or unreadable: the evader stays where it is
            self.evader_violations += 1
        if captured(self.pursuers, self.evader_cell):
            self.outcome = "success"
        elif self.steps >= self.max_steps:
            self.outcome = "failure_without_violation"
        self.history.append((list(self.pursuers), self.evader_cell))

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array', "
                "'human' or 'ansi' to gym.make"
            )
            return None
        from ld_envs import pursuit_render

        if self.render_mode == "ansi":
            return pursuit_render.ansi(self)
        if self._renderer is None:
            self._renderer = pursuit_render.PursuitRenderer(self.size, self.render_mode)
        return self._renderer.draw(self)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
