"""The ``optimal`` policy: the exact best response to a known opponent, from the observation."""

from __future__ import annotations

from typing import Any

from ld_agents.base import Policy, register
from ld_agents.baselines.optimal.solution import (
    Solution,
    policy_name,
    run_solver,
    solve,
    solver_for,
)
from ld_envs.twenty_one import check_flag


class OptimalPolicy(Policy):
    """The exact best response to a known opponent policy, acting from the observation.

    ``opponent`` is ``"dealer"``, ``"random"`` (their solvers are shared per process) or
    a policy with ``action_probs(obs)``; ``open_cards`` must match the env's. The first
    decision of a new deal solves the subtree below it (milliseconds); :meth:`solution`
    solves every deal at once (the whole table, a few seconds for the built-ins) and
    returns the exact figures. Deterministic: ties go to standing.
    """

    #: it answers the agent's observations only (the env refuses it as the opponent:
    #: :func:`ld_envs.twenty_one.check_opponent_seat`)
    agent_seat_only = True

    def __init__(self, opponent: str | Any = "dealer", open_cards: bool = False) -> None:
        super().__init__()
        self.opponent = opponent
        self.open_cards = check_flag("open_cards", open_cards)
        self.solver = solver_for(opponent, open_cards)

    def act(self, obs: dict[str, Any]) -> int:
        return self.solver.action(obs)

    def solution(self) -> Solution:
        """Exact win / loss / draw / expected reward of this policy from a fresh deal."""
        if isinstance(self.opponent, str):
            return solve(self.opponent, self.open_cards)
        return run_solver(self.solver, "optimal", policy_name(self.opponent), self.open_cards)

    def __getstate__(self) -> dict[str, Any]:
        # a built-in opponent's table is rebuilt (or shared) on the other side, not copied
        state = dict(self.__dict__)
        if isinstance(self.opponent, str):
            state["solver"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.solver is None:
            self.solver = solver_for(self.opponent, self.open_cards)


@register("optimal", "twentyone")
def _optimal(
    env_id: str, opponent: str | Any = "dealer", open_cards: bool = False
) -> OptimalPolicy:
    return OptimalPolicy(opponent=opponent, open_cards=open_cards)


#: read by sweep checks before anything is built (``benchmarks.games.check_sweep_inputs``)
_optimal.agent_seat_only = True  # type: ignore[attr-defined]
