"""The exact optimum of 21 points as a ceiling row: the best response's exact figures.

:func:`exact_optimum` asks the solver (``ld_agents.baselines.optimal.solve``) for the
best response to a sweep's opponent; its win/loss/draw probabilities and expected reward
are exact, not sampled, and every policy's regret is measured against that reward.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Optimum:
    """The exact best response's figures (probabilities, not frequencies)."""

    win: float
    loss: float
    draw: float
    expected_reward: float
    label: str = "optimal (exact)"


def exact_optimum(env_kwargs: Mapping[str, Any]) -> Optimum | None:
    """Exact figures of the best response to the sweep's opponent, from the solver.

    ``None`` (with a logged reason) when the solver is unavailable or the opponent is a
    registered policy the solver cannot model.
    """
    try:
        from ld_agents.baselines import optimal
    except ImportError:
        logger.warning("ld_agents.baselines.optimal is not available: no exact optimum row")
        return None
    opponent = env_kwargs.get("opponent", "dealer")
    open_cards = bool(env_kwargs.get("open_cards", False))
    try:
        sol = optimal.solve(opponent=opponent, open_cards=open_cards)
    except Exception as exc:  # an opponent the solver does not model
        logger.warning("no exact optimum for opponent %r: %s", opponent, exc)
        return None
    return Optimum(*_solution_figures(sol))


def _solution_figures(sol: Any) -> tuple[float, float, float, float]:
    def get(*names: str) -> float:
        for name in names:
            if isinstance(sol, Mapping) and name in sol:
                return float(sol[name])
            if hasattr(sol, name):
                return float(getattr(sol, name))
        raise InvalidArgument(f"the solver's result has none of {names}: {sol!r}")

    return (
        get("win", "p_win", "victory"),
        get("loss", "p_loss", "lose"),
        get("draw", "p_draw"),
        get("expected_reward", "reward", "value"),
    )
