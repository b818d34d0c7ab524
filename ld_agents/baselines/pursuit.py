"""Non-LLM policies for the pursuit game: random, scripted pursuers, and the evaders.

Pursuer policies return a ``MultiDiscrete([14, 14, 14])`` action; evader policies return
an index into ``EVADER_MOVES``. Both read the legal moves from ``obs["action_mask"]``
(the env puts the right mask in each side's observation).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from itertools import permutations
from typing import Any

import numpy as np

from ld_agents.base import Policy, register
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import (
    DEFAULT_SIZE,
    EVADER_MOVES,
    MOVES,
    NO_CHOICE,
    Area,
    Cell,
    GreedyEvader,
    RandomEvader,
    enterable,
    manhattan,
    on_board,
    pursuer_move_legal,
)

SIDES = ("pursuers", "evader")

Obs = dict[str, np.ndarray]


def check_board_size(size: Any) -> int:
    """``size`` when it can be a pursuit board's side (an int >= 8, as the env takes)."""
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise InvalidArgument(f"size must be an int >= 8 (the env's board side), got {size!r}")
    return int(size)


def check_board(obs: Obs, size: int) -> None:
    """Refuse a pursuit observation from a board other than the policy's ``size`` x ``size``
    one: a piece off that board, or a pursuer move the observation's mask allows that leads
    off it (the env's board is larger). A policy made for a larger board than the env's is
    not detectable from one observation; make policies with the env's ``size``."""
    cells = [tuple(c) for c in [*obs["pursuers"].tolist(), obs["evader"].tolist()]]
    mask = obs.get("action_mask")
    if mask is not None and np.shape(mask) == (3, len(MOVES) + 1):
        for (x, y), row in zip(cells[:3], np.asarray(mask), strict=True):
            cells += [(x + MOVES[a][0], y + MOVES[a][1]) for a in np.flatnonzero(row[:-1])]
    off = [c for c in cells if not on_board(c, size)]
    if off:
        raise InvalidArgument(
            f"the observation reaches cell {off[0]}, off this policy's {size}x{size} board: "
            "make the policy with the env's board size (size=N, as in gym.make(..., size=N))"
        )


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise InvalidArgument(f"side must be one of {SIDES}, got {side!r}")
    return side


class RandomPursuers(Policy):
    """Uniform random pursuers.

    ``masked=True`` picks each pursuer's move among the moves legal now (a joint action can
    still collide when two pursuers name one cell); ``masked=False`` picks among all 13
    offsets blindly, so it makes illegal choices and exercises the violation rule.
    """

    def __init__(self, masked: bool = True, seed: int | None = None) -> None:
        super().__init__(seed)
        if not isinstance(masked, (bool, np.bool_)):
            raise InvalidArgument(f"masked must be true or false, got {masked!r}")
        self.masked = bool(masked)

    def act(self, obs: Obs) -> np.ndarray:
        if not self.masked:
            return self.np_random.integers(0, len(MOVES), size=3)
        mask = obs["action_mask"]
        action = np.empty(3, dtype=np.int64)
        for i in range(3):
            legal = np.flatnonzero(mask[i])
            action[i] = legal[self.np_random.integers(len(legal))] if len(legal) else NO_CHOICE
        return action


def bfs_distances(
    goal: Cell, size: int, area: Area | None, blocked: Collection[Cell] = ()
) -> list[list[int]]:
    """Shortest 4-neighbour path length from every cell to ``goal`` around the area and the
    ``blocked`` cells (those the extra rules forbid).

    Unreachable cells (the area itself) get a large number. On an open board this equals
    the Manhattan distance.
    """
    far = 10 * size * size
    dist = [[far] * size for _ in range(size)]
    dist[goal[0]][goal[1]] = 0
    queue = deque([goal])
    while queue:
        x, y = queue.popleft()
        d = dist[x][y] + 1
        for dx, dy in EVADER_MOVES[1:]:
            nx, ny = x + dx, y + dy
            if 0 <= nx < size and 0 <= ny < size and dist[nx][ny] > d:
                if area is not None and area[0] <= nx <= area[2] and area[1] <= ny <= area[3]:
                    continue
                if (nx, ny) in blocked:
                    continue
                dist[nx][ny] = d
                queue.append((nx, ny))
    return dist


