"""Exact figures: :func:`solve` (the best response), :func:`evaluate` (a fixed policy).

Both average exactly over every deal and return a :class:`Solution`; :func:`make_solver`
picks the solver for an opponent (:class:`FastSolver` when it applies, else
:class:`ReferenceSolver`) and :func:`solver_for` shares one per built-in opponent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ld_agents.baselines.optimal.fast import FastSolver, fast_path_table
from ld_agents.baselines.optimal.reference import ReferenceSolver
from ld_envs.errors import InvalidArgument, unknown_name
from ld_envs.twenty_one import OPPONENTS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Solution:
    """Exact outcome probabilities of an agent policy from a fresh deal."""

    win: float
    loss: float
    draw: float
    expected_reward: float
    opponent: str
    open_cards: bool
    #: the agent policy: ``"optimal"`` for :func:`solve`, its name for :func:`evaluate`
    agent: str = "optimal"
    #: agent decision states evaluated (memo size) and the seconds the solve took
    states: int = 0
    seconds: float = 0.0


_SOLVERS: dict[tuple[str, bool], FastSolver | ReferenceSolver] = {}


def make_solver(opponent: Any, open_cards: bool = False) -> FastSolver | ReferenceSolver:
    """A new solver for an opponent policy: :class:`FastSolver` when it applies (own cards
    only, hit probabilities 0/1 or constant), else :class:`ReferenceSolver`."""
    table = fast_path_table(opponent, bool(open_cards))
    if table is not None:
        return FastSolver(opponent, open_cards, table)
    return ReferenceSolver(opponent, open_cards)


def solver_for(opponent: str | Any = "dealer", open_cards: bool = False) -> Any:
    """The shared solver for a built-in opponent name, or a new one for a policy object."""
    if isinstance(opponent, str):
        if opponent not in OPPONENTS:
            raise unknown_name("opponent", opponent, list(OPPONENTS))
        key = (opponent, bool(open_cards))
        if key not in _SOLVERS:
            _SOLVERS[key] = make_solver(OPPONENTS[opponent](), open_cards)
        return _SOLVERS[key]
    return make_solver(opponent, open_cards)


_SOLUTIONS: dict[tuple[str, str, bool], Solution] = {}


def policy_name(policy: str | Any) -> str:
    return (
        policy if isinstance(policy, str) else getattr(policy, "name", "") or type(policy).__name__
    )


def run_solver(solver: Any, agent: str, opponent: str, open_cards: bool) -> Solution:
    start = time.perf_counter()
    win, loss = solver.solve()
    seconds = time.perf_counter() - start
    logger.info(
        "21 points, %s vs %s (open_cards=%s): %d states in %.2f s",
        agent,
        opponent,
        open_cards,
        solver.n_states,
        seconds,
    )
    return Solution(
        win=win,
        loss=loss,
        draw=1.0 - win - loss,
        expected_reward=win - loss,
        opponent=opponent,
        open_cards=bool(open_cards),
        agent=agent,
        states=solver.n_states,
        seconds=seconds,
    )


def solve(opponent: str | Any = "dealer", open_cards: bool = False) -> Solution:
    """Exact win / loss / draw probabilities and expected reward of the best response.

    Averaged exactly over every deal of the 26-card deck (no sampling). ``opponent`` is a
    built-in name (``"dealer"``, ``"random"``) or a policy with ``action_probs(obs)``.
    Results for built-in opponents are cached for the process (and the solver's table
    is shared with ``OptimalPolicy`` / ``ld_agents.make("optimal", ...)``).

    >>> solve("dealer").expected_reward  # doctest: +SKIP
    0.0019994240284...
    """
    cache_key = ("optimal", opponent, bool(open_cards)) if isinstance(opponent, str) else None
    if cache_key is not None and cache_key in _SOLUTIONS:
        return _SOLUTIONS[cache_key]
    solution = run_solver(
        solver_for(opponent, open_cards), "optimal", policy_name(opponent), open_cards
    )
    if cache_key is not None:
        _SOLUTIONS[cache_key] = solution
    return solution


def evaluate(
    agent: str | Any, opponent: str | Any = "dealer", open_cards: bool = False
) -> Solution:
    """Exact win / loss / draw probabilities of a fixed agent policy against an opponent.

    ``agent`` is a registered 21-point policy name (``"dealer"``, ``"random"``,
    ``"scripted"``) or a policy with ``action_probs(obs)`` whose probabilities depend on
    card values as multisets (the agent's cards in any order), as every built-in one's do.
    The opponent must be one :class:`FastSolver` handles (``dealer``, ``random``, or an
    own-cards-only policy with 0/1 or constant hit probabilities).
    """
    agent_name = policy_name(agent)
    if isinstance(agent, str):
        from ld_agents.base import make

        agent = make(agent, "TwentyOne-v0")
    if isinstance(opponent, str) and opponent not in OPPONENTS:
        raise unknown_name("opponent", opponent, list(OPPONENTS))
    opp = OPPONENTS[opponent]() if isinstance(opponent, str) else opponent
    table = fast_path_table(opp, bool(open_cards))
    if table is None:
        raise InvalidArgument(
            f"exact evaluation needs an own-cards-only opponent with 0/1 or constant hit "
            f"probabilities (dealer, random); got {policy_name(opponent)}"
        )
    solver = FastSolver(opp, open_cards, table, agent=agent)
    return run_solver(solver, agent_name, policy_name(opponent), open_cards)
