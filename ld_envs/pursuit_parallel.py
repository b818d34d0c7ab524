"""The pursuit game as a PettingZoo ``ParallelEnv``: pursuers A, B, C and the evader as agents.

One game engine, a thin adapter: :class:`PursuitParallelEnv` owns a
:class:`~ld_envs.pursuit.PursuitEnv` and lets it hold the state, parse the reset options,
draw the start and the restricted area from the seed, check the input, play the rules and
render. This module only translates the API: per-agent observations, action masks,
rewards, terminations, truncations and infos, agent names and per-agent spaces.

Turns. In the game the evader replies after seeing the pursuers' move. A parallel env
steps every live agent together, so one game step is two parallel steps (PettingZoo's
turn-based-in-parallel convention): on the pursuers' turn (``obs["turn"] == 0``) the three
pursuers' actions are applied (``PursuitEnv.pursuers_turn``) and the evader's is ignored;
on the evader's turn (``turn == 1``) the evader's action is applied
(``PursuitEnv.evader_turn``) and the pursuers' are ignored. The agent that is not on turn
has a mask holding only action 0 (stay), so a masked sampler is always legal. A game of
100 steps is therefore up to 200 parallel steps.

>>> from ld_envs.pursuit_parallel import parallel_env
>>> env = parallel_env(restricted=None)
>>> obs, infos = env.reset(seed=0)
>>> sorted(obs)
['evader', 'pursuer_A', 'pursuer_B', 'pursuer_C']
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ld_envs.errors import (
    InvalidAction,
    InvalidArgument,
    UnknownName,
    close_match,
    unknown_keyword,
    unknown_name,
)
from ld_envs.pursuit import (  # noqa: F401
    DEFAULT_SIZE,
    EVADER_MOVES,
    MAX_STEPS,
    MAX_VIOLATIONS,
    MOVES,
    N_PURSUER_ACTIONS,
    NO_CHOICE,
    PURSUER_NAMES,
    PursuitEnv,
    captured,
    draw_area,
    draw_start,
    evader_targets,
    is_int,
    pursuer_action_mask,
    resolve_pursuers,
    validate_start,
)

# The rules the game is played by, through PursuitEnv; importable from here too, so a
# test can check that this view copies none of them.
from ld_envs.pursuit_rules import forbidden_grid

logger = logging.getLogger(__name__)

PURSUER_AGENTS = tuple(f"pursuer_{n}" for n in PURSUER_NAMES)
EVADER_AGENT = "evader"
AGENTS = (*PURSUER_AGENTS, EVADER_AGENT)
#: ``obs["turn"]`` values
PURSUERS_TURN, EVADER_TURN = 0, 1
#: Reset options are PursuitEnv's (an unknown key is refused there) plus this one key:
#: PettingZoo's API tests probe ``reset(seed=0, options={"options": 1})`` to see that reset
#: takes options. It sets nothing, so it is dropped without a word.
PROBE_OPTION = "options"


class _EvaderSeat:
    """The evader controller of the :class:`PursuitEnv` inside: the evader is an agent here.

    ``PursuitEnv.reset`` draws a seed for its evader from the episode's generator; the seat
    keeps it (reported as ``info["policy_seed"]``), so the draws match ``Pursuit-v0``'s. It
    is never asked to act: the adapter hands the evader agent's action to
    ``PursuitEnv.evader_turn`` itself.
    """

    name = "parallel_env_agent"

    def __init__(self) -> None:
        self.seed = 0

    def reset(self, seed: int | None = None) -> None:
        self.seed = 0 if seed is None else int(seed)

    def act(self, obs: dict[str, np.ndarray]) -> int:
        raise RuntimeError(
            "the evader is an agent of the parallel env: pass its action to step(actions)"
        )


def _game_attribute(name: str) -> property:
    """A read-only view of one attribute of the :class:`PursuitEnv` inside."""
    return property(
        lambda self: getattr(self.game, name), doc=f"``PursuitEnv.{name}`` of the game."
    )


class PursuitParallelEnv(ParallelEnv):
    """Pursuit with four agents: ``pursuer_A``, ``pursuer_B``, ``pursuer_C``, ``evader``.

    ## Action Spaces
    Pursuers: ``Discrete(14)``, an index into ``ld_envs.pursuit.MOVES`` (0-12) or 13
    (``NO_CHOICE``, always illegal), as one entry of ``Pursuit-v0``'s ``MultiDiscrete``;
    the three are checked together as that env checks its action (a missing or ``None``
    action is ``NO_CHOICE``). Evader: ``Discrete(5)``, an index into ``EVADER_MOVES``;
    an illegal move (masked out) leaves it in place and counts one evader violation, as in
    ``Pursuit-v0``. On the side on turn, an action outside the agent's space (an evader
    action that is missing, ``None``, out of range or not an int; a pursuer entry outside
    ``Discrete(14)``) raises ``InvalidAction`` and nothing is applied; the other side's
    actions are ignored. An agent name the game does not have raises ``UnknownName``
    listing the four.

    ## Observation Spaces
    Each agent gets a ``Dict``: ``"pursuers"`` (3, 2) and ``"evader"`` (2,) cells as in
    ``Pursuit-v0``, ``"restricted"`` (4,) in the restricted variant, ``"turn"`` (0 = the
    pursuers move, 1 = the evader moves) and its own ``"action_mask"`` (int8: (14,) row
    of ``Pursuit-v0``'s mask for a pursuer, (5,) for the evader, as ``PursuitEnv`` gives its
    evader; only action 0 on the other side's turn). So the built-in ``GreedyEvader`` and
    ``RandomEvader`` act on the evader's observation unchanged.

    ## Rules and Episode End
    Those of ``Pursuit-v0``, played by its code: pursuers resolve in order A, B, C; an
    illegal pursuer choice leaves it in place and counts one violation (team count); more
    than 7 ends the game (``failure_with_violation``), checked before the capture; capture
    when every pursuer is within distance 1; 100 game steps without capture truncate
    (``failure_without_violation``). An illegal evader choice leaves it in place
    (``evader_violations``). Every agent terminates (or truncates) together.

    ## Rewards
    Pursuer i: -0.1 for its own illegal choice; all pursuers +1 on capture, -1 when the
    violations end the game. Evader: -1 on capture, +1 when the game ends otherwise
    (violations or 100 steps).

    ## Information
    Per agent: ``"outcome"`` (``None`` while running), ``"steps"`` (game steps),
    ``"violations"``, ``"evader_violations"``, ``"turn"``; the evader's info also holds
    ``"policy_seed"``: the seed ``Pursuit-v0`` resets its built-in evader with on the same
    ``reset(seed=...)``, so a seeded ``GreedyEvader`` replays that env's games.

    ## Arguments
    ``parallel_env(size=21, restricted=None, max_steps=100, max_violations=7,
    render_mode=None, rules=None)``, checked by ``PursuitEnv`` (an argument it does not
    take raises ``UnknownKeyword`` listing these); ``restricted``: ``None``, ``"random"``
    (drawn per episode from the seed) or a corner ``(x0, y0)``; ``rules``: ``Pursuit-v0``'s
    extra rules, every agent then also observing ``"forbidden"`` (4, size, size).
    ``reset(seed=, options=)`` takes ``Pursuit-v0``'s options (``pursuers``/``evader``,
    ``restricted``, ``preset``); an unknown one fails as there, except ``"options"``, the
    key PettingZoo's API tests probe reset with, which is dropped.

    ## PettingZoo's checkers
    ``parallel_api_test`` and ``parallel_seed_test`` pass with no warning. ``api_test`` on
    ``parallel_to_aec(parallel_env())`` passes with four kinds of advice kept on purpose
    (pinned in ``tests/test_checkers.py``, reasons in ``docs/ecosystem.md``): Dict
    observations (the ``Pursuit-v0`` observation plus ``turn`` and the agent's
    ``action_mask``, so every ld-gym policy acts on an agent's observation unchanged),
    agent names after the paper's A, B, C rather than ``pursuer_0``, and the evader's
    (5,) mask beside the pursuers' (14,).
    The game itself is ``env.game``, a ``PursuitEnv``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "ld_pursuit_v0",
        "render_modes": ["ansi", "rgb_array", "human"],
        "render_fps": 4,
        "is_parallelizable": True,
    }

    size = _game_attribute("size")
    has_area = _game_attribute("has_area")
    max_steps = _game_attribute("max_steps")
    max_violations = _game_attribute("max_violations")
    np_random = _game_attribute("np_random")
    area = _game_attribute("area")
    pursuers = _game_attribute("pursuers")
    evader_cell = _game_attribute("evader_cell")
    steps = _game_attribute("steps")
    violations = _game_attribute("violations")
    evader_violations = _game_attribute("evader_violations")
    outcome = _game_attribute("outcome")

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        restricted: str | Sequence[int] | None = None,
        max_steps: int = MAX_STEPS,
        max_violations: int = MAX_VIOLATIONS,
        render_mode: str | None = None,
        rules: Any = None,
    ) -> None:
        self._seat = _EvaderSeat()
        self.game = PursuitEnv(
            render_mode=render_mode,
            evader=self._seat,
            size=size,
            restricted=restricted,
            max_steps=max_steps,
            max_violations=max_violations,
            rules=rules,
        )
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.turn = PURSUERS_TURN

    @property
    def policy_seed(self) -> int:
        """The seed ``Pursuit-v0`` would have reset its built-in evader with."""
        return self._seat.seed

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
        if self.game.observation_space.get("forbidden") is not None:  # with rules
            entries["forbidden"] = self.game.observation_space["forbidden"]
        return spaces.Dict(entries)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        if agent not in AGENTS:
            raise unknown_name("agent", agent, list(AGENTS))
        return spaces.Discrete(len(EVADER_MOVES) if agent == EVADER_AGENT else N_PURSUER_ACTIONS)

    # ----------------------------------------------------------------- translation

    def _masks(self) -> dict[str, np.ndarray]:
        stay_p = np.zeros(N_PURSUER_ACTIONS, dtype=np.int8)
        stay_p[0] = 1
        stay_e = np.zeros(len(EVADER_MOVES), dtype=np.int8)
        stay_e[0] = 1
        if self.turn == PURSUERS_TURN:
            rows = self.game.action_masks().reshape(len(PURSUER_AGENTS), N_PURSUER_ACTIONS)
            masks = {a: rows[i].copy() for i, a in enumerate(PURSUER_AGENTS)}
            masks[EVADER_AGENT] = stay_e
        else:
            masks = {a: stay_p.copy() for a in PURSUER_AGENTS}
            masks[EVADER_AGENT] = self.game.evader_observation()["action_mask"].copy()
        return masks

    def _observations(self) -> dict[str, dict[str, Any]]:
        base: dict[str, Any] = {
            "pursuers": np.array(self.pursuers, dtype=np.int64),
            "evader": np.array(self.evader_cell, dtype=np.int64),
            "turn": self.turn,
        }
        if self.has_area:
            base["restricted"] = np.array(self.area, dtype=np.int64)
        if self.game.observation_space.get("forbidden") is not None:  # with rules
            base["forbidden"] = forbidden_grid(self.game.rules, self.game.board())
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

    def _rewards(self, live: list[str], illegal: Sequence[bool]) -> dict[str, float]:
        """Pursuer i pays 0.1 for its own illegal choice; the end pays every agent."""
        rewards = dict.fromkeys(live, 0.0)
        for a, bad in zip(PURSUER_AGENTS, illegal, strict=True):
            rewards[a] -= 0.1 * bad
        if self.outcome is not None:
            won = self.outcome == "success"
            for a in PURSUER_AGENTS:
                rewards[a] += (
                    1.0 if won else (-1.0 if self.outcome == "failure_with_violation" else 0.0)
                )
            rewards[EVADER_AGENT] += -1.0 if won else 1.0
        return rewards

    # ----------------------------------------------------------------- API

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a game: ``PursuitEnv.reset`` draws it, exactly as ``Pursuit-v0`` does.

        ``options`` are ``Pursuit-v0``'s, checked by ``PursuitEnv`` (an unknown key is an
        error there and here), plus PettingZoo's probe key ``"options"``, which is dropped.
        """
        self.game.reset(seed=seed, options=_without_probe(options))  # renders in "human" mode
        self.agents = list(AGENTS)
        self.turn = PURSUERS_TURN
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
        _check_agents(actions)
        live = list(self.agents)
        illegal = [False] * len(PURSUER_AGENTS)
        if self.turn == PURSUERS_TURN:
            illegal = self.game.pursuers_turn([_pursuer_choice(actions, a) for a in PURSUER_AGENTS])
            next_turn = EVADER_TURN
        else:
            self.game.evader_turn(_evader_choice(actions))
            next_turn = PURSUERS_TURN
        outcome = self.outcome
        if outcome is None:
            self.turn = next_turn
        rewards = self._rewards(live, illegal)
        observations = self._observations()
        infos = self._infos()
        terminated = outcome in ("success", "failure_with_violation")
        truncated = outcome == "failure_without_violation"
        terminations = dict.fromkeys(live, terminated)
        truncations = dict.fromkeys(live, truncated)
        if outcome is not None:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """The global state: A, B, C, evader cells, then the turn (int64, (9,))."""
        cells = [c for p in self.pursuers for c in p] + list(self.evader_cell)
        return np.array([*cells, self.turn], dtype=np.int64)

    def render(self) -> Any:
        """``PursuitEnv.render`` of the game (the same frames and text board)."""
        return self.game.render()

    def close(self) -> None:
        self.game.close()


def _without_probe(options: Any) -> Any:
    """The reset options without PettingZoo's probe key (anything else is left to PursuitEnv)."""
    if not isinstance(options, Mapping) or PROBE_OPTION not in options:
        return options
    if isinstance(options[PROBE_OPTION], Mapping):
        raise InvalidArgument(
            f"reset options are not nested: pass options={dict(options[PROBE_OPTION])!r} "
            f"itself, not inside {{'options': ...}}"
        )
    logger.debug("dropping PettingZoo's probe reset option %r", PROBE_OPTION)
    return {k: v for k, v in options.items() if k != PROBE_OPTION}