class ScriptedPursuers(Policy):
    """A hand-written pursuer that encircles the evader.

    Each step it picks three distinct "slots" among the evader's cell and its enterable
    neighbours, assigns them to the pursuers so that the slowest pursuer arrives soonest
    (then the total path length is smallest), and moves each pursuer, in order A, B, C, to
    the legal target nearest its slot by path length around the restricted area. When a
    pursuer is already at its slot it stays. The evader is pinned against the board's
    edge and caught; against the greedy evader it succeeds on every benchmark start.

    It knows the extra rules (:mod:`ld_envs.pursuit_rules`) from ``obs["forbidden"]``: a
    pursuer only takes slots and targets the rules allow it, its path lengths go around the
    cells forbidden to it, and ties between equally good targets break at random (from its
    own generator).
    """

    def __init__(self, size: int = DEFAULT_SIZE, seed: int | None = None) -> None:
        super().__init__(seed)
        self.size = check_board_size(size)
        self._dist_cache: dict[tuple[Any, ...], list[list[int]]] = {}
        #: how often each board (pursuers relative to the evader) was seen this episode
        self._seen: dict[tuple[Any, ...], int] = {}

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._seen = {}

    def _dist(self, goal: Cell, area: Area | None, blocked: frozenset[Cell]) -> Any:
        if area is None and not blocked:
            return None  # Manhattan is exact on an open board
        key = (goal, area, blocked)
        table = self._dist_cache.get(key)
        if table is None:
            if len(self._dist_cache) > 4096:
                self._dist_cache.clear()
            table = self._dist_cache[key] = bfs_distances(goal, self.size, area, blocked)
        return table

    def _path_len(
        self, a: Cell, goal: Cell, area: Area | None, blocked: frozenset[Cell] = frozenset()
    ) -> int:
        table = self._dist(goal, area, blocked)
        return manhattan(a, goal) if table is None else table[a[0]][a[1]]

    def act(self, obs: Obs) -> np.ndarray:
        check_board(obs, self.size)
        pursuers: list[Cell] = [tuple(p) for p in obs["pursuers"].tolist()]
        evader: Cell = tuple(obs["evader"].tolist())
        area: Area | None = tuple(obs["restricted"].tolist()) if "restricted" in obs else None
        size = self.size
        forbidden = _forbidden_cells(obs)
        slots = [
            (evader[0] + dx, evader[1] + dy)
            for dx, dy in EVADER_MOVES
            if enterable((evader[0] + dx, evader[1] + dy), size, area)
        ]
        # with extra rules that move with the pieces, the chase can cycle beside the evader;
        # a board seen twice already this episode takes a random allowed assignment instead
        looping = False
        if "forbidden" in obs:
            here = (*((p[0] - evader[0], p[1] - evader[1]) for p in pursuers), evader)
            self._seen[here] = self._seen.get(here, 0) + 1
            looping = self._seen[here] > 2
        best: tuple[tuple[float, ...], Sequence[Cell]] | None = None
        for chosen in permutations(slots, 3):
            if any(s in forbidden[i] and s != pursuers[i] for i, s in enumerate(chosen)):
                continue
            lengths = [
                self._path_len(p, s, area, forbidden[i])
                for i, (p, s) in enumerate(zip(pursuers, chosen, strict=True))
            ]
            key: tuple[float, ...] = (max(-(-d // 2) for d in lengths), sum(lengths))
            if looping:
                key = (float(self.np_random.random()),)
            if best is None or key < best[0]:
                best = (key, chosen)
        goals = best[1] if best is not None else [evader] * 3

        action = np.full(3, NO_CHOICE, dtype=np.int64)
        cells = list(pursuers)
        for i in range(3):
            blocked = [cells[j] for j in range(3) if j != i]
            origin = cells[i]
            choice, choice_key = None, None
            for k, (dx, dy) in enumerate(MOVES):
                target = (origin[0] + dx, origin[1] + dy)
                if not pursuer_move_legal(origin, target, size, area, blocked, forbidden[i]):
                    continue
                key = (
                    self._path_len(target, goals[i], area, forbidden[i]),
                    manhattan(target, evader),
                    # with extra rules, ties break at random: rules that move with the
                    # pieces can otherwise lock the pursuers into a loop beside the evader
                    float(self.np_random.random()) if "forbidden" in obs else k,
                )
                if choice_key is None or key < choice_key:
                    choice, choice_key = k, key
            if choice is not None:
                action[i] = choice
                cells[i] = (origin[0] + MOVES[choice][0], origin[1] + MOVES[choice][1])
        return action


def _forbidden_cells(obs: Obs) -> list[frozenset[Cell]]:
    """Per pursuer, the cells the extra rules forbid it now (from ``obs["forbidden"]``)."""
    grid = obs.get("forbidden")
    if grid is None:
        return [frozenset()] * 3
    return [
        frozenset((int(x), int(y)) for x, y in zip(*np.nonzero(grid[i]), strict=True))
        for i in range(3)
    ]


@register("random", "pursuit")
def _random(
    env_id: str,
    side: str = "pursuers",
    masked: bool = True,
    seed: int | None = None,
    size: int = DEFAULT_SIZE,
) -> Any:
    if _check_side(side) == "evader":
        return RandomEvader(seed=seed, size=size)
    return RandomPursuers(masked=masked, seed=seed)


@register("random_blind", "pursuit")
def _random_blind(env_id: str, side: str = "pursuers", seed: int | None = None) -> Any:
    if _check_side(side) != "pursuers":
        raise InvalidArgument("random_blind plays the pursuers only; use 'random' for the evader")
    return RandomPursuers(masked=False, seed=seed)


@register("scripted", "pursuit")
def _scripted(
    env_id: str, side: str = "pursuers", seed: int | None = None, size: int = DEFAULT_SIZE
) -> Any:
    if _check_side(side) == "evader":
        return GreedyEvader(seed=seed, size=size)
    return ScriptedPursuers(size=size, seed=seed)


@register("greedy", "pursuit")
def _greedy(
    env_id: str, side: str = "evader", seed: int | None = None, size: int = DEFAULT_SIZE
) -> Any:
    if _check_side(side) != "evader":
        raise InvalidArgument("greedy is an evader; for pursuers use 'scripted'")
    return GreedyEvader(seed=seed, size=size)
