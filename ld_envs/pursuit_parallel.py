"""The pursuit game as a PettingZoo ``ParallelEnv``: pursuers A, B, C and the evader as agents.

Same game, same rule functions: every legality check, the move resolution, the capture
test, the start and restricted-area draws come from :mod:`ld_envs.pursuit`
(``resolve_pursuers``, ``evader_targets``, ``captured``, ``pursuer_action_mask``,
``draw_start``, ``draw_area``, ...); this module only holds the state and turns it into
per-agent observations.

Turns. In the game the evader replies after seeing the pursuers' move. A parallel env
steps every live agent together, so one game step is two parallel steps (PettingZoo's
turn-based-in-parallel convention): on the pursuers' turn (``obs["turn"] == 0``) the three
pursuers' actions are applied and the evader's is ignored; on the evader's turn
(``turn == 1``) the evader's action is applied and the pursuers' are ignored. The agent
that is not on turn has a mask holding only action 0 (stay), so a masked sampler is
always legal. A game of 100 steps is therefore up to 200 parallel steps.

>>> from ld_envs.pursuit_parallel import parallel_env
>>> env = parallel_env(restricted=None)
>>> obs, infos = env.reset(seed=0)
>>> sorted(obs)
['evader', 'pursuer_A', 'pursuer_B', 'pursuer_C']
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from ld_envs.errors import InvalidArgument, InvalidStart, unknown_name
from ld_envs.pursuit import (
    AREA_SIDE,
    DEFAULT_SIZE,
    EVADER_MOVES,
    MAX_STEPS,
    MAX_VIOLATIONS,
    MOVES,
    N_PURSUER_ACTIONS,
    NO_CHOICE,
    PRESETS,
    PURSUER_NAMES,
    Area,
    Cell,
    area_from_corner,
    area_touches_edge,
    captured,
    decode_action,
    draw_area,
    draw_start,
    evader_targets,
    pursuer_action_mask,
    resolve_pursuers,
    validate_start,
)

logger = logging.getLogger(__name__)

PURSUER_AGENTS = tuple(f"pursuer_{n}" for n in PURSUER_NAMES)
EVADER_AGENT = "evader"
AGENTS = (*PURSUER_AGENTS, EVADER_AGENT)
#: ``obs["turn"]`` values
PURSUERS_TURN, EVADER_TURN = 0, 1


class PursuitParallelEnv(ParallelEnv):
    """Pursuit with four agents: ``pursuer_A``, ``pursuer_B``, ``pursuer_C``, ``evader``.

    ## Action Spaces
    Pursuers: ``Discrete(14)``, an index into ``ld_envs.pursuit.MOVES`` (0-12) or 13
    (``NO_CHOICE``, always illegal), as one entry of ``Pursuit-v0``'s ``MultiDiscrete``.
    Evader: ``Discrete(5)``, an index into ``EVADER_MOVES``.

    ## Observation Spaces
    Each agent gets a ``Dict``: ``"pursuers"`` (3, 2) and ``"evader"`` (2,) cells as in
    ``Pursuit-v0``, ``"restricted"`` (4,) in the restricted variant, ``"turn"`` (0 = the
    pursuers move, 1 = the evader moves) and its own ``"action_mask"`` (int8: (14,) row
    of ``Pursuit-v0``'s mask for a pursuer, (5,) for the evader, as ``PursuitEnv`` gives its
    evader; only action 0 on the other side's turn). So the built-in ``GreedyEvader`` and
    ``RandomEvader`` act on the evader's observation unchanged.

    ## Rules and Episode End
    Those of ``Pursuit-v0``: pursuers resolve in order A, B, C; an illegal pursuer choice
    leaves it in place and counts one violation (team count); more than 7 ends the game
    (``failure_with_violation``), checked before the capture; capture when every pursuer is
    within distance 1; 100 game steps without capture truncate
    (``failure_without_violation``). An illegal evader choice leaves it in place
    (``evader_violations``). Every agent terminates (or truncates) together.

    ## Rewards
    Pursuer i: -0.1 for its own illegal choice; all pursuers +1 on capture, -1 when the
    violations end the game. Evader: -1 on capture, +1 when the game ends otherwise
    (violations or 100 steps).

    ## Information
    Per agent: ``"outcome"`` (``None`` while running), ``"steps"`` (game steps),
    ``"violations"``, ``"evader_violations"``, ``"turn"``; the evader's info also holds
    ``"policy_seed"``: the seed ``Pursuit-v0`` would reset its built-in evader with on
    the same ``reset(seed=...)``, so a seeded ``GreedyEvader`` replays that env's games.

    ## Arguments
    ``parallel_env(size=21, restricted=None, max_steps=100, max_violations=7,
    render_mode=None)``; ``restricted``: ``None``, ``"random"`` (drawn per episode from
    the seed) or a corner ``(x0, y0)``. ``reset(seed=, options=)`` takes
    ``Pursuit-v0``'s options (``pursuers``/``evader``, ``restricted``, ``preset``).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "ld_pursuit_v0",
        "render_modes": ["ansi", "rgb_array", "human"],
        "render_fps": 4,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        restricted: str | Sequence[int] | None = None,
        max_steps: int = MAX_STEPS,
        max_violations: int = MAX_VIOLATIONS,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(size, (int, np.integer)) or size < 8:
            raise InvalidArgument(f"size must be an int >= 8, got {size!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidArgument(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if max_steps < 1 or max_violations < 0:
            raise InvalidArgument(
                f"max_steps must be >= 1 and max_violations >= 0, got {max_steps}, {max_violations}"
            )
        self.size = int(size)
        self.render_mode = render_mode
        self.max_steps = int(max_steps)
        self.max_violations = int(max_violations)
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
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.np_random, _ = seeding.np_random(None)
        self.area: Area | None = self._fixed_area
        self.pursuers: list[Cell] = [(0, 0), (0, 1), (0, 2)]
        self.evader_cell: Cell = (self.size - 1, self.size - 1)
        self.turn = PURSUERS_TURN
        self.steps = 0
        self.violations = 0
        self.evader_violations = 0
        self.outcome: str | None = None
        self.policy_seed = 0
        self._renderer: Any = None

    # ----------------------------------------------------------------- spaces

    @functools.cache  # noqa: B019  (PettingZoo wants the same object)
    def observation_space(self, agent: str) -> spaces.Dict:
        if agent not in AGENTS:
            raise unknown_name("agent", agent, list(AGENTS))
        n = self.size
        n_actions = N_PURSUER_ACTIONS if agent != EVADER_AGENT else len(EVADER_MOVES)
        entries: dict[str, spaces.Space] = {
            "pursuers": spaces.Box(0, n - 1, shape=(3, 2), dtype=np.int64),
            "evader": spaces.Box(0, n - 1, shape=(2,), dtype=np.int64),
            "turn": spaces.Discrete(2),
            "action_mask": spaces.Box(0, 1, shape=(n_actions,), dtype=np.int8),
        }
        if self.has_area:
            entries["restricted"] = spaces.Box(0, n - 1, shape=(4,), dtype=np.int64)
        return spaces.Dict(entries)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        if agent not in AGENTS:
            raise unknown_name("agent", agent, list(AGENTS))
        return spaces.Discrete(len(EVADER_MOVES) if agent == EVADER_AGENT else N_PURSUER_ACTIONS)

    # ----------------------------------------------------------------- helpers

    def _check_area(self, corner: Sequence[int]) -> Area:
        try:
            area = area_from_corner(corner)
        except (TypeError, IndexError, ValueError) as exc:
            raise InvalidArgument(
                f"restricted must be a corner (x0, y0) of the 5x5 block, got {corner!r}"
            ) from exc
        if area_touches_edge(area, self.size):
            raise InvalidArgument(
                f"restricted area {area} touches the edge of the {self.size}x{self.size} "
                f"board; x0 and y0 must lie in [1, {self.size - AREA_SIDE - 1}]"
            )
        return area

    def _masks(self) -> dict[str, np.ndarray]:
        stay_p = np.zeros(N_PURSUER_ACTIONS, dtype=np.int8)
        stay_p[0] = 1
        stay_e = np.zeros(len(EVADER_MOVES), dtype=np.int8)
        stay_e[0] = 1
        if self.turn == PURSUERS_TURN:
            pm = pursuer_action_mask(self.pursuers, self.size, self.area)
            masks = {a: pm[i].copy() for i, a in enumerate(PURSUER_AGENTS)}
            masks[EVADER_AGENT] = stay_e
        else:
            moves = evader_targets(self.evader_cell, self.pursuers, self.size, self.area)
            masks = {a: stay_p.copy() for a in PURSUER_AGENTS}
            masks[EVADER_AGENT] = np.array([m is not None for m in moves], dtype=np.int8)
        return masks

    def _observations(self) -> dict[str, dict[str, Any]]:
        base: dict[str, Any] = {
            "pursuers": np.array(self.pursuers, dtype=np.int64),
            "evader": np.array(self.evader_cell, dtype=np.int64),
            "turn": self.turn,
        }
        if self.has_area:
            base["restricted"] = np.array(self.area, dtype=np.int64)
        masks = self._masks()
        out = {}
        for agent in self.agents:
            obs = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}
            obs["action_mask"] = masks[agent]
            out[agent] = obs
        return out

    def _infos(self) -> dict[str, dict[str, Any]]:
        common = {
            "outcome": self.outcome,
            "steps": self.steps,
            "violations": self.violations,
            "evader_violations": self.evader_violations,
            "turn": self.turn,
        }
        infos = {a: dict(common) for a in self.agents}
        if EVADER_AGENT in infos:
            infos[EVADER_AGENT]["policy_seed"] = self.policy_seed
        return infos

    # ----------------------------------------------------------------- API

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a game; draws exactly as ``Pursuit-v0`` does for the same seed."""
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        options = dict(options or {})
        unknown = set(options) - {"pursuers", "evader", "restricted", "preset"}
        if unknown:  # PettingZoo's API test passes options={"options": 1}: tolerate, say so
            logger.warning("ignoring unknown reset option(s) %s", sorted(unknown))
            options = {k: v for k, v in options.items() if k not in unknown}
        if "preset" in options:
            name = options.pop("preset")
            if name not in PRESETS:
                raise unknown_name("preset", name, list(PRESETS))
            for k, v in PRESETS[name].items():
                options.setdefault(k, v)
        if ("pursuers" in options) != ("evader" in options):
            raise InvalidStart("reset options must give both 'pursuers' and 'evader', or neither")
        given = "pursuers" in options

        area: Area | None = None
        if options.get("restricted") is not None:
            if not self.has_area:
                raise InvalidArgument(
                    "this env has no restricted area; build it with restricted='random' or "
                    "a corner to place one"
                )
            area = self._check_area(options["restricted"])
        elif self.has_area:
            area = self._fixed_area
            if area is None:
                avoid = [*options["pursuers"], options["evader"]] if given else []
                area = draw_area(self.np_random, self.size, [tuple(c) for c in avoid])
        self.area = area
        if given:
            self.pursuers, self.evader_cell = validate_start(
                options["pursuers"], options["evader"], self.size, area
            )
        else:
            self.pursuers, self.evader_cell = draw_start(self.np_random, self.size, area)
        # the same draw Pursuit-v0 makes to seed its built-in evader
        self.policy_seed = int(self.np_random.integers(2**31 - 1))
        self.agents = list(AGENTS)
        self.turn = PURSUERS_TURN
        self.steps = 0
        self.violations = 0
        self.evader_violations = 0
        self.outcome = None
        if self.render_mode == "human":
            self.render()
        return self._observations(), self._infos()

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, dict[str, Any]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Apply the actions of the side on turn (the other side's are ignored)."""
        if not self.agents:
            raise InvalidArgument("the game has ended; call reset() before step()")
        live = list(self.agents)
        rewards = dict.fromkeys(live, 0.0)
        terminated = truncated = False
        if self.turn == PURSUERS_TURN:
            joint = [
                _as_index(actions.get(a), NO_CHOICE, N_PURSUER_ACTIONS) for a in PURSUER_AGENTS
            ]
            targets = decode_action(self.pursuers, joint)
            self.pursuers, illegal = resolve_pursuers(self.pursuers, targets, self.size, self.area)
            self.violations += sum(illegal)
            self.steps += 1
            for a, bad in zip(PURSUER_AGENTS, illegal, strict=True):
                rewards[a] -= 0.1 * bad
            if self.violations > self.max_violations:
                self.outcome, terminated = "failure_with_violation", True
            elif captured(self.pursuers, self.evader_cell):
                self.outcome, terminated = "success", True
            else:
                self.turn = EVADER_TURN
        else:
            moves = evader_targets(self.evader_cell, self.pursuers, self.size, self.area)
            k = _as_index(actions.get(EVADER_AGENT), -1, len(EVADER_MOVES))
            target = moves[k] if 0 <= k < len(moves) else None
            if target is None:
                self.evader_violations += 1
            else:
                self.evader_cell = target
            if captured(self.pursuers, self.evader_cell):
                self.outcome, terminated = "success", True
            elif self.steps >= self.max_steps:
                self.outcome, truncated = "failure_without_violation", True
            else:
                self.turn = PURSUERS_TURN
        if self.outcome is not None:
            won = self.outcome == "success"
            for a in PURSUER_AGENTS:
                rewards[a] += (
                    1.0 if won else (-1.0 if self.outcome == "failure_with_violation" else 0.0)
                )
            rewards[EVADER_AGENT] += -1.0 if won else 1.0
        observations = self._observations()
        infos = self._infos()
        terminations = dict.fromkeys(live, terminated)
        truncations = dict.fromkeys(live, truncated)
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """The global state: A, B, C, evader cells, then the turn (int64, (9,))."""
        cells = [c for p in self.pursuers for c in p] + list(self.evader_cell)
        return np.array([*cells, self.turn], dtype=np.int64)

    def render(self) -> Any:
        if self.render_mode is None:
            logger.warning("render() called without a render_mode")
            return None
        from ld_envs import pursuit_render

        if self.render_mode == "ansi":
            return pursuit_render.ansi(self)  # type: ignore[arg-type]
        if self._renderer is None:
            self._renderer = pursuit_render.PursuitRenderer(self.size, self.render_mode)
        return self._renderer.draw(self)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _as_index(value: Any, default: int, n: int) -> int:
    """An action as an int index; ``default`` when missing or unreadable."""
    if value is None:
        return default
    try:
        k = int(np.asarray(value).reshape(-1)[0]) if not isinstance(value, int) else value
    except (TypeError, ValueError, IndexError):
        return default
    return k if 0 <= k < n else default


def parallel_env(**kwargs: Any) -> PursuitParallelEnv:
    """Build the pursuit ``ParallelEnv`` (PettingZoo's ``parallel_env`` convention)."""
    return PursuitParallelEnv(**kwargs)


def joint_pursuer_action(observations: dict[str, dict[str, Any]], policy: Any) -> dict[str, int]:
    """Split a ``Pursuit-v0`` pursuer policy's joint action into per-agent actions.

    ``policy.act`` gets ``Pursuit-v0``'s pursuer observation rebuilt from
    ``pursuer_A``'s (the three masks stacked), so any pursuer policy of ld-gym (scripted,
    rl, LLM) plays the three pursuer agents.
    """
    first = observations[PURSUER_AGENTS[0]]
    obs = {k: v for k, v in first.items() if k not in ("turn", "action_mask")}
    obs["action_mask"] = np.stack([observations[a]["action_mask"] for a in PURSUER_AGENTS])
    action = policy.act(obs)
    return {a: int(action[i]) for i, a in enumerate(PURSUER_AGENTS)}


__all__ = [
    "AGENTS",
    "EVADER_AGENT",
    "EVADER_TURN",
    "MOVES",
    "PURSUERS_TURN",
    "PURSUER_AGENTS",
    "PursuitParallelEnv",
    "joint_pursuer_action",
    "parallel_env",
]