def _check_agents(actions: Any) -> None:
    """Refuse an action dict that is no dict or names an agent the game does not have."""
    if not isinstance(actions, Mapping):
        raise InvalidAction(
            f"step() takes a dict of actions keyed by agent name ({', '.join(AGENTS)}), "
            f"got {type(actions).__name__}: {actions!r}"
        )
    unknown = [a for a in actions if a not in AGENTS]
    if unknown:
        named = []
        for name in unknown:
            same = [a for a in AGENTS if isinstance(name, str) and a.lower() == name.lower()]
            close = (same or [close_match(name, AGENTS) if isinstance(name, str) else None])[0]
            named.append(f"{name!r}" + (f" (did you mean {close!r}?)" if close else ""))
        raise UnknownName(
            f"step() got actions for unknown agent(s) {', '.join(named)}; the agents are "
            f"{', '.join(AGENTS)}"
        )


def _evader_choice(actions: Mapping[str, Any]) -> int:
    """The evader's action on its turn: an index into ``EVADER_MOVES`` (``Discrete(5)``).

    Unlike a pursuer's, whose space holds ``NO_CHOICE`` for "no readable choice", the
    evader's space has no such entry: a missing action or one outside ``Discrete(5)`` is
    refused, as ``Pursuit-v0`` refuses a pursuer entry outside ``Discrete(14)``."""
    n = len(EVADER_MOVES)
    if EVADER_AGENT not in actions:
        raise InvalidAction(
            f"it is the evader's turn (obs['turn'] == {EVADER_TURN}): step() needs its "
            f"action, an int in [0, {n - 1}] (an index into EVADER_MOVES, 0 = stay); got "
            f"actions for {sorted(map(str, actions))} only"
        )
    value = actions[EVADER_AGENT]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if not (is_int(value) and 0 <= value < n):
        raise InvalidAction(
            f"the evader's action is an int in [0, {n - 1}] (Discrete({n}): an index into "
            f"EVADER_MOVES {EVADER_MOVES}, 0 = stay; no bools or floats), got {value!r}"
        )
    return int(value)


def _pursuer_choice(actions: dict[str, Any], agent: str) -> Any:
    """One pursuer's entry of the joint action: ``NO_CHOICE`` when it gave none; a value
    outside its ``Discrete(14)`` is refused naming the agent."""
    value = actions.get(agent)
    if value is None:
        return NO_CHOICE
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if not (is_int(value) and 0 <= value <= NO_CHOICE):
        raise InvalidAction(
            f"{agent}'s action is an int in [0, {NO_CHOICE}] (Discrete({NO_CHOICE + 1}): an "
            f"index into its obs['action_mask'], {NO_CHOICE} = no readable choice; no bools or "
            f"floats), got {value!r}"
        )
    return value


def parallel_env(**kwargs: Any) -> PursuitParallelEnv:
    """Build the pursuit ``ParallelEnv`` (PettingZoo's ``parallel_env`` convention).

    An argument it does not take fails naming the closest one and all of them
    (:class:`~ld_envs.errors.UnknownKeyword`, a ``TypeError``)."""
    known = [p for p in inspect.signature(PursuitParallelEnv.__init__).parameters if p != "self"]
    for key in kwargs:
        if key not in known:
            raise unknown_keyword("parallel_env()", key, known, "argument")
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
